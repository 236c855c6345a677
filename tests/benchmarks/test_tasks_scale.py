"""The probe and the clustering at BIOSCAN-5M's sizes (pytest-benchmark): time and peak memory.

    python -m pytest tests/benchmarks/test_tasks_scale.py -o addopts="" --benchmark-only \
        --benchmark-json=tasks.json

* ``test_probe_steps_at_train_scale``: the closed-world probe's minibatch step (three weight
  decays trained together, :func:`benchbarcode.probe.cross_entropy`, AdamW) on BIOSCAN-5M's train
  split shape, 289,203 x 768 features and 11,846 species, run in a child process so that its
  peak resident memory is its own; ``extra_info``: seconds per step, the epoch that implies, and
  the peak resident memory (the features, their standardised copy, weights and AdamW state).
* ``test_clustering_at_test_unseen_scale``: the ``clustering`` task (UMAP to 50 dimensions, Ward,
  HDBSCAN) on BIOSCAN-5M's test_unseen shape, 7,887 x 768 embeddings of 880 species.

``BENCHBARCODE_BENCH_SMOKE=1`` shrinks both to seconds.

Recorded figures, measured 2026-11-30 on this project's 2-core CPU machine (commit 4dc09d0), at
the full sizes above: the probe 0.24 s per minibatch step (276 s per epoch), 2.8 GB peak; the
clustering 58 s and 1.1 GB (7,887 records, far below
:data:`benchbarcode.tasks.clustering.MAX_RECORDS`, where Ward's N^2 / 2 float64 distances take 10 GB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"

PROBE_CHILD = r"""
import json, sys, time
import numpy as np, torch, torch.nn.functional as F
from benchbarcode.probe import cross_entropy
from benchbarcode.tasks.linear_probe import BATCH_SIZE, LEARNING_RATE, WEIGHT_DECAYS
n, dim, classes, steps = (int(v) for v in sys.argv[1:5])
gen = torch.Generator().manual_seed(0)
x = torch.randn(n, dim, generator=gen)
x = (x - x.mean(0)) / x.std(0)  # the standardised copy the task makes
y = torch.randint(0, classes, (n,), generator=gen)
models = [(torch.nn.Parameter(torch.empty(classes, dim).uniform_(-dim ** -0.5, dim ** -0.5)),
           torch.nn.Parameter(torch.zeros(classes))) for _ in WEIGHT_DECAYS]
opt = torch.optim.AdamW([{"params": list(m), "weight_decay": wd} for m, wd in zip(models, WEIGHT_DECAYS)],
                        lr=LEARNING_RATE)
order = torch.randperm(n, generator=gen)
times = []
for step in range(steps):
    idx = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
    started = time.perf_counter()
    loss = sum(cross_entropy(F.linear(x[idx], w, b), y[idx]) for w, b in models)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - started)
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
print(json.dumps({"step_s": float(np.median(times[1:] or times)), "peak_mb": peak,
                  "steps_per_epoch": -(-n // BATCH_SIZE)}))
"""


def test_probe_steps_at_train_scale(benchmark):
    n, dim, classes, steps = (2000, 64, 50, 3) if SMOKE else (289_203, 768, 11_846, 12)
    proc = benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", PROBE_CHILD, str(n), str(dim),
                                                     str(classes), str(steps)],),
                              kwargs={"capture_output": True, "text": True, "timeout": 1800},
                              rounds=1, iterations=1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    benchmark.extra_info.update({**row, "train": n, "dim": dim, "classes": classes,
                                 "epoch_s": row["step_s"] * row["steps_per_epoch"]})


def test_clustering_at_test_unseen_scale(benchmark):
    from benchbarcode.registry import get_task

    n, dim, species = (300, 32, 30) if SMOKE else (7_887, 768, 880)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, species, n)
    x = (rng.standard_normal((species, dim)) * 3)[labels] + rng.standard_normal((n, dim))
    frame = pd.DataFrame({"processid": [f"p{i}" for i in range(n)], "genus": [f"g{v // 4}" for v in labels],
                          "species": [f"s{v}" for v in labels], "bin": [f"b{v}" for v in labels]})
    task = get_task("clustering")
    started = time.perf_counter()
    out = benchmark.pedantic(task.evaluate, args=({"test_unseen": x.astype(np.float32)}, {"test_unseen": frame}),
                             rounds=1, iterations=1)
    import resource

    benchmark.extra_info.update({"records": n, "species": species, "seconds": time.perf_counter() - started,
                                 "scores": dict(out.scores),
                                 "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
    assert out.unscored is None, out.unscored
    counts = out.counts
    assert (counts["samples"], counts["classes"], counts["clustered_dims"]) == (n, len(np.unique(labels)), 50)
    # species centres 3x the noise apart: plain clusters, where chance scores an AMI near 0
    assert set(out.scores) == {"ami_agglomerative", "ami_hdbscan"}
    assert all(0.5 < v <= 1 + 1e-9 for v in out.scores.values()), out.scores
