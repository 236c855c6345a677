"""Cost of one pretraining step: MLM (BarcodeBERT) vs MAE (BarcodeMAE), paper-shaped and light decoder.

Skipped by default (the project's addopts pass ``--benchmark-skip``). Run with::

    python -m pytest tests/benchmarks/test_pretrain_step.py -o addopts="" --benchmark-only

One step = forward + backward + ``AdamW.step`` on a batch of 64 sequences
(random ACGT, 600-658 nt, tokenised with ``KmerTokenizer(k=6, max_len=660)``:
110 tokens), mask ratio 0.5, dropout 0.1 (train mode). Encoder: 4 layers,
hidden 256, 4 heads, FFN 1024. Objectives:

* ``mlm``: BarcodeBERT MLM (loss on the masked positions);
* ``mae_paper``: MAE with a decoder as wide and deep as the encoder (256, 4 layers);
* ``mae_light``: MAE with the light decoder (1 layer, width 128, 2 heads);
* ``mae_light_nodrop``: the same without dropout in the decoder (as He et al.'s MAE decoder).

``test_pretrain_step[...]`` times each objective on its own; its
``extra_info`` holds the seconds per step (``s_per_step_min`` / ``_median``)
and, for the MAE runs, ``speedup_vs_mlm`` (MLM's median step / this median
step, MLM measured earlier in the same session). ``test_pretrain_step_paired``
runs one step of every objective per round, in rotating order, so that
background load hits all of them alike; its ``extra_info`` has the per-objective
``s_per_step`` medians / minima and ``speedup_vs_mlm`` from the same rounds
(the number to quote). A fresh mask is drawn before every round (not timed).
Uses torch's default thread count unless ``BENCHBARCODE_BENCH_THREADS`` is
set; the value is recorded. Numbers are sensitive to other load on the
machine: when another process holds a core, every multi-threaded op waits for
its descheduled worker thread, steps get several times slower and the MAE /
MLM ratio collapses towards 1 (it then counts ops, not FLOPs). On a shared
machine, ``BENCHBARCODE_BENCH_THREADS=1`` gives steadier ratios.

Heap trimming (``runtime.trim_heap``), measured 2026-12 on 2 cores, one thread, torch 2.13:
without it a tiny MLM grew from 0.4 to 2.3 GB resident over 300 steps; the same run with a
trim every ``TRIM_EVERY`` steps stayed at 0.48 GB, with 3.4 M minor page faults against 19.5 M.
The earlier fixed 128 KiB mmap threshold cost 40 M minor faults and 70 s of system time in the
default ``run`` (mae, sim).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch

from benchbarcode.models import MAEForPretraining, MLMForPretraining, sample_mask
from benchbarcode.tokenizers import KmerTokenizer

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"  # one quick call each (CI smoke test)
BATCH = 8 if SMOKE else 64
K = 6
MAX_LEN = 660
ENCODER = dict(layers=4, heads=4, hidden=256, intermediate=1024)
ROUNDS = 1 if SMOKE else 5
PAIRED_ROUNDS = 1 if SMOKE else 7

BUILDERS = {
    "mlm": lambda T: MLMForPretraining.from_sizes(K, T, **ENCODER),
    "mae_paper": lambda T: MAEForPretraining.from_sizes(
        K, T, **ENCODER, decoder_layers=4, decoder_hidden=256, decoder_heads=4, decoder_intermediate=1024
    ),
    "mae_light": lambda T: MAEForPretraining.from_sizes(K, T, **ENCODER, light=True),
    "mae_light_nodrop": lambda T: MAEForPretraining.from_sizes(K, T, **ENCODER, light=True, decoder_dropout=0.0),
}

_MEDIANS: dict[str, float] = {}


pytestmark = pytest.mark.usefixtures("bench_threads")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(600, 659)))) for _ in range(BATCH)]
    tok = KmerTokenizer(k=K, max_len=MAX_LEN)
    ids, am = tok(seqs)
    return torch.from_numpy(ids), torch.from_numpy(am), tok.n_tokens


@pytest.mark.parametrize("objective", list(BUILDERS))
def test_pretrain_step(benchmark, batch, objective):
    ids, am, T = batch
    torch.manual_seed(0)
    model = BUILDERS[objective](T).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def setup():
        return (sample_mask(ids, am, 0.5, gen),), {}

    def step(mask):
        out = model(ids, am, mask)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        return out

    out = benchmark.pedantic(step, setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    assert torch.isfinite(out["loss"])

    stats = benchmark.stats.stats
    _MEDIANS[objective] = stats.median
    info = benchmark.extra_info
    info["objective"] = objective
    info["s_per_step_min"] = round(stats.min, 4)
    info["s_per_step_median"] = round(stats.median, 4)
    info["batch"] = BATCH
    info["n_tokens"] = T
    info["encoder"] = dict(ENCODER)
    info["encoder_parameters"] = model.encoder_parameters()
    info["total_parameters"] = sum(p.numel() for p in model.parameters())
    info["torch_threads"] = torch.get_num_threads()
    if objective != "mlm" and "mlm" in _MEDIANS:
        info["speedup_vs_mlm"] = round(_MEDIANS["mlm"] / stats.median, 3)


def test_pretrain_step_paired(benchmark, batch):
    ids, am, T = batch
    names = list(BUILDERS)
    models, opts = {}, {}
    for name in names:
        torch.manual_seed(0)
        models[name] = BUILDERS[name](T).train()
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {name: [] for name in names}
    rotation = [0]

    def setup():
        return (sample_mask(ids, am, 0.5, gen),), {}

    def one_round(mask):
        r = rotation[0]
        rotation[0] += 1
        for name in names[r % len(names):] + names[: r % len(names)]:
            model, opt = models[name], opts[name]
            t0 = time.perf_counter()
            out = model(ids, am, mask)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            times[name].append(time.perf_counter() - t0)
            assert torch.isfinite(out["loss"])

    benchmark.pedantic(one_round, setup=setup, rounds=PAIRED_ROUNDS + 1, warmup_rounds=0, iterations=1)
    info = benchmark.extra_info
    med = {name: statistics.median(ts[1:]) for name, ts in times.items()}  # round 0 = warm-up
    for name in names:
        info[f"{name}_s_per_step_median"] = round(med[name], 4)
        info[f"{name}_s_per_step_min"] = round(min(times[name][1:]), 4)
        if name != "mlm":
            info[f"{name}_speedup_vs_mlm"] = round(med["mlm"] / med[name], 3)
    info["batch"] = BATCH
    info["n_tokens"] = T
    info["torch_threads"] = torch.get_num_threads()
