"""Pretraining: CLI, transformers loading, budget, loss falls, exact resume, determinism, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from benchbarcode.checkpoints import CHECKPOINT_DIR, META_FILE, WEIGHTS_FILE
from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import PretrainJob, pretrain
from benchbarcode.registry import get_encoder

DATA = "sim:1500"
TINY = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "batch_size": 8, "warmup_steps": 2}


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return load_barcodes(DATA).pretraining_sequences()


def small(objective: str, **kw):
    return get_preset(objective, "tiny").with_overrides(**{**TINY, **kw})


@pytest.mark.parametrize("name,model_type", [("mae", "bert"), ("mlm", "bert"), ("gpt", "gpt2")])
def test_cli_pretrain_then_automodel_loads(tmp_path, name, model_type):
    out = tmp_path / name
    code = main(["pretrain", "--encoder", name, "--data", DATA, "--out", str(out), "--steps", "20",
                 "--batch-size", "16", "--quiet"])
    assert code == 0
    model = AutoModel.from_pretrained(out)
    assert model.config.model_type == model_type
    meta = json.loads((out / META_FILE).read_text())
    b = meta["budget"]
    assert b["steps"] == 20 and b["sequences"] == 320 and b["flops"] > 0
    assert b["input_tokens"] > 0 and b["encoder_tokens"] <= b["input_tokens"]
    if name == "mae":  # the encoder saw about half of the valid tokens
        assert 0.4 < b["encoder_tokens"] / b["input_tokens"] < 0.6
    assert meta["data"]["content_hash"] and meta["seed"] == 0 and meta["versions"]["torch"]
    assert not (out / CHECKPOINT_DIR).exists()
    enc = get_encoder(name).create(checkpoint=str(out))
    emb = enc.embed(["ACGT" * 100, "TTGACA" * 50])
    assert emb.shape == (2, enc.meta.embedding_dim) and np.isfinite(emb).all()
    assert enc.meta.budget["steps"] == 20 and len(enc.meta.checkpoint["tensors_sha256"]) == 64


@pytest.mark.parametrize("objective", ["mae", "mlm", "causal"])
def test_loss_falls_on_sim(tmp_path, corpus, objective):
    preset = small(objective, steps=60, lr=3e-3, batch_size=16, warmup_steps=5)
    meta = pretrain(PretrainJob(objective, preset, corpus, tmp_path, progress=False))
    losses = [loss for _, loss in meta["loss_history"]]
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.3


def test_resume_equals_uninterrupted(tmp_path, corpus):
    preset = small("mae", steps=12)
    full = pretrain(PretrainJob("mae", preset, corpus, tmp_path / "full", progress=False, checkpoint_every=4))

    def interrupt(step):
        if step == 7:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainJob("mae", preset, corpus, part, progress=False, checkpoint_every=4), on_step=interrupt)
    state = json.loads((part / CHECKPOINT_DIR / "state.json").read_text())
    assert state["step"] == 7 and not (part / META_FILE).exists()
    with pytest.raises(UserError, match="--resume"):
        pretrain(PretrainJob("mae", preset, corpus, part, progress=False))
    with pytest.raises(UserError, match="other settings"):
        pretrain(PretrainJob("mae", preset, corpus, part, progress=False, resume=True, seed=5))
    resumed = pretrain(PretrainJob("mae", preset, corpus, part, progress=False, resume=True))
    assert resumed["loss_history"] == full["loss_history"]
    assert resumed["budget"]["flops"] == pytest.approx(full["budget"]["flops"])
    a = AutoModel.from_pretrained(tmp_path / "full").state_dict()
    b = AutoModel.from_pretrained(part).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_existing_output_needs_overwrite(tmp_path, corpus, capsys):
    preset = small("mlm", steps=3)
    pretrain(PretrainJob("mlm", preset, corpus, tmp_path, progress=False))
    with pytest.raises(UserError, match="--overwrite"):
        pretrain(PretrainJob("mlm", preset, corpus, tmp_path, progress=False))
    meta = pretrain(PretrainJob("mlm", preset, corpus, tmp_path, progress=False, overwrite=True))
    assert meta["budget"]["steps"] == 3
    assert main(["pretrain", "--encoder", "mlm", "--data", DATA, "--out", str(tmp_path), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_loss_on(tmp_path, capsys):
    out = tmp_path / "mae-all"
    assert main(["pretrain", "--encoder", "mae", "--data", DATA, "--out", str(out), "--steps", "3",
                 "--batch-size", "8", "--loss-on", "all", "--quiet"]) == 0
    meta = json.loads((out / META_FILE).read_text())
    assert meta["recipe"]["loss_on"] == "all"
    assert main(["pretrain", "--encoder", "gpt", "--data", DATA, "--out", str(tmp_path / "g"),
                 "--loss-on", "all", "--quiet"]) == 2
    assert "--loss-on applies to mae and mlm" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_embeddings_deterministic(tmp_path, corpus):
    preset = small("mae", steps=5)
    pretrain(PretrainJob("mae", preset, corpus, tmp_path / "a", progress=False, seed=3))
    pretrain(PretrainJob("mae", preset, corpus, tmp_path / "b", progress=False, seed=3))
    seqs = corpus[:40]
    ea = get_encoder("mae").create(checkpoint=str(tmp_path / "a")).embed(seqs, batch_size=7)
    eb = get_encoder("mae").create(checkpoint=str(tmp_path / "b")).embed(seqs, batch_size=16)
    np.testing.assert_allclose(ea, eb, rtol=1e-5, atol=1e-6)
    ec = get_encoder("mae").create(checkpoint=str(tmp_path / "a")).embed(seqs, batch_size=7)
    np.testing.assert_array_equal(ea, ec)


def test_bad_checkpoint_dir_and_wrong_objective(tmp_path, corpus):
    with pytest.raises(UserError, match="not a benchbarcode encoder directory"):
        get_encoder("mae").create(checkpoint=str(tmp_path))
    pretrain(PretrainJob("causal", small("causal", steps=2), corpus, tmp_path / "g", progress=False))
    with pytest.raises(UserError, match="not mae"):
        get_encoder("mae").create(checkpoint=str(tmp_path / "g"))


def torchrun(args: list[str], tmp_path, processes: int = 2) -> subprocess.CompletedProcess:
    """``args`` under torchrun as CI has it: the module launcher of this interpreter, CPU, gloo."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          check=False)


def test_torchrun_two_processes_agree(tmp_path):
    """The unchanged CLI under torchrun: 2 CPU processes (gloo) train and end with equal weights."""
    out = tmp_path / "ddp"
    proc = torchrun(["-m", "benchbarcode", "pretrain", "--encoder", "mae", "--data", "sim:800", "--out", str(out),
                     "--steps", "4", "--batch-size", "8", "--device", "cpu", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / META_FILE).read_text())
    assert meta["ddp"]["world_size"] == 2
    a, b = meta["ddp"]["param_checksums"]
    assert a == b
    assert meta["budget"]["sequences"] == 32  # 4 steps x global batch 8


def test_torchrun_two_processes_take_the_steps_of_one(tmp_path):
    """Without dropout, 2 processes splitting each global batch end where 1 process does: the
    same sequences, offsets and masks, and the loss of the whole batch (weights equal to float
    rounding; the FLOPs differ by the padding each process's share has)."""
    script = Path(__file__).with_name("ddp_pretrain.py")
    proc = torchrun([str(script), str(tmp_path / "two")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    alone = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert alone.returncode == 0, alone.stderr[-2000:]
    for objective in ("mae", "mlm", "causal"):
        one, two = (json.loads((tmp_path / n / objective / META_FILE).read_text()) for n in ("one", "two"))
        assert (one["ddp"]["world_size"], two["ddp"]["world_size"]) == (1, 2)
        for key in ("sequences", "input_tokens", "encoder_tokens", "predicted_tokens"):
            assert one["budget"][key] == two["budget"][key], (objective, key)
        np.testing.assert_allclose([loss for _, loss in two["loss_history"]],
                                   [loss for _, loss in one["loss_history"]], rtol=1e-5, err_msg=objective)
        a = load_file(str(tmp_path / "one" / objective / WEIGHTS_FILE))
        b = load_file(str(tmp_path / "two" / objective / WEIGHTS_FILE))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{objective} {key}")


MEMORY_PROBE = """
import resource, sys, tempfile
from benchbarcode.data import load_barcodes
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import PretrainJob, pretrain
corpus = load_barcodes("sim:1500").pretraining_sequences()
preset = get_preset("mlm", "tiny").with_overrides(steps=70, batch_size=32, k=4)
rss = {}
def probe(step):
    if step in (20, 70):
        rss[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with tempfile.TemporaryDirectory() as d:
    pretrain(PretrainJob("mlm", preset, corpus, d, progress=False), on_step=probe)
print(rss[70] - rss[20])
"""


def test_training_memory_stays_flat():
    """Batches of varying shape used to fragment glibc's heap (+10 MB per step); see
    ``runtime.trim_heap``. 50 steps may now grow the peak resident size by < 150 MB."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth_mb = float(proc.stdout.strip().splitlines()[-1])
    assert growth_mb < 150, f"peak RSS grew by {growth_mb:.0f} MB over 50 steps"
