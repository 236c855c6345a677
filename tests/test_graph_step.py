"""The pretraining step is graph-capturable: it reads nothing back from the device, its shapes do
not change from step to step, and ``torch.compile(fullgraph=True)`` takes it whole."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil

import pytest
import torch

from benchbarcode import pretrain as pretrain_module
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.models import presets
from benchbarcode.pretrain import PretrainJob, pretrain
from benchbarcode.profile import ProfileOptions, profile_id
from benchbarcode.runtime import compile_step
from benchbarcode.spec import EncoderSpec, resolve_encoder

OBJECTIVES = {"mae": "mae", "mlm": "mlm", "gpt": "causal"}
TINY = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "batch_size": 8, "warmup_steps": 2, "steps": 6}
#: every way a tensor's value reaches Python
READS = ["item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__"]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return load_barcodes("sim:600").pretraining_sequences()


class DeviceRead(AssertionError):
    pass


@contextlib.contextmanager
def reads_raise():
    """Within: any read of a tensor's value on the host raises :class:`DeviceRead`."""
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def refuse(name):
        def read(self, *args, **kwargs):
            raise DeviceRead(f"Tensor.{name} inside the step")
        return read

    try:
        for name in READS:
            setattr(torch.Tensor, name, refuse(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_no_step_reads_the_device(tmp_path, corpus, monkeypatch, name):
    steps = []
    real_step = pretrain_module._one_step

    def step(run, batches):
        with reads_raise():
            real_step(run, batches)
        steps.append(run.step)

    monkeypatch.setattr(pretrain_module, "_one_step", step)
    preset = presets.get_preset(OBJECTIVES[name], "tiny").with_overrides(**TINY)
    meta = pretrain(PretrainJob(OBJECTIVES[name], preset, corpus, tmp_path / name, progress=False))
    assert steps == list(range(1, TINY["steps"] + 1))
    assert meta["budget"]["sequences"] == TINY["steps"] * TINY["batch_size"]
    assert len(meta["loss_history"]) == TINY["steps"]


def test_the_guard_catches_a_read():
    """The guard itself: a step that reads the loss, as the loop once did, is caught."""
    with reads_raise(), pytest.raises(DeviceRead, match="__float__"):
        float(torch.ones(()))


def _model_and_batch(name: str):
    from benchbarcode.models import build_model
    from benchbarcode.pretrain_batches import DeviceCorpus
    from benchbarcode.tokenizers import KmerTokenizer

    preset = presets.get_preset(OBJECTIVES[name], "tiny").with_overrides(**TINY)
    torch.manual_seed(0)
    model = build_model(OBJECTIVES[name], preset).train()
    corpus = DeviceCorpus(load_barcodes("sim:300").pretraining_sequences(), KmerTokenizer(preset.k, max_len=preset.max_len),
                          preset.batch_size, seed=0, mask_ratio=preset.mask_ratio if model.masks else None)
    return model, corpus


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_the_step_compiles_as_one_graph(name):
    """``fullgraph=True``: dynamo takes forward, loss and (through AOT autograd) backward whole; a
    graph break would raise. Two batches, one compilation: the shapes do not change."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    model, corpus = _model_and_batch(name)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend=counter)
    for step in range(2):
        torch.manual_seed(step)
        out = compiled(*corpus.batch(step))
        out["loss"].backward()
        eager = model(*corpus.batch(step))  # the same batch, eager (dropout differs: compare the counts)
        assert int(out["n_predicted"]) == int(eager["n_predicted"]) > 0
    assert counter.frame_count == 1  # compiled once for both steps


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("cc") is None, reason="inductor needs a C++ compiler")
def test_inductor_compiles_the_mae_step_and_it_matches_eager():
    torch._dynamo.reset()
    model, corpus = _model_and_batch("mae")
    model.eval()  # no dropout: eager and compiled compute the same thing
    batch = corpus.batch(0)
    eager = model(*batch)
    compiled = compile_step(model, "cpu")(*batch)
    torch.testing.assert_close(compiled["loss"], eager["loss"], rtol=1e-4, atol=1e-4)
    assert int(compiled["n_predicted"]) == int(eager["n_predicted"])
    compiled["loss"].backward()


def test_pretrain_compile_records_it_and_a_resume_must_match(tmp_path, corpus, monkeypatch):
    """``compile=True`` is stated in the budget with the time the first step took, and is part of
    the run's settings: resuming it without compile is refused."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, options=None, **kw: real(model, **kw, backend="aot_eager"))
    preset = presets.get_preset("mae", "tiny").with_overrides(**TINY)
    meta = pretrain(PretrainJob("mae", preset, corpus, tmp_path / "c", progress=False, compile=True))
    assert meta["budget"]["compile"] is True and meta["budget"]["compile_seconds"] > 0

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainJob("mae", preset, corpus, tmp_path / "r", progress=False, compile=True,
                             checkpoint_every=2), on_step=stop)
    with pytest.raises(UserError, match="compile"):
        pretrain(PretrainJob("mae", preset, corpus, tmp_path / "r", progress=False, resume=True))


def test_profile_train_compile_times_the_compilation_apart(tmp_path, monkeypatch, capsys):
    from benchbarcode.cli import main

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, options=None, **kw: real(model, **kw, backend="aot_eager"))
    assert main(["profile", "--encoder", "mae", "--mode", "train", "--compile", "--batch-sizes", "2", "--repeats", "1",
                 "--min-seconds", "0", "--warmup", "1", "--no-memory", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "torch.compile: the first call per batch size compiled the step, not timed above: batch 2" in out
    result = json.loads(next(tmp_path.rglob("profile.json")).read_text())
    assert result["profile"]["compile"] is True and result["profile"]["measurements"][0]["compile_seconds"] > 0
    # a compiled profile is another measurement: its id differs from the eager one's
    eager = ProfileOptions(EncoderSpec("mae"), mode="train", batch_sizes=(2,), warmup=1)
    compiled = dataclasses.replace(eager, compile=True)
    meta = resolve_encoder(EncoderSpec("mae")).meta
    assert profile_id(meta, eager, "cpu", "m") != profile_id(meta, compiled, "cpu", "m")
