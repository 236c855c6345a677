"""`benchbarcode leaderboard`: aggregation over seeds, controls, comparable tables, determinism,
formats, the figure, bad inputs; and the committed reference board regenerates byte for byte."""

from __future__ import annotations

import json
import random
import shutil
import statistics
from pathlib import Path

import pytest

from benchbarcode import leaderboard
from benchbarcode.cli import main
from benchbarcode.registry import get_encoder
from benchbarcode.results import SCHEMA_VERSION, build_result, is_profile, write_result
from benchbarcode.store import load_results
from benchbarcode.stats import paired_difference

ROOT = Path(__file__).resolve().parents[1]
DATA = {"name": "sim:900:0", "source": "sim:900", "content_hash": "a" * 64, "records": 900,
        "split_origin": "derived", "split_seed": 0, "split_sizes": {"train": 500, "test": 100}}
OTHER_DATA = {**DATA, "name": "bold.tsv", "content_hash": "b" * 64}


def task_meta(name: str, version: str = "1") -> dict:
    return {"name": name, "version": version, "description": name, "splits": ["train", "test"],
            "label_rank": "genus", "metrics": ["accuracy"], "main_score": "accuracy", "protocol": {"k": 1}}


def encoder_meta(name: str, seed: int, **extra) -> dict:
    """Records shaped like the in-house ones: mae pretrained from the seed, its random control."""
    if name == "mae":
        return {"name": "mae", "family": "in-house transformer", "objective": "mae", "parameters": 1000,
                "embedding_dim": 8, "pooling": "mean", "options": {},
                "checkpoint": {"sha256": f"{seed}" * 64, "preset": "tiny", "seed": seed},
                "budget": {"steps": 250, "sequences": 16000, "flops": 4.0e12 + seed, "batch_size": 64},
                "control": {"encoder": "random", "options": {"like": "mae"}}, **extra}
    if name == "random":
        return {"name": "random", "family": "baseline", "objective": "random-init", "parameters": 1000,
                "embedding_dim": 8, "pooling": "mean", "options": {"like": "mae", "seed": seed, "preset": "tiny"},
                "checkpoint": {"like": "mae", "preset": "tiny", "seed": seed}, "budget": {"steps": 0, "flops": 0.0},
                "seeded": True, **extra}
    return {**get_encoder("kmer").create(k=4).meta.to_dict(), **extra}


def write(root: Path, encoder: dict, task: str, seed: int, value: float, data=DATA, version="1",
          run_id=None) -> Path:
    result = build_result(run_id=run_id or f"{data['name']}-seed{seed}", task_meta=task_meta(task, version),
                          encoder_meta=encoder, data_identity=data, device="cpu", dtype="float32",
                          batch_size=64, seeds={"run": seed, "split": 0},
                          outcome={"scores": {"accuracy": value}, "scores_std": {}, "seeds": [seed], "counts": {}},
                          timings_s={"pretrain": 0, "embed": 0, "evaluate": 0}, command=["benchbarcode", "run"])
    path = root / encoder["name"] / result["run_id"] / f"{task}.json"
    write_result(path, result)
    return path


SCORES = {  # encoder -> task -> per seed
    "mae": {"closed-world": [0.95, 0.96, 0.94], "open-world": [0.70, 0.75, 0.73], "clustering": [0.8, 0.7, 0.75]},
    "random": {"closed-world": [0.96, 0.95, 0.95], "open-world": [0.68, 0.78, 0.74], "clustering": [0.7, 0.8, 0.7]},
    "kmer": {"closed-world": [1.0, 1.0, 1.0], "open-world": [0.98, 0.98, 0.98]},  # no clustering: incomplete
}


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    for name, tasks in SCORES.items():
        for task, values in tasks.items():
            for seed, value in enumerate(values):
                write(root, encoder_meta(name, seed), task, seed, value)
    return root


def harmonic(a: float, b: float) -> float:
    return 2 * a * b / (a + b)


def test_rows_aggregate_seeds_and_pair_controls(results):
    (table,) = leaderboard.build(load_results(results))
    rows = {row.meta["name"]: row for row in table.rows}
    assert [r.meta["name"] for r in table.rows] == ["kmer", "random", "mae"]  # by harmonic mean
    assert table.columns == ["closed-world", "open-world", "harmonic mean", "clustering"]
    mae = rows["mae"]
    assert mae.seeds == [0, 1, 2] and mae.metrics["open-world"].mean == pytest.approx(statistics.fmean([0.70, 0.75, 0.73]))
    assert mae.metrics["open-world"].std == pytest.approx(statistics.stdev([0.70, 0.75, 0.73]))
    h_mae = {s: harmonic(*(SCORES["mae"][t][s] for t in ("closed-world", "open-world"))) for s in range(3)}
    h_random = {s: harmonic(*(SCORES["random"][t][s] for t in ("closed-world", "open-world"))) for s in range(3)}
    assert mae.control == "random (like=mae, preset=tiny)"
    want = paired_difference(h_mae, h_random)
    assert mae.vs_control["seeds"] == want.pop("seeds") == [0, 1, 2]
    assert {k: mae.vs_control[k] for k in want} == pytest.approx(want)
    assert rows["kmer"].missing == ["clustering"] and rows["kmer"].vs_control is None


def test_a_carried_option_pairs_each_row_with_its_own_control(tmp_path):
    """cnn declares ``carry: [features]``: cnn features=reference is compared with cnn-init
    features=reference, and plain cnn with plain cnn-init, whichever sorts first."""
    from benchbarcode.registry import get_encoder as lookup

    declared = lookup("cnn").meta.to_dict()["control"]

    def meta(name: str, **options) -> dict:
        record = {"name": name, "family": "baseline", "objective": "supervised-species", "parameters": 10,
                  "embedding_dim": 8, "pooling": "dense", "options": options, "checkpoint": {"seed": 0},
                  "budget": {"steps": 0, "flops": 0.0}}
        if name == "cnn":
            return record | {"control": declared, "budget": {"steps": 10, "sequences": 1280, "flops": 1e9,
                                                            "supervision": "species labels of the train split"}}
        return record | {"seeded": True}

    root = tmp_path / "results"
    values = {("cnn", None): 0.9, ("cnn", "reference"): 0.8, ("cnn-init", None): 0.5, ("cnn-init", "reference"): 0.2}
    for (name, features), value in values.items():
        options = {"features": features} if features else {}
        for task in ("closed-world", "open-world"):
            write(root, meta(name, **options), task, 0, value, run_id=f"{name}-{features}-seed0")
    (table,) = leaderboard.build(load_results(root))
    rows = {(r.meta["name"], (r.meta.get("options") or {}).get("features")): r for r in table.rows}
    assert rows["cnn", "reference"].vs_control["mean"] == pytest.approx(0.8 - 0.2)
    assert rows["cnn", None].vs_control["mean"] == pytest.approx(0.9 - 0.5)
    text = leaderboard.render([table], "markdown")
    assert "| cnn † " in text and "| cnn-init " in text and "`†`: trained on the species labels" in text


def test_markdown_numbers_are_the_means_of_the_files(results):
    text = leaderboard.render(leaderboard.build(load_results(results)), "markdown")
    line = next(l for l in text.splitlines() if l.startswith("| 3 ") and "| mae " in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    open_world = [0.70, 0.75, 0.73]
    assert cells[7] == f"{statistics.fmean(open_world):.4f} ± {statistics.stdev(open_world):.4f}"
    assert cells[4] == "16,000 seq, 4.00e+12 FLOPs" and cells[5] == "3"
    kmer = next(l for l in text.splitlines() if "| kmer (k=4) (incomplete: no clustering)" in l)
    assert kmer.rstrip("| ").endswith("-")  # a missing cell is "-", never 0


def test_same_files_same_bytes_whatever_their_order_and_folders(results, tmp_path):
    outputs = {fmt: leaderboard.render(leaderboard.build(load_results(results)), fmt) for fmt in leaderboard.FORMATS}
    shuffled = tmp_path / "elsewhere"
    paths = sorted(results.glob("*/*/*.json"))
    random.Random(3).shuffle(paths)
    for i, path in enumerate(paths):
        target = shuffled / f"enc{(i * 7) % 5}" / f"run{i}" / path.name
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
    again = load_results(shuffled)
    random.Random(5).shuffle(again)
    for fmt, text in outputs.items():
        assert leaderboard.render(leaderboard.build(again), fmt) == text


def test_only_comparable_rows_share_a_table(tmp_path):
    root = tmp_path / "results"
    for seed in (0, 1):
        write(root, encoder_meta("kmer", seed), "open-world", seed, 0.9)
        write(root, encoder_meta("kmer", seed), "open-world", seed, 0.5, data=OTHER_DATA)
        write(root, encoder_meta("mae", seed), "open-world", seed, 0.6, version="2")
    tables = leaderboard.build(load_results(root))
    assert [(t.data["name"], [r.meta["name"] for r in t.rows]) for t in tables] == [
        ("bold.tsv", ["kmer"]), ("sim:900:0", ["kmer"]), ("sim:900:0", ["mae"])]
    assert [t.tasks["open-world"]["version"] for t in tables] == ["1", "1", "2"]
    assert [t.data["name"] for t in leaderboard.build(load_results(root), data="bbbb")] == ["bold.tsv"]


def test_newest_result_wins_for_one_seed(tmp_path):
    root = tmp_path / "results"
    old = write(root, encoder_meta("kmer", 0), "open-world", 0, 0.1, run_id="a")
    new = write(root, encoder_meta("kmer", 0), "open-world", 0, 0.9, run_id="b")
    for path, date in ((old, "2026-01-01T00:00:00+00:00"), (new, "2026-06-01T00:00:00+00:00")):
        doc = json.loads(path.read_text())
        doc["date"] = date
        path.write_text(json.dumps(doc))
    (table,) = leaderboard.build(load_results(root))
    assert table.rows[0].metrics["open-world"].values == {0: 0.9}


def test_cli_formats_plot_and_says_what_it_wrote(results, tmp_path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(out / "b.html"),
                 "--plot", str(out / "b.png")]) == 0
    said = capsys.readouterr()
    assert said.out == "" and said.err.splitlines() == [f"benchbarcode: wrote {out / 'b.html'} (html, 1 table, 3 rows)",
                                                         f"benchbarcode: wrote {out / 'b.png'} (png figure)"]
    page = (out / "b.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "<svg" in page  # tests/test_board_html.py
    png = (out / "b.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(out / "again.png"), "--format", "json",
                 "--plot", str(out / "c.png")]) == 0
    assert (out / "c.png").read_bytes() == png  # the same results, the same figure
    assert json.loads((out / "again.png").read_text())["tables"][0]["rows"][0]["encoder"] == "kmer (k=4)"
    capsys.readouterr()
    assert main(["leaderboard", "--results-dir", str(results), "--format", "csv"]) == 0
    said = capsys.readouterr()
    assert said.out.startswith("data,data_hash,protocol,rank,encoder") and said.err == ""  # standard output: the board only


def test_reproduce_says_which_data_file_a_clone_lacks(tmp_path):
    local = {**OTHER_DATA, "source": "../shared/data/bold.tsv"}
    root = tmp_path / "results"
    for data in (DATA, local, {**DATA, "name": "BIOSCAN-5M", "source": "bioscan5m:/data/b5m", "content_hash": "c" * 64}):
        write(root, encoder_meta("kmer", 0), "open-world", 0, 0.9, data=data)
    tables = leaderboard.build(load_results(root))
    assert [t.local_sources for t in tables] == [[], ["../shared/data/bold.tsv"], []]  # sim and a download: no note
    note = ("`--data ../shared/data/bold.tsv`: a local file, not in this repository (bold.tsv); pass the path of "
            "your copy. Its records as read here have content hash bbbbbbbbbbbb (`benchbarcode data describe "
            "--data FILE` prints your copy's).")
    assert leaderboard.reproduce_notes(tables[1]) == [note]
    assert f"```\n\n{note}\n" in leaderboard.render(tables, "markdown")  # under the commands
    assert [t["reproduce_notes"] for t in json.loads(leaderboard.render(tables, "json"))["tables"]] == [[], [note], []]
    assert "<code>--data ../shared/data/bold.tsv</code>: a local file" in leaderboard.render(tables, "html")


def test_bad_inputs_are_one_line_errors_and_write_nothing(results, tmp_path, capsys):
    out = tmp_path / "board.md"
    (tmp_path / "empty").mkdir()
    truncated = tmp_path / "truncated"
    shutil.copytree(results, truncated)
    bad = sorted(truncated.glob("*/*/*.json"))[0]
    bad.write_text(bad.read_text()[:200])
    newer = tmp_path / "newer"
    shutil.copytree(results, newer)
    future = sorted(newer.glob("*/*/*.json"))[0]
    doc = json.loads(future.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    future.write_text(json.dumps(doc))
    for directory, says in ((tmp_path / "nope", "no such results directory"), (tmp_path / "empty", "no valid result files"),
                            (truncated, f"{bad}:"), (newer, "upgrade benchbarcode")):
        assert main(["leaderboard", "--results-dir", str(directory), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1
        assert not out.exists()
    assert main(["leaderboard", "--results-dir", str(truncated), "--out", str(out), "--skip-invalid"]) == 0
    assert f"skipped {bad}" in capsys.readouterr().err and out.is_file()
    assert main(["leaderboard", "--results-dir", str(results), "--data", "nosuch"]) == 2
    assert "no results for it" in capsys.readouterr().err
    assert main(["leaderboard", "--results-dir", str(results), "--plot", str(tmp_path / "p.pdf")]) == 2


BOARD = ROOT / "leaderboard"


def test_committed_board_regenerates_byte_for_byte(tmp_path):
    """The acceptance command reproduces the committed board, also from a shuffled copy."""
    copy = tmp_path / "copy"
    paths = sorted((BOARD / "results").glob("*/*/*.json"))
    random.Random(1).shuffle(paths)
    for i, path in enumerate(paths):
        target = copy / f"e{i % 3}" / f"r{i}" / path.name
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
        outcomes = path.with_name(path.stem + ".queries.tsv.gz")  # read where seeds are fewer than three
        if outcomes.is_file():
            shutil.copy(outcomes, target.parent)
    if (BOARD / "results" / leaderboard.NOTES).is_file():
        shutil.copy(BOARD / "results" / leaderboard.NOTES, copy / leaderboard.NOTES)
    for results in (BOARD / "results", copy):
        for fmt, name in (("markdown", "LEADERBOARD.md"), ("csv", "LEADERBOARD.csv"), ("html", "LEADERBOARD.html")):
            out = tmp_path / f"{results.name}-{name}"
            assert main(["leaderboard", "--results-dir", str(results), "--format", fmt, "--out", str(out)]) == 0
            assert out.read_text() == (BOARD / name).read_text(), f"{name} from {results} differs"


def test_readme_shows_the_committed_sim_table():
    """The README's measured table is the board's sim table, not a hand-written copy."""
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- leaderboard:sim -->")[1].split("<!-- /leaderboard:sim -->")[0]
    board = (BOARD / "LEADERBOARD.md").read_text()
    section = board.split("\n## sim:")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert [line for line in shown.splitlines() if line.startswith("|")] == table


def test_committed_numbers_are_the_means_of_their_files():
    """Each cell of the committed board, recomputed from the result files without the leaderboard
    code: the mean (and sample std) of the main scores of that encoder's runs over seeds."""
    results = [r for r in load_results(BOARD / "results") if not is_profile(r)]
    text = (BOARD / "LEADERBOARD.md").read_text()
    checked = 0
    for section in text.split("\n## ")[1:]:
        if "content hash " not in section:  # the notes under the tables
            continue
        data_hash = section.split("content hash ")[1][:12]
        lines = [line for line in section.splitlines() if line.startswith("| ")]
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        for line in lines[1:]:
            cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            label = cells["encoder"].split(" (incomplete")[0].removesuffix(" ‡").removesuffix(" †")  # marks: not an embedding, supervised
            for column, cell in cells.items():
                task = column.split(" (")[0]
                if cell in ("-", "too few records") or task not in SCORES_TASKS:
                    continue
                values = [r["main_value"] for r in results if r["data"]["content_hash"].startswith(data_hash)
                          and r["task"]["name"] == task and _label(r["encoder"]) == label
                          and r["main_value"] is not None]
                mean = statistics.fmean(values)
                cell = cell.split(" [")[0]  # the sampling interval after mean ± std
                text_mean = cell.split(" ± ")[0].split(" (")[0]
                assert text_mean == f"{mean:.4f}", (label, task, cell, values)
                if len(values) > 1:
                    assert cell.split(" ± ")[1].split(" (")[0] == f"{statistics.stdev(values):.4f}"
                checked += 1
    assert checked >= 20


SCORES_TASKS = ("closed-world", "open-world", "unseen-species", "clustering", "bin-reconstruction")


def _label(meta: dict) -> str:
    options = {k: v for k, v in (meta.get("options") or {}).items() if k != "seed"}
    return meta["name"] + (f" ({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})" if options else "")
