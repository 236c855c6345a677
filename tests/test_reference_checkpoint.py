"""Reference BarcodeBERT / BarcodeMAE ``.pt`` checkpoints: faithful embeddings, safe loading,
one-line errors, and the CLI end to end. Tiny models written here in the reference format."""

from __future__ import annotations

import argparse
import os
import pickle
from itertools import product

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForTokenClassification, BertModel

from benchbarcode.cli import main
from benchbarcode.cli.common import budget_line
from benchbarcode.data import load_barcodes
from benchbarcode.embed import read_embeddings_npz
from benchbarcode.errors import UserError
from benchbarcode.encoders.reference_pt import encoder_state
from benchbarcode.registry import get_encoder
from benchbarcode.results import read_result

K, MAX_LEN, HIDDEN = 4, 660, 16
DATA = "sim:1200"


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


def reference_checkpoint(arch: str | None = "maelm", vocab_size: int = 4**K + 2, seed: int = 0):
    """``(checkpoint dict, model)`` as the reference pretraining script saves them after a step:
    a BertModel (maelm) or BertForTokenClassification (transformer), AdamW and OneCycleLR state."""
    torch.manual_seed(seed)
    bert_config = BertConfig(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=32, num_labels=4**K,
                             output_hidden_states=True, max_position_embeddings=512)
    model = BertModel(bert_config) if arch == "maelm" else BertForTokenClassification(bert_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-4, total_steps=10)
    out = model(torch.randint(2, vocab_size, (2, 12)))
    (out.last_hidden_state if arch == "maelm" else out.logits).pow(2).mean().backward()
    optimizer.step()
    scheduler.step()
    model.eval()
    config = argparse.Namespace(arch=arch, k_mer=K, stride=None, max_len=MAX_LEN, tokenizer="kmer",
                                tokenize_n_nucleotide=False, n_layers=2, n_heads=2, lr_relative=1e-4,
                                epochs=3, seed=0, checkpoint_path="/scratch/checkpoint_pretraining.pt")
    if arch is None:
        del config.arch  # older BarcodeBERT files
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "config": config, "bert_config": bert_config.to_dict(),
            "epoch": 3, "total_step": 120, "n_samples_seen": 7680, "max_accuracy": 12.5, "best_epoch": 2}
    return ckpt, model


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


@pytest.fixture
def mae_file(tmp_path):
    """A BarcodeMAE file (BertModel) trained with DDP: every key starts with ``module.``."""
    ckpt, model = reference_checkpoint("maelm")
    ckpt["model"] = prefixed(ckpt["model"], "module.")
    path = tmp_path / "best_pretraining.pt"
    torch.save(ckpt, path)
    return path, model


@pytest.fixture
def mlm_file(tmp_path):
    """A BarcodeBERT file (BertForTokenClassification: ``bert.*`` and ``classifier.*``)."""
    ckpt, model = reference_checkpoint("transformer", seed=1)
    path = tmp_path / "mlm.pt"
    torch.save(ckpt, path)
    return path, model.bert


def reference_tokens(seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference tokenisation, written out independently: [MASK]=0, [UNK]=1, k-mers from 2 in
    product("ACGT") order; truncate / N-pad to max_len; attention on the first len // k tokens."""
    vocab = {"".join(p): i + 2 for i, p in enumerate(product("ACGT", repeat=K))}
    ids, masks = [], []
    for s in seqs:
        x = s[:MAX_LEN].ljust(MAX_LEN, "N")
        ids.append([vocab.get(x[i:i + K], 1) for i in range(0, MAX_LEN - K + 1, K)])
        masks.append([1 if t < len(s[:MAX_LEN]) // K else 0 for t in range(MAX_LEN // K)])
    return torch.tensor(ids), torch.tensor(masks)


def direct_embeddings(bert: BertModel, seqs: list[str]) -> np.ndarray:
    ids, mask = reference_tokens(seqs)
    with torch.no_grad():
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return ((hidden * m).sum(1) / m.sum(1)).numpy()


def sequences() -> list[str]:
    rng = np.random.default_rng(0)

    def random(n):
        return "".join(rng.choice(list("ACGT"), n))

    with_n = list(random(500))
    for i in (3, 77, 78, 301, 499):
        with_n[i] = "N"
    return [random(658), random(300), "".join(with_n), random(720), "ACGTRYACGT-ACG", random(9), "N" * 40]


@pytest.mark.parametrize("which", ["mae", "mlm"])
def test_embeddings_match_a_direct_forward_of_the_same_weights(which, mae_file, mlm_file):
    path, bert = mae_file if which == "mae" else mlm_file
    encoder = get_encoder(which).create(checkpoint=str(path))
    seqs = sequences()
    got = encoder.embed(seqs, batch_size=3)
    assert got.dtype == np.float32 and got.shape == (len(seqs), HIDDEN)
    assert np.abs(got - direct_embeddings(bert, seqs)).max() < 1e-5
    assert not encoder.model.training


def test_metadata_names_the_file_its_budget_and_what_the_loader_did(mae_file, mlm_file):
    path, _ = mae_file
    meta = get_encoder("mae").create(checkpoint=str(path)).meta
    assert meta.objective == "mae" and meta.k == K and meta.max_length == MAX_LEN and meta.pooling == "mean"
    assert meta.layers == 2 and meta.heads == 2 and meta.hidden_size == meta.embedding_dim == HIDDEN
    assert meta.checkpoint["format"] == "reference .pt" and meta.checkpoint["path"] == str(path)
    assert meta.checkpoint["arch"] == "maelm" and meta.checkpoint["epoch"] == 3
    assert len(meta.checkpoint["sha256"]) == 64
    assert meta.budget == {"trained_by": "third party", "steps": 120, "sequences": 7680, "epochs": 3}
    assert budget_line(meta.to_dict()).endswith("; pretraining budget: not stated (third-party weights); its "
                                                "checkpoint records 120 steps, 7,680 sequences, 3 epochs")
    assert meta.loader["stripped_prefixes"] == ["module."] and meta.loader["dropped"] == ["pooler"]
    assert meta.loader["tokenizer"] == {"k": K, "stride": K, "max_len": MAX_LEN}
    meta.identity()  # plain JSON throughout
    mlm = get_encoder("mlm").create(checkpoint=str(mlm_file[0])).meta
    assert mlm.objective == "mlm" and mlm.loader["stripped_prefixes"] == ["bert."]
    assert mlm.loader["dropped"] == ["classifier"]


@pytest.mark.parametrize("arch, objective", [("transformer", "mlm"), ("maelm", None)])
def test_objective_is_inferred_from_the_head_when_arch_is_missing(tmp_path, arch, objective):
    ckpt, _ = reference_checkpoint(arch)
    del ckpt["config"].arch
    path = tmp_path / "old.pt"
    torch.save(ckpt, path)
    for name in ("mae", "mlm"):
        if objective in (None, name):
            meta = get_encoder(name).create(checkpoint=str(path)).meta
            assert meta.objective == name and "arch" not in meta.checkpoint
        else:
            with pytest.raises(UserError, match=f"holds an encoder of objective {objective}, not {name}"):
                get_encoder(name).create(checkpoint=str(path))


def test_whole_encoder_decoder_keeps_the_encoder():
    _, bert = reference_checkpoint("maelm")
    state = {**prefixed(bert.state_dict(), "module.encoder."),
             "module.decoder.bert.embeddings.word_embeddings.weight": torch.zeros(3, 4),
             "module.decoder.classifier.weight": torch.zeros(4, 4),
             "module.projection_layer.weight": torch.zeros(4, 4)}
    kept, stripped, dropped = encoder_state(state)
    assert set(kept) == {k for k in bert.state_dict() if not k.startswith("pooler.")}
    assert stripped == ["module.", "encoder."] and dropped == ["decoder", "pooler", "projection_layer"]


class MakeDir:
    """Unpickling this object creates a directory: a stand-in for arbitrary code."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target,)


@pytest.mark.parametrize("kind", ["alone", "inside-a-valid-checkpoint", "plain-pickle"])
def test_a_file_needing_other_globals_is_refused_without_running_it(tmp_path, kind):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(MakeDir(str(probe))))
    assert probe.is_dir()  # the payload is live
    target = tmp_path / "pwned"
    payload = MakeDir(str(target))
    path = tmp_path / "evil.pt"
    if kind == "plain-pickle":  # not a torch.save archive: named from torch's refusal
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload if kind == "alone" else {**reference_checkpoint("maelm")[0], "extra": payload}, path)
    with pytest.raises(UserError) as err:
        get_encoder("mae").create(checkpoint=str(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: refused") and "os.makedirs" in message
    assert "weights_only=False" not in message
    assert not target.exists()


def _truncated(tmp_path):
    ckpt, _ = reference_checkpoint("maelm")
    path = tmp_path / "cut.pt"
    torch.save(ckpt, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _saved(tmp_path, change):
    ckpt, _ = reference_checkpoint("maelm")
    change(ckpt)
    path = tmp_path / "bad.pt"
    torch.save(ckpt, path)
    return path


def _vocab(tmp_path):
    ckpt, _ = reference_checkpoint("maelm", vocab_size=4**K + 3)
    path = tmp_path / "vocab.pt"
    torch.save(ckpt, path)
    return path


def _garbage(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    return path


def _bare(tmp_path):
    path = tmp_path / "bare.pth"
    torch.save(reference_checkpoint("maelm")[1].state_dict(), path)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "absent.pt", "no such file"),
    (_truncated, "not a readable PyTorch checkpoint"),
    (_garbage, "not a readable PyTorch checkpoint"),
    (_bare, "bare state dict"),
    (lambda tmp: _saved(tmp, lambda c: c.pop("bert_config")), "no 'bert_config'"),
    (lambda tmp: _saved(tmp, lambda c: c.update(model=[1, 2])), "'model' is not a state dict"),
    (lambda tmp: _saved(tmp, lambda c: delattr(c["config"], "k_mer")), "no 'k_mer'"),
    (_vocab, "vocab_size is 259, but k=4 k-mers plus [MASK] and [UNK] make 258"),
    (lambda tmp: _saved(tmp, lambda c: setattr(c["config"], "tokenize_n_nucleotide", True)),
     "tokenize_n_nucleotide"),
    (lambda tmp: _saved(tmp, lambda c: setattr(c["config"], "tokenizer", "bpe")), "only 'kmer'"),
    (lambda tmp: _saved(tmp, lambda c: c["model"].pop("encoder.layer.1.output.dense.weight")),
     "encoder weight 'encoder.layer.1.output.dense.weight' is missing"),
    (lambda tmp: _saved(tmp, lambda c: c["model"].update({"encoder.layer.1.extra": torch.zeros(2)})),
     "unexpected weight 'encoder.layer.1.extra'"),
    (lambda tmp: _saved(tmp, lambda c: c["model"].update({"embeddings.LayerNorm.bias": torch.zeros(3)})),
     "'embeddings.LayerNorm.bias' has shape (3,)"),
])
def test_bad_files_are_one_line_user_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(UserError) as err:
        get_encoder("mae").create(checkpoint=str(path))
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


def test_declared_objective_is_checked(mae_file, capsys, tmp_path):
    path, _ = mae_file
    with pytest.raises(UserError, match=f"^{path}: holds an encoder of objective mae, not mlm"):
        get_encoder("mlm").create(checkpoint=str(path))
    assert main(["embed", "--encoder", "mlm", "--checkpoint", str(path), "--data", DATA,
                 "--split", "test_unseen", "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds an encoder of objective mae, not mlm" in err[0]


def test_cli_embed_and_run_with_reference_checkpoints(tmp_path, mae_file, mlm_file):
    out = tmp_path / "unseen.npz"
    assert main(["embed", "--encoder", "mae", "--checkpoint", str(mae_file[0]), "--data", DATA,
                 "--split", "test_unseen", "--out", str(out), "--quiet"]) == 0
    rows = len(load_barcodes(DATA).split("test_unseen"))
    assert read_embeddings_npz(out)["embeddings"].shape == (rows, HIDDEN)
    results = tmp_path / "results"
    assert main(["run", "--encoder", "mlm", "--checkpoint", str(mlm_file[0]), "--data", DATA,
                 "--tasks", "open-world", "--results-dir", str(results), "--quiet"]) == 0
    (written,) = results.rglob("open-world.json")
    encoder = read_result(written)["encoder"]
    assert encoder["checkpoint"]["format"] == "reference .pt" and encoder["objective"] == "mlm"
    assert encoder["budget"] == {"trained_by": "third party", "steps": 120, "sequences": 7680, "epochs": 3}


def test_gpt_does_not_take_reference_files(mae_file):
    """Reference files hold BERT encoders: the causal encoder refuses them, even one whose
    objective the file does not state."""
    path, _ = mae_file
    with pytest.raises(UserError, match="reference .pt files hold BERT encoders"):
        get_encoder("gpt").create(checkpoint=str(path))
