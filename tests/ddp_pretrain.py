"""Launched by tests/test_pretrain.py, alone and under torchrun: pretrain each objective, without
dropout (whose noise is drawn per process), into OUT/<objective>."""

import sys
from pathlib import Path

from benchbarcode.data import load_barcodes
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import PretrainJob, pretrain

corpus = load_barcodes("sim:800").pretraining_sequences()
for objective in ("mae", "mlm", "causal"):
    preset = get_preset(objective, "tiny").with_overrides(layers=1, hidden=32, heads=2, intermediate=64,
                                                          batch_size=8, warmup_steps=2, steps=6, dropout=0.0)
    pretrain(PretrainJob(objective, preset, corpus, Path(sys.argv[1]) / objective, progress=False, device="cpu"))
