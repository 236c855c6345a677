"""The pretraining step, eager beside ``torch.compile``: mae, mlm and gpt at the ``tiny`` and
``small`` presets, in float32 and bfloat16.

Skipped by default (the project's addopts pass ``--benchmark-skip``). Run with::

    python -m pytest tests/benchmarks/test_compiled_step.py -o addopts="" --benchmark-only \
        --benchmark-json compiled_step.json

One step is what ``benchbarcode pretrain`` takes (:func:`benchbarcode.pretrain.training_step`):
forward under autocast, backward, gradient clipping and the fused AdamW, on a batch of the preset's
size drawn by :class:`benchbarcode.pretrain_batches.DeviceCorpus` from the embedded ``sim`` data, in
train mode (dropout on). Each test pairs six variants (three objectives, eager and compiled): every
round takes one step of each, in rotating order, so that background load hits all alike; each
round draws the next step's batch. The compiled variants are compiled (and warmed) before the first
timed round; the compilation time is in ``extra_info["compile_seconds"]``.

``extra_info`` holds, per variant, the median and minimum seconds per step, and the ratios to
quote: ``compiled_speedup`` (eager median / compiled median, per objective) and ``mae_vs_mlm``
(MLM's median / MAE's, eager and compiled). Uses torch's default thread count unless
``BENCHBARCODE_BENCH_THREADS`` is set; the value is recorded.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

from benchbarcode.data import load_barcodes
from benchbarcode.models import build_model
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import build_optimizer, training_step
from benchbarcode.pretrain_batches import DeviceCorpus
from benchbarcode.runtime import compile_step
from benchbarcode.tokenizers import KmerTokenizer

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"  # one quick round, eager only (CI smoke test)
OBJECTIVES = {"mae": "mae", "mlm": "mlm", "gpt": "causal"}
ROUNDS = 1 if SMOKE else 7
WARMUP = 1 if SMOKE else 2


pytestmark = pytest.mark.usefixtures("bench_threads")


@pytest.fixture(scope="module")
def sequences() -> list[str]:
    return load_barcodes("sim:2000").pretraining_sequences()


class _Variant:
    def __init__(self, name: str, preset_name: str, dtype: str, compiled: bool, sequences: list[str]):
        objective = OBJECTIVES[name]
        preset = get_preset(objective, preset_name)
        if SMOKE:
            preset = preset.with_overrides(batch_size=4)
        torch.manual_seed(0)
        self.model = build_model(objective, preset).train()
        self.forward = compile_step(self.model, "cpu") if compiled else self.model
        self.optimizer = build_optimizer(self.model, preset)
        self.corpus = DeviceCorpus(sequences, KmerTokenizer(preset.k, max_len=preset.max_len), preset.batch_size,
                                   seed=0, mask_ratio=preset.mask_ratio if self.model.masks else None)
        self.preset, self.dtype, self.step = preset, dtype, 0
        self.times: list[float] = []
        self.compile_seconds: float | None = None

    def __call__(self) -> float:
        batch = self.corpus.batch(self.step)
        torch.manual_seed(self.step)
        started = time.perf_counter()
        out = training_step(self.forward, self.optimizer, batch, self.dtype, self.preset.grad_clip)
        loss = float(out["loss"])  # the device is awaited: the step is done
        elapsed = time.perf_counter() - started
        self.step += 1
        assert loss == loss, "the loss is NaN"
        return elapsed


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_step_eager_and_compiled(benchmark, sequences, preset, dtype):
    modes = [False] if SMOKE else [False, True]
    variants = {(name, compiled): _Variant(name, preset, dtype, compiled, sequences)
                for name in OBJECTIVES for compiled in modes}
    for variant in variants.values():
        started = time.perf_counter()
        variant()  # compiles the compiled ones
        if variant.forward is not variant.model:
            variant.compile_seconds = round(time.perf_counter() - started, 2)
        for _ in range(WARMUP - 1):
            variant()
    keys = list(variants)
    rotation = [0]

    def one_round():
        r = rotation[0]
        rotation[0] += 1
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            variants[key].times.append(variants[key]())

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)

    info = benchmark.extra_info
    info.update(preset=preset, dtype=dtype, torch_threads=torch.get_num_threads(), rounds=ROUNDS)
    medians = {}
    for (name, compiled), variant in variants.items():
        label = f"{name}_{'compiled' if compiled else 'eager'}"
        medians[label] = statistics.median(variant.times)
        info[f"{label}_s_per_step_median"] = round(medians[label], 4)
        info[f"{label}_s_per_step_min"] = round(min(variant.times), 4)
        info[f"{label}_batch"] = variant.preset.batch_size
        if variant.compile_seconds is not None:
            info[f"{label}_compile_seconds"] = variant.compile_seconds
    for name in OBJECTIVES:
        if f"{name}_compiled" in medians:
            info[f"{name}_compiled_speedup"] = round(medians[f"{name}_eager"] / medians[f"{name}_compiled"], 3)
    for mode in ("eager", "compiled"):
        if f"mae_{mode}" in medians:
            info[f"mae_vs_mlm_{mode}"] = round(medians[f"mlm_{mode}"] / medians[f"mae_{mode}"], 3)
