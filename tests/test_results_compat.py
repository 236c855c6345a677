"""Result files written before the encoder declaration carried its record (benchbarcode 0.1.0 at
commit 4e85b99, tests/data/results_v1/) still validate, and today's code reproduces their scores.

kmer's closed-world probe scores 1.0 with no spread, which a changed probe still reaches (a doubled
learning rate does); random's closed-world scores (below 1, a nonzero macro-F1 spread) pin the probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchbarcode.data import load_barcodes
from benchbarcode.results import load_results
from benchbarcode.run import RunOptions, run_benchmark

OLD = Path(__file__).resolve().parent / "data" / "results_v1"


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
    report = run_benchmark(RunOptions(encoder=encoder, encoder_options=options, tasks=tasks, device="cpu",
                                      results_dir=str(tmp_path / "results"), progress=False),
                           load_barcodes("sim:1200"))
    for outcome in report.outcomes:
        before = old[outcome.task]
        assert outcome.result["data"]["content_hash"] == before["data"]["content_hash"]
        assert outcome.result["scores"] == pytest.approx(before["scores"], abs=1e-6)
        assert outcome.result["scores_std"] == pytest.approx(before["scores_std"], abs=1e-6)

