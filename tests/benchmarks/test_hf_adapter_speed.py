"""Embedding throughput of the Hugging Face adapter on each preset's tiny stand-in model
(tests/hf_models.py): 256 barcodes of the embedded data, batches of 64, median of 3 rounds.

Skipped by default (the project's addopts pass ``--benchmark-skip``). Run with::

    python -m pytest tests/benchmarks/test_hf_adapter_speed.py --benchmark-only -p no:cacheprovider \
        -o addopts="" --benchmark-columns=min,median,max

The stand-ins are tiny (2 layers x 32), so the numbers measure the adapter's overhead, not a
real model's speed; a real DNABERT-2 is about 117M parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

import hf_models  # tests/, on the path by pytest's pythonpath setting
import pytest

from benchbarcode.data import load_barcodes
from benchbarcode.registry import get_encoder

N_SEQS = 8 if os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1" else 256
PRESETS = {"hf:DIR": "bert", "hyenadna": "gpt2", "nt": "esm", "dnabert2": "mosaic", "dnabert-s": "mosaic",
           "barcodebert": "barcodebert"}


@pytest.fixture(scope="module")
def sequences() -> list[str]:
    return load_barcodes("sim").split("test")["sequence"].tolist()[:N_SEQS]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-bench")
    return {kind: build(root / kind) for kind, build in hf_models.BUILDERS.items()}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_adapter_throughput(benchmark, preset, models, sequences):
    directory = models[PRESETS[preset]]
    if preset == "hf:DIR":
        encoder = get_encoder(f"hf:{directory}").create()
    else:
        encoder = get_encoder(preset).create(checkpoint=str(directory), trust_remote_code=True)
    out = benchmark.pedantic(encoder.embed, args=(sequences,), kwargs={"batch_size": 64}, rounds=3,
                             warmup_rounds=1)
    assert out.shape == (N_SEQS, 32)
    benchmark.extra_info["seqs_per_s_median"] = round(N_SEQS / benchmark.stats.stats.median, 1)
