"""Throughput benchmark for KmerTokenizer (pytest-benchmark).

Skipped by default (the project's addopts pass ``--benchmark-skip``).  Run with::

    python -m pytest tests/benchmarks/test_tokenizer_speed.py --benchmark-only -p no:cacheprovider

The tokenizer is pure numpy and single-threaded; pin it to one core with
``taskset -c 0`` for a strict one-core number.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchbarcode.tokenizers import KmerTokenizer

N_SEQS = 200 if os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1" else 20_000
SEQ_LEN = 658


@pytest.fixture(scope="module")
def sequences() -> list[str]:
    rng = np.random.default_rng(0)
    arr = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), size=(N_SEQS, SEQ_LEN))
    arr[rng.random((N_SEQS, SEQ_LEN)) < 0.002] = ord("N")  # a few ambiguous bases
    return [row.tobytes().decode("ascii") for row in arr]


@pytest.mark.parametrize("k", [6, 8])
def test_tokenizer_throughput(benchmark, sequences, k):
    tok = KmerTokenizer(k=k, max_len=660)
    ids, mask = benchmark(tok, sequences)
    assert ids.shape == mask.shape == (N_SEQS, tok.n_tokens)
    stats = benchmark.stats.stats
    benchmark.extra_info["n_sequences"] = N_SEQS
    benchmark.extra_info["seq_len"] = SEQ_LEN
    benchmark.extra_info["n_tokens"] = tok.n_tokens
    benchmark.extra_info["seqs_per_s_mean"] = round(N_SEQS / stats.mean)
    benchmark.extra_info["seqs_per_s_best"] = round(N_SEQS / stats.min)


@pytest.mark.parametrize("k", [6])
def test_tokenizer_throughput_offsets(benchmark, sequences, k):
    """Per-sequence random offsets (training augmentation path)."""
    tok = KmerTokenizer(k=k, max_len=660)
    offsets = np.random.default_rng(1).integers(0, k, size=N_SEQS)
    ids, _ = benchmark(tok, sequences, offsets)
    assert ids.shape == (N_SEQS, tok.n_tokens)
    stats = benchmark.stats.stats
    benchmark.extra_info["seqs_per_s_mean"] = round(N_SEQS / stats.mean)
    benchmark.extra_info["seqs_per_s_best"] = round(N_SEQS / stats.min)
