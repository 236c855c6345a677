"""Numbers a reader can trust: sampling intervals, per-query outcomes, `benchbarcode compare`, the
small-data rules, and what files written before them show."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import (
    adjusted_mutual_info_score,
    balanced_accuracy_score,
    f1_score,
)

from benchbarcode import compare, intervals, leaderboard, per_query
from benchbarcode.cli import main
from benchbarcode.contracts import MIN_QUERIES, QueryOutcomes
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.registry import get_task
from benchbarcode.results import read_result
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec
from benchbarcode.store import ResultStore

DATA = "sim:1200"
TASKS = ("open-world", "closed-world")


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """kmer (k=4) and kmer (k=2) on the same data: two runs whose outcomes differ query by query."""
    root = tmp_path_factory.mktemp("runs")
    ds = load_barcodes(DATA)
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHBARCODE_CACHE", str(root / "cache"))
        for k in (4, 2):
            spec = EncoderSpec("kmer", options={"k": k}, device="cpu")
            report = run_benchmark(RunOptions(encoder=spec, tasks=TASKS, results_dir=str(root / "results"),
                                              progress=False), ds)
            out[k] = report.directory
    return root / "results", out


# ----------------------------------------------------------------------------- the statistics
def test_wilson_matches_its_closed_form():
    # 7 of 10 at 95 %: the textbook values (e.g. Newcombe 1998, Table I: 0.3968 - 0.8922)
    low, high = intervals.wilson(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    z = intervals.Z
    for k, n in ((0, 12), (12, 12), (33, 250)):
        p = k / n
        centre = (2 * k + z * z) / (2 * (n + z * z))
        half = z * np.sqrt(z * z + 4 * k * (1 - p)) / (2 * (n + z * z))
        assert intervals.wilson(k, n) == pytest.approx((max(0, centre - half), min(1, centre + half)))
    assert intervals.wilson(0, 12)[0] == 0.0 and intervals.wilson(12, 12)[1] == 1.0


def test_weighted_metrics_equal_sklearn_on_every_query_once():
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 6, 200), rng.integers(0, 8, 200)
    ones = np.ones(200)
    correct = (true == pred).astype(float)
    assert intervals.balanced_accuracy(true, correct, ones) == pytest.approx(balanced_accuracy_score(true, pred))
    present = np.unique(true)
    assert intervals.macro_f1(true, pred, ones) == pytest.approx(
        f1_score(true, pred, labels=present, average="macro", zero_division=0))
    # a weight of 2 is the query drawn twice
    w = rng.integers(0, 3, 200)
    drawn = intervals.resampled(w)
    assert intervals.balanced_accuracy(true, correct, w.astype(float)) == pytest.approx(
        balanced_accuracy_score(true[drawn], pred[drawn]))


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    correct = (rng.random(300) < 0.7).astype(float)
    stat = lambda w: intervals.accuracy(correct, w)
    first = intervals.bootstrap(stat, 300, seed=5)
    assert first == intervals.bootstrap(stat, 300, seed=5) != intervals.bootstrap(stat, 300, seed=6)
    low, high = first
    assert low < correct.mean() < high
    assert abs((high - low) - np.subtract(*intervals.wilson(correct.sum(), 300)[::-1])) < 0.02


@pytest.mark.parametrize("a_only,b_only", [(0, 0), (5, 0), (3, 9), (20, 11), (40, 40)])
def test_mcnemar_equals_scipys_binomial_test(a_only, b_only):
    expected = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only, 0.5).pvalue
    assert compare.mcnemar_exact(a_only, b_only) == pytest.approx(expected)


# ----------------------------------------------------------------------------- per-query files
def test_per_query_file_round_trips_and_is_checked(tmp_path):
    outcomes = QueryOutcomes(["p1", "p2", "p3"], ["Aus bus", "C d", "e"],
                             {"predicted_seed0": ["Aus bus", "e", "e"], "predicted_seed1": ["C d", "C d", "e"]},
                             main=("predicted_seed0", "predicted_seed1"))
    assert per_query.to_bytes(outcomes) == per_query.to_bytes(outcomes)  # no time inside the gzip
    data = per_query.to_bytes(outcomes)
    (tmp_path / "t.queries.tsv.gz").write_bytes(data)
    result = {"per_query": per_query.record(outcomes, "t.queries.tsv.gz", data)}
    frame = per_query.read(tmp_path / "t.json", result)
    pd.testing.assert_frame_equal(frame, outcomes.frame().astype(str))
    assert per_query.correctness(frame, result["per_query"]["main"]).tolist() == [0.5, 0.5, 1.0]
    assert per_query.read(tmp_path / "t.json", {}) is None  # written before outcomes were stored
    (tmp_path / "t.queries.tsv.gz").write_bytes(gzip.compress(b"processid\ttrue\n"))
    with pytest.raises(UserError, match="SHA-256 differs"):
        per_query.read(tmp_path / "t.json", result)
    (tmp_path / "t.queries.tsv.gz").unlink()
    with pytest.raises(UserError, match="cannot read the per-query outcomes"):
        per_query.read(tmp_path / "t.json", result)


def test_run_stores_intervals_and_outcomes_that_reproduce_its_scores(runs):
    _, dirs = runs
    for task in TASKS:
        path = dirs[4] / f"{task}.json"
        result = read_result(path)
        frame = per_query.read(path, result)
        right = per_query.correctness(frame, result["per_query"]["main"])
        assert right.mean() == pytest.approx(result["main_value"])
        n = result["intervals"]["accuracy"]["n"]
        assert n == len(frame) == result["counts"]["queries" if task == "open-world" else "test"]
        assert (result["intervals"]["accuracy"]["low"], result["intervals"]["accuracy"]["high"]) == pytest.approx(
            intervals.wilson(right.sum(), n))
        assert result["intervals"]["balanced_accuracy"]["method"].startswith("percentile bootstrap")
    probe = read_result(dirs[4] / "closed-world.json")
    assert probe["per_query"]["main"] == ["predicted_seed0", "predicted_seed1", "predicted_seed2"]


# ----------------------------------------------------------------------------- compare
def test_compare_pairs_the_queries_of_two_runs(runs, capsys):
    _, dirs = runs
    (open_a, open_b) = (compare.compare(dirs[k], dirs[j]) for k, j in ((4, 2), (2, 4)))
    for rec in open_a:
        a = per_query.correctness(*_frame_main(dirs[4] / f"{rec['task']}.json"))
        b = per_query.correctness(*_frame_main(dirs[2] / f"{rec['task']}.json"))
        assert rec["difference"] == pytest.approx(a.mean() - b.mean())
        assert rec["low"] <= rec["difference"] <= rec["high"]
        if rec["task"] == "open-world":  # one prediction per query: McNemar on exactly these counts
            assert rec["mcnemar"]["a_only"] == int(((a == 1) & (b == 0)).sum())
            assert rec["mcnemar"]["b_only"] == int(((b == 1) & (a == 0)).sum())
    mirrored = {r["task"]: r for r in open_b}
    for rec in open_a:  # A - B is minus B - A, the test symmetric
        assert mirrored[rec["task"]]["difference"] == pytest.approx(-rec["difference"])
        assert mirrored[rec["task"]]["mcnemar"]["p"] == pytest.approx(rec["mcnemar"]["p"])
    assert main(["compare", str(dirs[4]), str(dirs[2] / "open-world.json")]) == 0
    out = capsys.readouterr().out
    assert "McNemar p" in out and "open-world" in out and "closed-world" not in out.split("\n\n")[1]


def _frame_main(path):
    result = read_result(path)
    return per_query.read(path, result), result["per_query"]["main"]


def test_compare_refuses_what_does_not_compare(runs, tmp_path, capsys):
    _, dirs = runs
    other = tmp_path / "other"
    shutil.copytree(dirs[2], other)
    result = json.loads((other / "open-world.json").read_text())
    result["data"]["content_hash"] = "0" * 64
    (other / "open-world.json").write_text(json.dumps(result))
    assert main(["compare", str(dirs[4] / "open-world.json"), str(other / "open-world.json")]) == 2
    assert "different data (content_hash" in capsys.readouterr().err
    old = tmp_path / "old"
    shutil.copytree(dirs[2], old)
    result = json.loads((old / "open-world.json").read_text())
    del result["per_query"]
    (old / "open-world.json").write_text(json.dumps(result))
    assert main(["compare", str(dirs[4] / "open-world.json"), str(old / "open-world.json")]) == 2
    assert "no per-query outcomes" in capsys.readouterr().err
    result["data"]["content_hash"] = "0" * 64  # other data and no outcomes: the data is what is said
    (old / "open-world.json").write_text(json.dumps(result))
    assert main(["compare", str(dirs[4] / "open-world.json"), str(old / "open-world.json")]) == 2
    assert "different data (content_hash" in capsys.readouterr().err
    assert main(["compare", str(dirs[4] / "open-world.json"), str(tmp_path / "nothing")]) == 2
    assert "no such result file or run directory" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the board
def test_board_shows_intervals_and_compares_one_seed_with_its_control_by_queries(runs, tmp_path, monkeypatch):
    root, dirs = runs
    board = tmp_path / "board"
    shutil.copytree(root, board)
    located, _ = ResultStore(board).scan_located()
    # k=2 declared k=4's control: the pairing is the leaderboard's own, the outcomes real
    monkeypatch.setattr(leaderboard, "control_of",
                        lambda meta: ("kmer", {"k": 2}) if meta["options"].get("k") == 4 else None)
    results = [r for _, r in located]
    reader = compare.outcomes_reader({id(r): p for p, r in located})
    (table,) = leaderboard.build(results, outcomes=reader)
    row4 = next(r for r in table.rows if "k=4" in r.label)
    row2 = next(r for r in table.rows if "k=2" in r.label)
    diff = row4.vs_control
    assert diff == leaderboard._over_queries(row4, row2, reader)
    assert diff["over"] == "queries" and diff["n"] == 1 and diff["low"] <= diff["mean"] <= diff["high"]
    (without,) = leaderboard.build(results)  # no outcomes to read: one seed says so
    assert next(r for r in without.rows if "k=4" in r.label).vs_control["low"] is None
    assert diff["mean"] == pytest.approx(row4.metrics["harmonic mean"].mean - row2.metrics["harmonic mean"].mean)
    text = leaderboard.render([table], "markdown")
    n_open = read_result(dirs[4] / "open-world.json")["intervals"]["accuracy"]["n"]
    assert f"open-world (accuracy; n={n_open:,})" in text
    interval = read_result(dirs[4] / "open-world.json")["intervals"]["accuracy"]
    assert f"[{interval['low']:.3f}, {interval['high']:.3f}]" in text
    line = next(line for line in text.splitlines() if line.startswith("| ") and "kmer (k=4)" in line)
    assert line.rstrip(" |").split("|")[-3].strip().endswith("(queries)")
    csv = leaderboard.render([table], "csv")
    assert "open-world interval low" in csv.splitlines()[0]


def test_results_written_before_intervals_say_not_recorded(runs, tmp_path, capsys):
    root, _ = runs
    old = tmp_path / "old"
    shutil.copytree(root, old)
    for path in old.glob("*/*/*.json"):  # as benchbarcode wrote them before schema 4
        result = json.loads(path.read_text())
        for field in ("intervals", "per_query"):
            result.pop(field)
        result["schema_version"] = 3
        path.write_text(json.dumps(result))
    out = tmp_path / "board.md"
    assert main(["leaderboard", "--results-dir", str(old), "--out", str(out)]) == 0
    text = out.read_text()
    assert "(interval: not recorded)" in text and "[0." not in text.split("| rank")[1].split("Reproduce")[0]
    assert main(["run", "--encoder", "kmer", "--encoder-option", "k=4", "--tasks", ",".join(TASKS), "--data", DATA,
                 "--results-dir", str(old), "--device", "cpu"]) == 0
    assert "interval: not recorded" in capsys.readouterr().out


# ----------------------------------------------------------------------------- small data
def test_too_few_queries_say_so_with_the_counts_and_data_describe_agrees():
    rng = np.random.default_rng(0)
    n = MIN_QUERIES - 1
    genus = [f"g{i % 3}" for i in range(n)]
    labels = {split: pd.DataFrame({"processid": [f"{split}{i}" for i in range(n)], "genus": genus,
                                   "species": genus, "bin": genus}) for split in ("train", "test_unseen")}
    emb = {split: rng.normal(size=(n, 4)).astype(np.float32) for split in labels}
    task = get_task("open-world")
    outcome = task.evaluate(emb, labels)
    assert outcome.unscored == f"too few to score: {n} queries (needs at least {MIN_QUERIES})"
    assert outcome.scores == {} and outcome.counts["queries"] == n
    assert task.unsupported(labels) == outcome.unscored


def test_hdbscan_that_finds_no_cluster_says_so():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)  # 20 species of 2: no cluster of 5 is real
    species = [f"s{i // 2}" for i in range(40)]
    labels = {"test_unseen": pd.DataFrame({"processid": [f"p{i}" for i in range(40)], "genus": species,
                                           "species": species, "bin": species})}
    outcome = get_task("clustering").evaluate({"test_unseen": x}, labels)
    if outcome.counts["hdbscan_clusters"] == 0:
        assert "HDBSCAN labelled every record noise" in outcome.extras["notes"][0]
    else:
        assert "notes" not in outcome.extras
    assert outcome.per_query.kind == "clustering" and len(outcome.per_query.ids) == 40
    ami = adjusted_mutual_info_score(outcome.per_query.true, outcome.per_query.predicted["cluster_agglomerative"])
    assert ami == pytest.approx(outcome.scores["ami_agglomerative"])
    low, high = outcome.intervals["ami_agglomerative"]["low"], outcome.intervals["ami_agglomerative"]["high"]
    assert low <= outcome.scores["ami_agglomerative"] <= high


def test_ami_is_shown_clipped_and_stored_as_computed():
    from benchbarcode.summary import shown

    assert shown("ami_agglomerative", 1.0000000000000004) == 1.0 and shown("ami_hdbscan", -0.02) == 0.0
    assert shown("accuracy", 1.5) == 1.5  # only AMI is clipped


def test_a_p_value_that_underflows_is_shown_as_a_bound_not_zero():
    p = compare.mcnemar_exact(3141, 4)  # the BOLD cnn vs cnn-init closed-world split: below float64's range
    assert p == 0.0 and compare.p_text(p) == "< 1e-300"
    assert compare.p_text(compare.mcnemar_exact(125, 375)) == "4.84e-30" and compare.p_text(1.0) == "1"
