"""Published BIOSCAN-5M figures (benchbarcode.reported): the package data, when the leaderboard shows
them (a BIOSCAN-5M table under --protocol reference only), how they sit beside measured rows, and
`benchbarcode reported`."""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest

from benchbarcode import leaderboard, reported
from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.results import build_result

SPLITS = dict(reported.BIOSCAN5M_SPLITS)
DROPPED = {"pretrain": 2_393_524, "train": 171_152, "val": 8_169, "test": 21_011, "key_unseen": 24_299,
           "val_unseen": 6_377, "test_unseen": 4_486, "other_heldout": 35_340}  # by the reference's de-duplication
BIOSCAN5M = {"name": "BIOSCAN-5M", "source": "bioscan5m:/data/bioscan5m", "content_hash": "c" * 64,
             "reader": "bioscan5m", "records": 5_150_850 - sum(DROPPED.values()), "split_origin": "source",
             "split_seed": None, "split_sizes": {s: n - DROPPED[s] for s, n in SPLITS.items()},
             "protocol": "reference", "deduplication": DROPPED, "limit": None}
NOT_BIOSCAN5M = {  # each under the reference protocol unless said
    "sim": {"name": "sim:20000:0", "source": "sim", "content_hash": "d" * 64, "reader": "simulator",
            "records": 20_000, "split_origin": "derived", "split_seed": 0,
            "split_sizes": {"train": 9_000, "test": 2_000, "test_unseen": 500}, "protocol": "reference",
            "deduplication": {}},
    "twin": {**BIOSCAN5M, "name": "sim-large:5150850:0", "source": "sim-large", "content_hash": "e" * 64,
             "reader": "bioscan5m (sim-large twin)"},
    "twin read by path": {**BIOSCAN5M, "name": "sim-large-5150850-0-v1.csv", "content_hash": "e" * 64,
                          "source": "/home/u/.cache/benchbarcode/data/sim-large-5150850-0-v1.csv"},
    "BOLD": {"name": "bold_insects_coi5p.tsv.gz", "source": "../shared/data/bold_insects_coi5p.tsv.gz",
             "content_hash": "f" * 64, "reader": "bold-v3", "records": 60_000, "split_origin": "derived",
             "split_seed": 0, "split_sizes": {"train": 30_000, "test": 8_000, "test_unseen": 3_000},
             "protocol": "reference", "deduplication": {}},
    "BIOSCAN-5M, default protocol": {k: v for k, v in BIOSCAN5M.items() if k not in ("protocol", "deduplication")}
                                    | {"records": 5_150_850, "split_sizes": SPLITS, "content_hash": "9" * 64},
    "BIOSCAN-5M, no reader recorded": {k: v for k, v in BIOSCAN5M.items() if k != "reader"},
    "a part of BIOSCAN-5M": {**BIOSCAN5M, "records": BIOSCAN5M["records"] - 1000,
                             "split_sizes": {**BIOSCAN5M["split_sizes"], "pretrain": BIOSCAN5M["split_sizes"]["pretrain"] - 1000}},
    "BIOSCAN-5M, --limit": {**BIOSCAN5M, "limit": 500},
}

DNABERT2 = {"name": "dnabert2", "family": "DNABERT-2", "objective": "mlm", "parameters": 117_068_544,
            "embedding_dim": 768, "pooling": "mean", "options": {}, "budget": {},
            "checkpoint": {"model": "zhihan1996/DNABERT-2-117M", "revision": None, "commit": "7bce263b"}}
BARCODEBERT_844 = {"name": "mlm", "family": "in-house transformer", "objective": "mlm", "parameters": 40_000_000,
                   "embedding_dim": 768, "pooling": "mean", "options": {}, "k": 8, "layers": 4, "heads": 4,
                   "hidden_size": 768, "budget": {"steps": 1000, "sequences": 1_000_000},
                   "checkpoint": {"sha256": "1" * 64, "format": "reference .pt", "arch": "transformer"}}
KMER = {"name": "kmer", "family": "baseline", "objective": "none", "parameters": 0, "embedding_dim": 256,
        "pooling": None, "options": {"k": 4}, "checkpoint": {}, "budget": {"steps": 0}}
MEASURED = {  # encoder -> closed-world, open-world
    "dnabert2": (DNABERT2, 0.7000, 0.1500), "mlm": (BARCODEBERT_844, 0.9000, 0.5000), "kmer": (KMER, 0.8000, 0.4000)}


def result(encoder: dict, task: str, value: float, data: dict, seed: int = 0) -> dict:
    under_reference = data.get("protocol") == "reference"
    meta = {"name": task, "version": "1", "description": task, "splits": ["train", "test"], "label_rank": "genus",
            "metrics": ["accuracy"], "main_score": "accuracy",
            "protocol": {"k": 1, **({"protocol": "reference"} if under_reference else {})}}
    return build_result(run_id=f"{data['name']}-{encoder['name']}-seed{seed}", task_meta=meta, encoder_meta=encoder,
                        data_identity=data, device="cpu", dtype="float32", batch_size=64,
                        seeds={"run": seed, "split": 0},
                        outcome={"scores": {"accuracy": value}, "scores_std": {}, "seeds": [seed], "counts": {}},
                        timings_s={"pretrain": 0, "embed": 0, "evaluate": 0}, command=["benchbarcode", "run"])


def results_on(data: dict) -> list[dict]:
    return [result(encoder, task, value, data, seed)
            for encoder, closed, open_ in MEASURED.values() for seed in (0, 1)
            for task, value in (("closed-world", closed + seed / 100), ("open-world", open_ + seed / 100))]


def markdown_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| rank")]


# ----------------------------------------------------------------------------- the rule
def test_a_bioscan5m_reference_table_qualifies_and_its_look_alikes_do_not():
    assert reported.bioscan5m_problem(BIOSCAN5M) is None
    tasks = {"open-world": {"protocol": {"k": 1, "protocol": "reference"}}}
    assert reported.applies(BIOSCAN5M, tasks)
    assert not reported.applies(BIOSCAN5M, {**tasks, "closed-world": {"protocol": {"k": 1}}})  # a default-protocol task
    for why, data in NOT_BIOSCAN5M.items():
        assert not reported.applies(data, tasks), why
    assert "generated" in reported.bioscan5m_problem(NOT_BIOSCAN5M["twin read by path"])
    assert "reader" in reported.bioscan5m_problem(NOT_BIOSCAN5M["twin"])


def test_the_loader_records_the_reader_and_the_rule_reads_it(tmp_path, monkeypatch):
    """The real loader: the twin (sim-large) records its own reader; the same file read as
    BIOSCAN-5M metadata (bioscan5m:DIR, reference protocol) qualifies once the split sizes match,
    the de-duplicated records added back."""
    twin = load_barcodes("sim-large:10000", cache_dir=tmp_path / "cache")
    as_read = twin.identity()
    monkeypatch.setattr(reported, "BIOSCAN5M_RECORDS", as_read["records"])
    monkeypatch.setattr(reported, "BIOSCAN5M_SPLITS", {s: n for s, n in as_read["split_sizes"].items() if n})
    twin_ref = load_barcodes("sim-large:10000", cache_dir=tmp_path / "cache", protocol="reference").identity()
    assert twin_ref["reader"] == "bioscan5m (sim-large twin)" and reported.bioscan5m_problem(twin_ref)
    folder = tmp_path / "bioscan5m"
    folder.mkdir()
    (cached,) = (tmp_path / "cache").glob("sim-large-*.csv")
    shutil.copy(cached, folder / "BIOSCAN_5M_Insect_Dataset_metadata.csv")
    real = load_barcodes(f"bioscan5m:{folder}", protocol="reference").identity()
    assert real["reader"] == "bioscan5m" and real["records"] < as_read["records"]  # duplicates dropped
    assert reported.bioscan5m_problem(real) is None
    assert reported.bioscan5m_problem(load_barcodes(str(cached), protocol="reference").identity())  # the twin by path


# ----------------------------------------------------------------------------- the leaderboard
def test_reported_rows_sit_unranked_under_their_measured_row_with_the_difference():
    (table,) = leaderboard.build(results_on(BIOSCAN5M))
    assert [r.meta["name"] for r in table.rows] == ["mlm", "kmer", "dnabert2"]
    assert [r.rank for r in table.rows] == [1, 2, 3]  # reported rows take no rank
    by_key = {rep.entry.key: rep for rep in table.reported}
    assert len(by_key) == 7
    dnabert2 = by_key["dnabert2"]
    assert dnabert2.measured is table.rows[2] and by_key["barcodebert-8-4-4"].measured is table.rows[0]
    assert dnabert2.differences == pytest.approx({"closed-world": 0.705 - 0.6781, "open-world": 0.155 - 0.1799})
    assert by_key["cnn"].measured is None and by_key["cnn"].differences == {}

    text = leaderboard.render([table], "markdown")
    rows = markdown_rows(text)
    labels = [r[1] for r in rows]
    at = labels.index("dnabert2")
    assert labels[at + 1] == "§ reported: DNABERT-2"  # right under its measured row
    assert labels[labels.index("mlm") + 1] == "§ reported: BarcodeBERT 8-4-4 (BIOSCAN-5M)"
    assert labels.index("§ reported: CNN baseline") > at  # without a measured row: after the measured rows
    reported_line = rows[at + 1]
    assert reported_line[0] == "-"
    assert reported_line[6:8] == ["0.6781 (Δ +0.0269)", "0.1799 (Δ -0.0249)"]  # closed-, open-world
    assert sum(label.startswith("§ reported") for label in labels) == 7
    assert "https://github.com/bioscan-ml/BIOSCAN-5M" in text and "Δ = measured mean − reported" in text

    frame = pd.read_csv(io.StringIO(leaderboard.render([table], "csv")))
    line = frame[frame["reported"] == "dnabert2"].iloc[0]
    assert pd.isna(line["rank"]) and line["closed-world mean"] == pytest.approx(0.6781)
    assert line["open-world measured - reported"] == pytest.approx(0.155 - 0.1799)
    assert line["measured encoder"] == "dnabert2"
    doc = json.loads(leaderboard.render([table], "json"))["tables"][0]
    assert sum(1 for r in doc["rows"] if r.get("reported")) == 7 and "reported_note" in doc
    page = leaderboard.render([table], "html")
    assert "§ reported: DNABERT-2" in page and "bioscan-ml/BIOSCAN-5M" in page


@pytest.mark.parametrize("why", sorted(NOT_BIOSCAN5M))
def test_no_reported_rows_under_any_other_table(why):
    tables = leaderboard.build(results_on(NOT_BIOSCAN5M[why]))
    assert tables and all(t.reported == [] for t in tables)
    for fmt in ("markdown", "html", "json"):
        text = leaderboard.render(tables, fmt)
        assert "§" not in text and "BIOSCAN-5M#performance" not in text, fmt
    assert "reported" not in leaderboard.render(tables, "csv").splitlines()[0]


def test_only_the_bioscan5m_reference_table_of_several_gets_them():
    default = NOT_BIOSCAN5M["BIOSCAN-5M, default protocol"]
    tables = leaderboard.build(results_on(BIOSCAN5M) + results_on(default) + results_on(NOT_BIOSCAN5M["twin"]))
    assert sorted((t.data["content_hash"][0], len(t.reported)) for t in tables) == [("9", 0), ("c", 7), ("e", 0)]


# ----------------------------------------------------------------------------- the data and the listing
PAPER = {  # the BIOSCAN-5M README's table: fine-tuned, linear probe, 1-NN unseen genus (%)
    "cnn": (97.70, None, 29.88), "nt": (98.99, 52.41, 21.67), "dnabert2": (99.23, 67.81, 17.99),
    "dnabert-s": (98.99, 95.50, 17.70), "hyenadna": (98.71, 54.82, 19.26), "barcodebert": (98.52, 91.93, 23.15),
    "barcodebert-8-4-4": (99.28, 94.47, 47.03)}


def test_package_data_loads_with_its_figures_and_matches_our_encoders():
    table = reported.load()
    assert {e.key: (e.fine_tuned_species, e.linear_probe_species, e.nn_unseen_genus) for e in table.entries} == PAPER
    assert table.source["url"].startswith("https://github.com/bioscan-ml/BIOSCAN-5M")
    entries = {e.key: e for e in table.entries}
    assert entries["dnabert2"].measures(DNABERT2) and not entries["dnabert-s"].measures(DNABERT2)
    assert entries["barcodebert-8-4-4"].measures(BARCODEBERT_844)
    assert not entries["barcodebert-8-4-4"].measures({**BARCODEBERT_844, "k": 4, "layers": 12, "heads": 12})
    assert not entries["barcodebert-8-4-4"].measures({**BARCODEBERT_844, "checkpoint": {"sha256": "2" * 64}})
    hub = {"name": "hf", "checkpoint": {"model": "zhihan1996/DNABERT-2-117M"}}
    assert entries["dnabert2"].measures(hub)


@pytest.mark.parametrize("breakage, says", [
    (lambda d: d["entries"][2].update(linear_probe_species=167.81), "entry 3 (dnabert2): linear_probe_species"),
    (lambda d: d["entries"][0].pop("checkpoint"), "entry 1: 'checkpoint'"),
    (lambda d: d["entries"][1].update(key="cnn"), "'cnn' is repeated"),
    (lambda d: d["entries"][4].update(measured_by={"encoders": [], "match": {}}), "entry 5 (hyenadna): measured_by"),
    (lambda d: d.pop("source"), "'source'"),
])
def test_a_broken_file_is_refused_naming_the_entry(tmp_path, breakage, says):
    doc = json.loads((reported.resources.files("benchbarcode") / reported.DATA_FILE).read_text())
    breakage(doc)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as caught:
        reported.load(path)
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_cli_lists_all_seven_with_their_source(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # package data: from any directory
    assert main(["reported", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["key"] for e in doc["entries"]] == list(PAPER)
    assert doc["source"]["url"].startswith("https://github.com/bioscan-ml/BIOSCAN-5M") and "2406.12723" in doc["source"]["citation"]
    assert all(e["checkpoint"] and e["measured_by"]["encoders"] for e in doc["entries"])
    assert main(["reported"]) == 0
    out = capsys.readouterr().out
    assert "bioscan-ml/BIOSCAN-5M" in out and all(f"{v:.2f}" in out for row in PAPER.values() for v in row if v)
