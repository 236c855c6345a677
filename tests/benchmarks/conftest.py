"""Shared by the benchmark suites."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def bench_threads():
    """torch's thread count for the module: ``BENCHBARCODE_BENCH_THREADS`` when set (a benchmark
    records ``torch.get_num_threads()``), restored afterwards."""
    import torch

    n = os.environ.get("BENCHBARCODE_BENCH_THREADS")
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    yield
    torch.set_num_threads(before)
