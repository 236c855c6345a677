"""Result files written before the encoder declaration carried its record (benchbarcode 0.1.0 at
commit 4e85b99, tests/data/results_v1/) still validate, and today's code reproduces their scores.

kmer's closed-world probe scores 1.0 with no spread, which a changed probe still reaches (a doubled
learning rate does); random's closed-world scores (below 1, a nonzero macro-F1 spread) pin the probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchbarcode.data import load_barcodes
from benchbarcode.store import load_results
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec

OLD = Path(__file__).resolve().parent / "data" / "results_v1"
#: written by benchbarcode before the results store recorded the pretraining key (a0b8d75):
#: ``run --encoder mae --steps 2`` and ``run --encoder kmer --encoder-option k=4``, sim:1200, open-world
BEFORE_STORE = Path(__file__).resolve().parent / "data" / "results_before_store"


def test_old_result_files_still_validate():
    results = load_results(OLD)
    assert {(r["encoder"]["name"], r["task"]["name"]) for r in results} == {
        ("kmer", "open-world"), ("kmer", "closed-world"), ("random", "open-world"), ("random", "closed-world")}


@pytest.mark.parametrize("encoder,options,tasks", [
    ("kmer", {"k": 4}, ["open-world", "closed-world"]),
    ("random", {}, ["open-world", "closed-world"]),
])
def test_the_same_runs_give_the_same_scores_today(tmp_path, monkeypatch, encoder, options, tasks):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    old = {r["task"]["name"]: r for r in load_results(OLD) if r["encoder"]["name"] == encoder}
    report = run_benchmark(RunOptions(encoder=EncoderSpec(encoder, options=options, device="cpu"), tasks=tasks,
                                      results_dir=str(tmp_path / "results"), progress=False),
                           load_barcodes("sim:1200"))
    for outcome in report.statuses:
        before = old[outcome.task]
        assert outcome.result["data"]["content_hash"] == before["data"]["content_hash"]
        assert outcome.result["scores"] == pytest.approx(before["scores"], abs=1e-6)
        assert outcome.result["scores_std"] == pytest.approx(before["scores_std"], abs=1e-6)


@pytest.mark.parametrize("encoder,options,steps", [("kmer", {"k": 4}, None), ("mae", {}, 2)])
def test_results_written_before_the_store_resume(tmp_path, monkeypatch, encoder, options, steps):
    """A re-run finds them: kmer's by its run id, mae's by the pretraining key its checkpoint path
    names (upgraded on read); nothing is pretrained or evaluated again."""
    import shutil

    import benchbarcode.pretrain as pretrain_module

    shutil.copytree(BEFORE_STORE, tmp_path / "results")
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))  # empty: no pretrained encoder
    monkeypatch.setattr(pretrain_module, "pretrain", lambda *a, **k: pytest.fail("pretrained again"))
    report = run_benchmark(RunOptions(encoder=EncoderSpec(encoder, options=options, steps=steps, device="cpu"),
                                      tasks=("open-world",), results_dir=str(tmp_path / "results"), progress=False),
                           load_barcodes("sim:1200"))
    (status,) = report.statuses
    assert status.status == "existing" and "pretraining_key" not in status.result
    assert report.directory.parent.parent == tmp_path / "results"

