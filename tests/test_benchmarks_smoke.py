"""Every benchmark function in tests/benchmarks runs once (shrunk sizes, one round): a benchmark
that no longer runs fails here, in CI, instead of on the day someone measures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"


def worker_free(environ) -> dict:
    """``environ`` less the xdist worker's variables: the pytest started here is no worker (a
    worker's name there makes pytest-benchmark disable itself)."""
    return {k: v for k, v in environ.items() if not k.startswith("PYTEST_XDIST_")}


def test_every_benchmark_runs_once(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHMARKS), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "--benchmark-only", "--benchmark-min-rounds=1", "--benchmark-max-time=0.000001",
         "--benchmark-warmup=off", f"--benchmark-json={out}"],
        capture_output=True, text=True, timeout=900, cwd=BENCHMARKS.parents[1],
        env={**worker_free(os.environ), "BENCHBARCODE_BENCH_SMOKE": "1", "BENCHBARCODE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    import json

    names = {b["name"] for b in json.loads(out.read_text())["benchmarks"]}
    for expected in ("test_encoder_forward", "test_bf16_embed_vs_plain_bertmodel", "test_nearest_keys",
                     "test_probe_fit", "test_all_tasks_vs_per_sequence_reference", "test_pretrain_step_paired",
                     "test_tokenizer_throughput", "test_generate_twin"):
        assert any(n.startswith(expected) for n in names), expected
