"""Embedding throughput by number of torchrun processes on CPU (pytest-benchmark).

    python -m pytest tests/benchmarks/test_embed_ranks.py -o addopts="" --benchmark-only

``benchbarcode embed`` of every record of ``sim`` (its distinct barcodes; the ``random`` encoder:
the tiny MAE architecture) by one process and by two under ``torchrun`` (gloo), one thread each,
fresh cache each time. The benchmark's own timing is the two-process command; ``extra_info``: wall
seconds of the whole command (start-up, data and model included) and distinct sequences per second
for each, and the speed-up. The arrays are checked equal up to float32 rounding (the shards batch
differently).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from benchbarcode.embed import read_embeddings_npz

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"
DATA = "sim:1000" if SMOKE else "sim"


def _embed(tmp_path, processes: int) -> np.ndarray:
    out = tmp_path / f"p{processes}.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCHBARCODE_CACHE": str(tmp_path / f"cache{processes}")}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    command = [sys.executable, *launcher, "-m", "benchbarcode", "embed", "--encoder", "random", "--data", DATA,
               "--out", str(out), "--quiet"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return read_embeddings_npz(out)["embeddings"]


def test_embed_one_vs_two_processes(benchmark, tmp_path):
    from benchbarcode.data import load_barcodes

    distinct = len(set(load_barcodes(DATA).table["sequence"]))
    started = time.perf_counter()
    arrays = {1: _embed(tmp_path, 1)}
    seconds = {1: time.perf_counter() - started}
    arrays[2] = benchmark.pedantic(_embed, args=(tmp_path, 2), rounds=1, iterations=1)  # timed: two processes
    seconds[2] = benchmark.stats.stats.median
    np.testing.assert_allclose(arrays[1], arrays[2], rtol=1e-4, atol=1e-5)
    benchmark.extra_info.update({"data": DATA, "distinct_sequences": distinct, "wall_s": seconds,
                                 "sequences_per_s": {p: distinct / s for p, s in seconds.items()},
                                 "speedup_2_vs_1": seconds[1] / seconds[2]})
