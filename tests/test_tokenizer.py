"""Tests for benchbarcode.tokenizers.KmerTokenizer against a naive reference."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchbarcode.tokenizers import MASK_ID, UNK_ID, KmerTokenizer, special_tokens


# --------------------------------------------------------------------------- reference
@functools.lru_cache(maxsize=None)
def reference_vocab(k):
    return {"".join(p): i + 2 for i, p in enumerate(itertools.product("ACGT", repeat=k))}


def reference_tokenize(seqs, k, stride=None, max_len=660, offset=0):
    """Plain-Python, obviously-correct implementation of the tokenizer rule."""
    if stride is None:
        stride = k
    vocab = reference_vocab(k)
    starts = []
    start = 0
    while start + k <= max_len:
        starts.append(start)
        start += stride
    T = len(starts)
    if isinstance(offset, int):
        offsets = [offset] * len(seqs)
    else:
        offsets = [int(o) for o in offset]
    all_ids, all_mask = [], []
    for seq, off in zip(seqs, offsets):
        seq = seq[off:]
        seq = seq[:max_len]
        length = len(seq)
        seq = seq + "N" * (max_len - length)
        ids = []
        for st_ in starts:
            kmer = seq[st_ : st_ + k]
            ids.append(vocab.get(kmer, 1))  # anything non-ACGT -> [UNK]
        n_valid = min(length // stride, T)
        mask = [1] * n_valid + [0] * (T - n_valid)
        all_ids.append(ids)
        all_mask.append(mask)
    ids = np.array(all_ids, dtype=np.int64).reshape(len(seqs), T)
    mask = np.array(all_mask, dtype=np.int64).reshape(len(seqs), T)
    return ids, mask


def _check(seqs, k, stride, max_len, offset):
    tok = KmerTokenizer(k=k, stride=stride, max_len=max_len)
    ids, mask = tok(seqs, offset=offset)
    ref_ids, ref_mask = reference_tokenize(seqs, k, stride, max_len, offset)
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    assert ids.shape == ref_ids.shape == (len(seqs), tok.n_tokens)
    assert mask.shape == ref_mask.shape
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(mask, ref_mask)


# --------------------------------------------------------------------------- property test
_base = st.sampled_from("ACGTN")
_other = st.sampled_from("RYN-?")
_char = st.one_of(_base, _base, _base, _base, _base, _base, _base, _base, _other)
_seq = st.lists(_char, min_size=0, max_size=800).map("".join)


@st.composite
def _cases(draw):
    k = draw(st.integers(1, 8))
    stride = draw(st.one_of(st.none(), st.integers(1, k)))
    max_len = draw(st.integers(k, 700))
    seqs = draw(st.lists(_seq, min_size=0, max_size=6))
    if draw(st.booleans()):
        offset = draw(st.integers(0, k - 1))
    else:
        offset = np.array([draw(st.integers(0, k - 1)) for _ in seqs], dtype=np.int64)
    return seqs, k, stride, max_len, offset


@settings(max_examples=200, deadline=None)
@given(_cases())
def test_matches_reference(case):
    seqs, k, stride, max_len, offset = case
    _check(seqs, k, stride, max_len, offset)


def test_matches_reference_large_batch_chunks():
    # more sequences than one internal chunk, mixed lengths and offsets
    rng = np.random.default_rng(1)
    alphabet = np.array(list("ACGTACGTACGTN"))
    seqs = ["".join(rng.choice(alphabet, size=rng.integers(0, 700))) for _ in range(4500)]
    offsets = rng.integers(0, 6, size=len(seqs))
    _check(seqs, 6, None, 660, offsets)
    _check(seqs[:300], 4, 1, 100, 3)
    _check(seqs[:300], 9, 3, 200, 0)


# --------------------------------------------------------------------------- unit tests
def test_vocabulary_order():
    tok = KmerTokenizer(k=6, max_len=6)
    assert tok.vocab_size == 4**6 + 2
    assert tok(["AAAAAA"])[0].tolist() == [[2]]
    assert tok(["AAAAAC"])[0].tolist() == [[3]]
    assert tok(["AAAACA"])[0].tolist() == [[2 + 4]]
    assert tok(["CAAAAA"])[0].tolist() == [[2 + 4**5]]
    assert tok(["TTTTTT"])[0].tolist() == [[4**6 + 1]]
    # matches itertools.product order for every 3-mer
    tok3 = KmerTokenizer(k=3, max_len=3)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=3)]
    ids, _ = tok3(kmers)
    assert ids[:, 0].tolist() == list(range(2, 2 + 64))
    assert tok3.decode_ids(ids[:, 0]) == kmers


def test_special_tokens_constants():
    assert MASK_ID == 0 and UNK_ID == 1
    assert special_tokens == ("[MASK]", "[UNK]")
    tok = KmerTokenizer()
    assert tok.special_tokens == special_tokens
    assert tok.decode_ids([0, 1, 2, 4**6 + 1]) == ["[MASK]", "[UNK]", "AAAAAA", "TTTTTT"]
    with pytest.raises(ValueError):
        tok.decode_ids([4**6 + 2])
    with pytest.raises(ValueError):
        tok.decode_ids([-1])


def test_unk_for_non_acgt():
    tok = KmerTokenizer(k=3, max_len=12)
    ids, mask = tok(["ACGNACGTRCG-"])
    assert ids.tolist() == [[tok.kmer_to_id("ACG"), UNK_ID, UNK_ID, UNK_ID]]
    ids, _ = tok(["NACGTAACG"])
    assert ids.tolist() == [[UNK_ID, tok.kmer_to_id("GTA"), tok.kmer_to_id("ACG"), UNK_ID]]
    assert mask.tolist() == [[1, 1, 1, 1]]
    # lowercase is not folded
    assert tok(["acgACG"])[0].tolist() == [[UNK_ID, tok.kmer_to_id("ACG"), UNK_ID, UNK_ID]]
    # non-ASCII characters count as one (invalid) base each
    ids, mask = tok(["ACGé" + "ACG"])
    assert ids.tolist() == [[tok.kmer_to_id("ACG"), UNK_ID, UNK_ID, UNK_ID]]
    assert mask.tolist() == [[1, 1, 0, 0]]


def test_padding_and_mask():
    tok = KmerTokenizer(k=2, max_len=8)
    ids, mask = tok(["ACGTA", "", "ACGTACGT"])
    AC, GT = tok.kmer_to_id("AC"), tok.kmer_to_id("GT")
    assert ids.tolist() == [
        [AC, GT, UNK_ID, UNK_ID],  # "ACGTANNN": "AN" -> UNK
        [UNK_ID] * 4,
        [AC, GT, AC, GT],
    ]
    assert mask.tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]


def test_mask_with_overlapping_stride():
    # mask counts floor(len / stride) tokens (capped at T), even for stride < k
    tok = KmerTokenizer(k=4, stride=1, max_len=10)
    assert tok.n_tokens == 7
    _, mask = tok(["ACGTA"])
    assert mask.tolist() == [[1, 1, 1, 1, 1, 0, 0]]
    _, mask = tok(["ACGTACGTAC"])
    assert mask.tolist() == [[1] * 7]


def test_truncation():
    tok = KmerTokenizer(k=2, max_len=4)
    ids, mask = tok(["ACGTTTTT"])
    assert ids.tolist() == [[tok.kmer_to_id("AC"), tok.kmer_to_id("GT")]]
    assert mask.tolist() == [[1, 1]]


def test_offset():
    tok = KmerTokenizer(k=2, max_len=4)
    ids, mask = tok(["ACGTAA", "NACG"], offset=1)
    assert ids.tolist() == [
        [tok.kmer_to_id("CG"), tok.kmer_to_id("TA")],
        [tok.kmer_to_id("AC"), UNK_ID],
    ]
    assert mask.tolist() == [[1, 1], [1, 0]]
    # offset beyond the sequence -> empty sequence
    ids, mask = tok(["AC"], offset=5)
    assert ids.tolist() == [[UNK_ID, UNK_ID]] and mask.tolist() == [[0, 0]]


def test_per_sequence_offsets():
    tok = KmerTokenizer(k=2, max_len=4)
    seqs = ["ACGTAA", "ACGTAA", "ACGTAA"]
    ids, mask = tok(seqs, offset=np.array([0, 1, 2]))
    assert ids.tolist() == [
        [tok.kmer_to_id("AC"), tok.kmer_to_id("GT")],
        [tok.kmer_to_id("CG"), tok.kmer_to_id("TA")],
        [tok.kmer_to_id("GT"), tok.kmer_to_id("AA")],
    ]
    assert mask.tolist() == [[1, 1]] * 3
    # plain lists work too and match the scalar path row by row
    ids2, _ = tok(seqs, offset=[0, 1, 2])
    np.testing.assert_array_equal(ids, ids2)
    for i, o in enumerate([0, 1, 2]):
        np.testing.assert_array_equal(tok([seqs[i]], offset=o)[0][0], ids[i])
    with pytest.raises(ValueError):
        tok(seqs, offset=[0, 1])
    with pytest.raises(ValueError):
        tok(seqs, offset=[0, -1, 2])
    with pytest.raises(ValueError):
        tok(seqs, offset=-1)
    with pytest.raises(ValueError):
        tok(seqs, offset=[0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    "k,stride,max_len,expected",
    [(6, None, 660, 110), (8, None, 660, 82), (4, None, 660, 165), (6, 3, 660, 219), (6, 1, 660, 655), (3, 5, 10, 2)],
)
def test_shapes(k, stride, max_len, expected):
    tok = KmerTokenizer(k=k, stride=stride, max_len=max_len)
    assert tok.n_tokens == expected == (max_len - k) // tok.stride + 1
    ids, mask = tok(["ACGT" * 200, "A"])
    assert ids.shape == mask.shape == (2, expected)


def test_empty_input():
    tok = KmerTokenizer()
    ids, mask = tok([])
    assert ids.shape == mask.shape == (0, 110)
    assert ids.dtype == mask.dtype == np.int64
    ids, mask = tok([], offset=np.zeros(0, dtype=np.int64))
    assert ids.shape == (0, 110)


def test_input_types():
    tok = KmerTokenizer(k=2, max_len=4)
    expected = tok(["ACGT", "TTAA"])[0]
    np.testing.assert_array_equal(tok(("ACGT", "TTAA"))[0], expected)
    np.testing.assert_array_equal(tok(np.array(["ACGT", "TTAA"]))[0], expected)
    np.testing.assert_array_equal(tok(iter(["ACGT", "TTAA"]))[0], expected)
    with pytest.raises(TypeError):
        tok("ACGT")
    with pytest.raises(TypeError):
        tok([b"ACGT"])
    with pytest.raises(TypeError):
        tok([1234])


def test_to_dict_roundtrip():
    for tok in [KmerTokenizer(), KmerTokenizer(k=8), KmerTokenizer(k=4, stride=2, max_len=100)]:
        d = tok.to_dict()
        assert set(d) == {"k", "stride", "max_len"}
        tok2 = KmerTokenizer.from_dict(d)
        assert tok2 == tok
        assert tok2.to_dict() == d
        seqs = ["ACGTN" * 150, "ACG"]
        for a, b in zip(tok(seqs), tok2(seqs)):
            np.testing.assert_array_equal(a, b)
    assert KmerTokenizer().to_dict() == {"k": 6, "stride": 6, "max_len": 660}
    assert KmerTokenizer.from_dict({"k": 5}) == KmerTokenizer(k=5)
    with pytest.raises(ValueError):
        KmerTokenizer.from_dict({"k": 6, "bogus": 1})
    with pytest.raises(ValueError):
        KmerTokenizer.from_dict({"stride": 6})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(k=0), "k must be"),
        (dict(k=13), "k must be"),
        (dict(k=-1), "k must be"),
        (dict(k=2.0), "k must be an int"),
        (dict(k=6, stride=0), "stride must be"),
        (dict(k=6, stride=-2), "stride must be"),
        (dict(k=6, max_len=5), "max_len must be"),
        (dict(k=6, max_len=0), "max_len must be"),
    ],
)
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KmerTokenizer(**kwargs)


def test_valid_extremes():
    assert KmerTokenizer(k=1, max_len=1).n_tokens == 1
    tok = KmerTokenizer(k=12, max_len=36)
    assert tok.vocab_size == 4**12 + 2
    kmers = ["T" * 12, "A" * 11 + "C", "CA" + "G" * 10]
    expected = [4**12 + 1, 3, 2 + 4**11 + sum(2 * 4**i for i in range(10))]
    ids, mask = tok(["".join(kmers)])
    assert ids.tolist() == [expected]
    assert mask.tolist() == [[1, 1, 1]]
    assert tok.decode_ids(expected) == kmers
    assert [tok.kmer_to_id(km) for km in kmers] == expected
    # k-mer straddling an N, and the padding, are [UNK]
    ids, mask = tok(["T" * 11 + "N" + "A" * 12])
    assert ids.tolist() == [[UNK_ID, 2, UNK_ID]]
    assert mask.tolist() == [[1, 1, 0]]
