"""Ctrl-C anywhere in pretraining, then resume: the same weights, loss curve and budget as an
uninterrupted run; damaged or hostile checkpoint files are refused in one line or recomputed."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchbarcode import checkpoints
from benchbarcode import pretrain as pretrain_module
from benchbarcode.checkpoints import CHECKPOINT_DIR, META_FILE, WEIGHTS_FILE
from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.models import presets
from benchbarcode.pretrain import PretrainJob, pretrain
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec

TINY = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "batch_size": 8, "warmup_steps": 2,
        "steps": 12}
EVERY = 4  # checkpoints at steps 4 and 8
STOP_AT = 7  # the 7th step is the one interrupted


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """SIGINT as in a terminal. A shell that starts pytest in the background without job control
    makes its children ignore SIGINT, and an ignored SIGINT stays ignored (by pretrain too)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return load_barcodes("sim:1500").pretraining_sequences()


@pytest.fixture(scope="module")
def preset():
    return presets.get_preset("mae", "tiny").with_overrides(**TINY)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, corpus, preset) -> Path:
    out = tmp_path_factory.mktemp("full")
    pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY))
    return out


def assert_same_run(a: Path, b: Path) -> None:
    """Byte-identical weights, the same loss curve and the same budget."""
    assert (a / WEIGHTS_FILE).read_bytes() == (b / WEIGHTS_FILE).read_bytes()
    ma, mb = (json.loads((d / META_FILE).read_text()) for d in (a, b))
    assert ma["loss_history"] == mb["loss_history"]
    drop = {"train_seconds"}
    assert {k: v for k, v in ma["budget"].items() if k not in drop} == \
           {k: v for k, v in mb["budget"].items() if k not in drop}


def ctrl_c(how: str) -> None:
    """What pressing Ctrl-C does at this point: a real SIGINT to this process, or (as when no
    handler can wait, e.g. outside the main thread) a KeyboardInterrupt raised right here."""
    if how == "signal":
        signal.raise_signal(signal.SIGINT)
    else:
        raise KeyboardInterrupt


def _on_call(n: int, how: str):
    """A callable that presses Ctrl-C the ``n``-th time it is called."""
    calls = []

    def hit(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            ctrl_c(how)

    return hit


def _inject(point: str, how: str, monkeypatch) -> None:
    def build_then(attach):
        real_build = pretrain_module.build_model

        def build(objective, preset):
            model = real_build(objective, preset)
            attach(model)
            return model

        monkeypatch.setattr(pretrain_module, "build_model", build)

    if point == "forward":
        build_then(lambda model: model.encoder.register_forward_pre_hook(_on_call(STOP_AT, how)))
    elif point == "backward":  # a parameter's gradient hook runs inside backward()
        hit = _on_call(STOP_AT, how)
        build_then(lambda model: next(model.encoder.parameters()).register_hook(lambda grad: hit()))
    elif point == "after optimizer.step":
        def optimizer(*args, **kwargs):
            opt = real_optimizer(*args, **kwargs)
            opt.register_step_post_hook(_on_call(STOP_AT, how))
            return opt

        real_optimizer = pretrain_module.build_optimizer
        monkeypatch.setattr(pretrain_module, "build_optimizer", optimizer)
    elif point == "accounting":
        counts = _pressing_after(pretrain_module._step_counts, STOP_AT, how)
        monkeypatch.setattr(pretrain_module, "_step_counts", counts)
    elif point == "checkpoint write":  # the second checkpoint (step 8), between its files
        monkeypatch.setattr(torch, "save", _pressing_after(torch.save, 2, how))


def _pressing_after(real, n: int, how: str):
    """``real``, pressing Ctrl-C after its ``n``-th call."""
    hit = _on_call(n, how)

    def call(*args, **kwargs):
        out = real(*args, **kwargs)
        hit()
        return out

    return call


POINTS = ["forward", "backward", "after optimizer.step", "accounting", "checkpoint write"]


@pytest.mark.parametrize("how", ["signal", "exception"])
@pytest.mark.parametrize("point", POINTS)
def test_interrupt_anywhere_then_resume_equals_uninterrupted(tmp_path, corpus, preset, uninterrupted,
                                                             monkeypatch, caplog, point, how):
    out = tmp_path / "part"
    with monkeypatch.context() as patch:
        _inject(point, how, patch)
        with pytest.raises(KeyboardInterrupt) as stopped:
            pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY))
    state = checkpoints.resumable_state(out)
    if how == "signal":  # SIGINT waits for the step in flight, which is then saved
        step = 8 if point == "checkpoint write" else STOP_AT
        assert str(stopped.value) == f"pretraining stopped after step {step} of 12, saved in {out / CHECKPOINT_DIR}"
    elif point == "checkpoint write":  # between steps: the interrupted write is made again
        step = 8
    else:  # inside a step nothing is whole: the last checkpoint stays
        step = EVERY
        assert f"interrupted inside step {STOP_AT}: the checkpoint of step {EVERY} is kept" in caplog.text
    assert state["step"] == step and state["budget"]["sequences"] == step * preset.batch_size
    assert not (out / META_FILE).exists()
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no staging left behind
    pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY, resume=True))
    assert_same_run(out, uninterrupted)


def test_a_crash_between_the_renames_keeps_the_previous_checkpoint(tmp_path, corpus, preset, uninterrupted,
                                                                   monkeypatch):
    """Killed while the new checkpoint replaces the old one: the old one is read, and the run
    resumes from it exactly."""
    out = tmp_path / "part"
    renames = []
    real_rename = Path.rename

    def rename(self, target):
        renames.append(self.name)
        if len(renames) == 3:  # the second save's swap: checkpoint -> .checkpoint.old done, not the rest
            raise SystemExit("killed")
        return real_rename(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", rename)
        with pytest.raises(SystemExit):
            pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY))
    assert renames == [".checkpoint.tmp", CHECKPOINT_DIR, ".checkpoint.tmp"]
    assert not (out / CHECKPOINT_DIR).exists() and (out / ".checkpoint.old").is_dir()
    assert checkpoints.resumable_state(out)["step"] == EVERY
    with pytest.raises(UserError, match="holds an unfinished run"):
        pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY))
    pretrain(PretrainJob("mae", preset, corpus, out, progress=False, checkpoint_every=EVERY, resume=True))
    assert_same_run(out, uninterrupted)
    assert sorted(p.name for p in out.iterdir()) == sorted([META_FILE, WEIGHTS_FILE, "config.json"])


# ----------------------------------------------------------------------------- the command line
CLI_STEPS = 100  # Ctrl-C lands a few steps after the first checkpoint (step 5): far from the end
CLI = [sys.executable, "-m", "benchbarcode", "pretrain", "--encoder", "mae", "--data", "sim:800",
       "--steps", str(CLI_STEPS), "--batch-size", "8", "--checkpoint-every", "5", "--device", "cpu", "--quiet"]


def test_sigint_to_the_pretrain_command_then_resume(tmp_path):
    """A real Ctrl-C to ``benchbarcode pretrain``: exit 130 with where it stopped; ``--resume``
    then ends with the weights and loss curve of a run never interrupted."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, part = tmp_path / "full", tmp_path / "part"
    proc = subprocess.Popen([*CLI, "--out", str(part)], env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509 (see ctrl_c_raises)
    state = part / CHECKPOINT_DIR / "state.json"
    deadline = time.monotonic() + 300
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    saved = checkpoints.resumable_state(part)["step"]
    assert 5 <= saved < CLI_STEPS
    assert err.strip().splitlines()[-1] == (
        f"benchbarcode: interrupted (pretraining stopped after step {saved} of {CLI_STEPS}, saved in "
        f"{part / CHECKPOINT_DIR}); finished work is kept: re-run the same command to resume (pretrain: add --resume)")
    resumed = subprocess.run([*CLI, "--out", str(part), "--resume"], env=env, capture_output=True, text=True,
                             timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    once = subprocess.run([*CLI, "--out", str(full)], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert once.returncode == 0, once.stderr[-2000:]
    assert_same_run(part, full)


def test_run_resumes_the_pretraining_interrupted_in_its_cache(tmp_path, monkeypatch):
    """``benchbarcode run`` pretrains an in-house encoder into its cache; Ctrl-C there, then the
    same command again, gives the encoder and scores of a run never interrupted."""
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        **{**TINY, "steps": 60})} for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)
    ds = load_barcodes("sim:1200")

    def run(name: str):
        monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / name / "cache"))
        return run_benchmark(RunOptions(encoder=EncoderSpec("mae", preset="unit", device="cpu"), tasks=("open-world",),
                                        results_dir=str(tmp_path / name / "results"), progress=False), ds)

    with monkeypatch.context() as patch:  # the default checkpoint interval is 50 steps: Ctrl-C in step 57
        patch.setattr(pretrain_module, "_step_counts", _pressing_after(pretrain_module._step_counts, 57, "signal"))
        with pytest.raises(KeyboardInterrupt):
            run("part")
    [directory] = [d for d in (tmp_path / "part" / "cache" / "pretrained").iterdir() if d.is_dir()]
    assert checkpoints.resumable_state(directory)["step"] == 57
    resumed, once = run("part"), run("full")
    [reference] = [d for d in (tmp_path / "full" / "cache" / "pretrained").iterdir() if d.is_dir()]
    assert_same_run(directory, reference)
    a, b = resumed.statuses[0].result, once.statuses[0].result
    assert a["scores"] == b["scores"] and a["encoder"]["budget"]["steps"] == 60


# ----------------------------------------------------------------------------- damaged files
class Touch:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return Path.touch, (self.target,)


PRETRAIN = ["pretrain", "--encoder", "mae", "--data", "sim:1500", "--steps", "12", "--batch-size", "8", "--quiet"]


def _unfinished(tmp_path, monkeypatch) -> Path:
    """An unfinished ``benchbarcode pretrain`` (Ctrl-C in its 5th step: exit 130, saved)."""
    out = tmp_path / "part"
    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "_step_counts", _pressing_after(pretrain_module._step_counts, 5, "signal"))
        assert main([*PRETRAIN, "--out", str(out)]) == 130
    assert checkpoints.resumable_state(out)["step"] == 5
    return out


@pytest.mark.parametrize("damage", ["hostile optimizer.pt", "truncated optimizer.pt", "truncated weights",
                                    "state.json not JSON"])
def test_a_damaged_checkpoint_under_resume_is_one_line_exit_2_and_runs_nothing(tmp_path, monkeypatch, damage,
                                                                                capsys):
    out = _unfinished(tmp_path, monkeypatch)
    capsys.readouterr()
    ck = out / CHECKPOINT_DIR
    marker = tmp_path / "pwned"
    if damage == "hostile optimizer.pt":
        pickle.loads(pickle.dumps(Touch(marker)))
        assert marker.exists()  # the payload is live
        marker.unlink()
        torch.save({"state": {}, "param_groups": Touch(marker)}, ck / "optimizer.pt")
    elif damage == "truncated optimizer.pt":
        (ck / "optimizer.pt").write_bytes((ck / "optimizer.pt").read_bytes()[:200])
    elif damage == "truncated weights":
        (ck / WEIGHTS_FILE).write_bytes((ck / WEIGHTS_FILE).read_bytes()[:200])
    else:
        (ck / "state.json").write_text('{"step": 5, ')
    before = sorted(p.name for p in out.rglob("*"))
    code = main([*PRETRAIN, "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(ck) in err[0] and "--overwrite" in err[0] and "weights_only=False" not in err[0], err[0]
    if damage == "hostile optimizer.pt":
        assert "refused" in err[0] and "pathlib" in err[0]
    assert not marker.exists()
    assert sorted(p.name for p in out.rglob("*")) == before


def test_run_pretrains_again_when_its_cached_encoder_or_checkpoint_is_damaged(tmp_path, monkeypatch, caplog):
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        **{**TINY, "steps": 6})} for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    ds = load_barcodes("sim:1200")

    def run():
        return run_benchmark(RunOptions(encoder=EncoderSpec("mae", preset="unit", device="cpu"), tasks=("open-world",),
                                        results_dir=str(tmp_path / "results"), progress=False, overwrite=True), ds)

    first = run()
    [directory] = [d for d in (tmp_path / "cache" / "pretrained").iterdir() if d.is_dir()]  # beside: <key>.lock
    good = (directory / WEIGHTS_FILE).read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF  # one flipped bit: loads, but is not the encoder written
    (directory / WEIGHTS_FILE).write_bytes(bytes(damaged))
    again = run()
    assert "does not read back" in caplog.text and "sha256" in caplog.text
    assert (directory / WEIGHTS_FILE).read_bytes() == good
    assert again.statuses[0].result["scores"] == first.statuses[0].result["scores"]
    assert again.statuses[0].result["timings_s"]["pretrain"] > 0

    caplog.clear()  # an unfinished run in the cache whose state does not parse: started clean
    shutil.rmtree(directory)
    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "_step_counts", _pressing_after(pretrain_module._step_counts, 3, "signal"))
        with pytest.raises(KeyboardInterrupt):
            run()
    (directory / CHECKPOINT_DIR / "state.json").write_text("{")
    third = run()
    assert "does not read back" in caplog.text
    assert (directory / WEIGHTS_FILE).read_bytes() == good
    assert third.statuses[0].result["scores"] == first.statuses[0].result["scores"]
