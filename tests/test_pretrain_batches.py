"""The pretraining corpus on the device: each step's batch is the host tokenizer's output for the
step's sequences and offsets, masked as ``sample_mask`` masks, whatever the number of processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchbarcode.errors import UserError
from benchbarcode.models import sample_mask
from benchbarcode.pretrain_batches import DeviceCorpus
from benchbarcode.tokenizers import KmerTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sequences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGTN"), p=[0.245] * 4 + [0.02], size=int(rng.integers(20, 70))))
            for _ in range(n)]


def test_a_batch_is_the_tokenizers_output_for_its_sequences_and_offsets():
    seqs, tok = _sequences(23), KmerTokenizer(k=4, max_len=60)
    corpus = DeviceCorpus(seqs, tok, batch_size=10, seed=3, mask_ratio=0.5)
    assert corpus.ids.dtype == torch.int16 and corpus.n_offsets == 4
    seen = []
    for step in range(5):  # 50 rows: crosses two epoch boundaries of 23 sequences
        ids, attn, mask = corpus.batch(step)
        rows = corpus.indices(step).numpy()
        offsets = corpus.offsets(step)
        want_ids, want_attn = tok([seqs[i] for i in rows], offset=offsets)
        assert torch.equal(ids, torch.from_numpy(want_ids)) and torch.equal(attn, torch.from_numpy(want_attn))
        assert ids.dtype == attn.dtype == torch.int64
        gen = torch.Generator().manual_seed(int(np.random.default_rng([3, 3, step, 0]).integers(2**62)))
        scores = torch.rand((10, tok.n_tokens), generator=gen)
        assert torch.equal(mask, sample_mask(ids, attn, 0.5, scores=scores))
        seen.extend(rows.tolist())
    for epoch in range(2):  # each epoch is a permutation of the corpus
        assert sorted(seen[epoch * 23:(epoch + 1) * 23]) == list(range(23))


def test_the_processes_split_the_global_batch():
    seqs, tok = _sequences(40), KmerTokenizer(k=3, max_len=45)
    corpus = DeviceCorpus(seqs, tok, batch_size=8, seed=0, mask_ratio=0.25)
    whole = corpus.batch(2)
    for rank in range(2):
        part = corpus.batch(2, rank=rank, world=2)
        for got, want in zip(part, whole):
            assert torch.equal(got, want[rank::2])


def test_no_mask_without_a_ratio_and_a_large_vocabulary_takes_int32():
    corpus = DeviceCorpus(_sequences(5), KmerTokenizer(k=8, max_len=64), batch_size=4, seed=0)
    assert corpus.ids.dtype == torch.int32  # 4**8 + 2 ids do not fit int16
    assert corpus.batch(0)[2] is None


def test_an_empty_corpus_is_a_user_error():
    with pytest.raises(UserError, match="empty"):
        DeviceCorpus([], KmerTokenizer(k=4, max_len=40), batch_size=2, seed=0)
