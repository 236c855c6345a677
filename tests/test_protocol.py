"""``--protocol reference``: the BIOSCAN-5M / BarcodeMAE reference code's data step, 1-NN and probe,
checked against straightforward pandas / scikit-learn versions of the reference's rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.data.readers import BIOSCAN5M_COLUMNS

GENERA = {"Musca": ["Musca a", "Musca b", "Musca c"], "Aedes": ["Aedes a", "Aedes b", "Aedes c"],
          "Bombus": ["Bombus a", "Bombus b"], "Carabus": ["Carabus a", "Carabus b"]}
UNSEEN = {"Musca c", "Aedes c", "Bombus b", "Carabus b"}


def _fixture_rows() -> list[dict]:
    """BIOSCAN-5M-layout rows with repeated barcodes inside and across splits and trailing Ns."""
    rng = np.random.default_rng(7)
    rows, n = [], 0

    def add(split, genus, species, barcode):
        nonlocal n
        n += 1
        rows.append({"processid": f"P{n:04d}", "genus": genus, "species": species, "order": "Diptera",
                     "family": "F", "dna_bin": f"BOLD:{species[:1]}{species[-1:]}" if species else "", "dna_barcode": barcode,
                     "split": split})

    genus_base = {g: rng.choice(list("ACGT"), 150) for g in GENERA}
    made = {}
    for genus, species_list in GENERA.items():
        for species in species_list:
            base = genus_base[genus].copy()
            base[rng.choice(150, 12, replace=False)] = rng.choice(list("ACGT"), 12)
            seqs = []
            for _ in range(12):
                s = base.copy()
                s[rng.choice(150, 4, replace=False)] = rng.choice(list("ACGT"), 4)
                seqs.append("".join(s))
            made[species] = seqs
            if species in UNSEEN:
                for s in seqs[:8]:
                    add("test_unseen", genus, species, s)
                add("key_unseen", genus, species, seqs[8])
            else:
                for s in seqs[:8]:
                    add("train", genus, species, s)
                for s in seqs[8:11]:
                    add("test", genus, species, s)
    first = made["Musca a"]
    add("train", "Musca", "Musca a", first[0])  # a copy inside train
    add("train", "Musca", "Musca a", first[1] + "NNN")  # equal after rstrip("N")
    add("train", "Musca", "Musca a", "NN" + first[2])  # a leading N: a different source barcode, kept
    add("test_unseen", "Musca", "Musca c", first[3])  # seen earlier in train: gone from test_unseen
    add("test_unseen", "Aedes", "Aedes c", made["Aedes c"][0] + "N")  # a copy inside test_unseen
    add("test", "Aedes", "Aedes a", made["Aedes a"][0])  # train barcode again in test
    add("pretrain", "", "", made["Bombus a"][9] + "NN")  # a test barcode again in pretrain
    add("pretrain", "", "", "ACGT" * 30)
    add("other_heldout", "Carabus", "Carabus x", "TTGCA" * 30)
    add("other_heldout", "Carabus", "Carabus x", "TTGCA" * 30 + "N")
    return rows


def write_tsv(path, rows) -> str:
    frame = pd.DataFrame([{c: "" for c in BIOSCAN5M_COLUMNS} | r for r in rows], columns=BIOSCAN5M_COLUMNS)
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


@pytest.fixture(scope="module")
def tsv(tmp_path_factory) -> str:
    return write_tsv(tmp_path_factory.mktemp("protocol") / "BIOSCAN_5M_Insect_Dataset_metadata.tsv", _fixture_rows())


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


def pandas_reference(path: str) -> pd.DataFrame:
    """The reference's rule, written plainly: trailing N stripped, first occurrence in file order kept."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df["nucleotides"] = df["dna_barcode"].str.rstrip("N")
    df["dropped"] = df.duplicated(subset=["nucleotides"])
    return df


def test_deduplication_equals_the_reference_rule(tsv):
    ds = load_barcodes(tsv, protocol="reference")
    ref = pandas_reference(tsv)
    kept = ref.loc[~ref["dropped"]]
    assert ds.table["processid"].tolist() == kept["processid"].tolist()
    expected = ref.loc[ref["dropped"], "split"].value_counts().to_dict()
    assert {s: n for s, n in ds.deduplication.items() if n} == expected
    assert expected["train"] == 2 and expected["test_unseen"] == 2 and expected["test"] == 1
    assert expected["pretrain"] == 1 and expected["other_heldout"] == 1
    assert ds.identity()["protocol"] == "reference" and ds.identity()["deduplication"] == ds.deduplication
    assert ds.pretraining_splits == ("pretrain", "other_heldout")
    assert len(ds.pretraining_sequences()) == len(kept.loc[kept["split"].isin(["pretrain", "other_heldout"])])
    default = load_barcodes(tsv)
    assert "protocol" not in default.identity() and default.content_hash() != ds.content_hash()
    assert len(default.table) == len(ref)


def _npz(path):
    with np.load(path, allow_pickle=False) as z:
        return z["embeddings"], z["genus"].astype(str), z["processid"].astype(str)


def test_open_world_equals_sklearn_on_the_reference_splits(tsv, tmp_path, capsys):
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier

    results = tmp_path / "results"
    assert main(["run", "--encoder", "kmer", "--data", tsv, "--tasks", "open-world,closed-world,clustering",
                 "--protocol", "reference", "--results-dir", str(results), "--quiet"]) == 0
    embedded = {}
    for split in ("train", "test_unseen"):
        out = tmp_path / f"{split}.npz"
        assert main(["embed", "--encoder", "kmer", "--data", tsv, "--protocol", "reference", "--split", split,
                     "--out", str(out), "--quiet"]) == 0
        embedded[split] = _npz(out)
    ref = pandas_reference(tsv)
    kept = ref.loc[~ref["dropped"]]
    for split in ("train", "test_unseen"):
        assert embedded[split][2].tolist() == kept.loc[kept["split"] == split, "processid"].tolist()
    (kx, ky, _), (qx, qy, _) = embedded["train"], embedded["test_unseen"]
    pred = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(kx, ky).predict(qx)
    [run_dir] = list((results / "kmer").iterdir())
    result = json.loads((run_dir / "open-world.json").read_text())
    assert result["counts"]["queries"] == len(qy) == int((kept["split"] == "test_unseen").sum())
    assert result["scores"]["accuracy"] == pytest.approx(accuracy_score(qy, pred), abs=1e-12)
    assert result["scores"]["f1_macro"] == pytest.approx(f1_score(qy, pred, average="macro"), abs=1e-12)
    assert result["task"]["protocol"]["protocol"] == "reference"
    assert result["data"]["protocol"] == "reference" and result["data"]["deduplication"]["test_unseen"] == 2
    closed = json.loads((run_dir / "closed-world.json").read_text())
    assert closed["task"]["protocol"]["optimiser"] == "SGD" and closed["counts"]["dropped_unseen_test"] == 0
    assert not (run_dir / "clustering.json").exists()
    # the default protocol's run of the same data lands elsewhere, with its own tasks
    assert main(["run", "--encoder", "kmer", "--data", tsv, "--tasks", "open-world",
                 "--results-dir", str(results), "--quiet"]) == 0
    other = [d for d in (results / "kmer").iterdir() if d != run_dir]
    assert len(other) == 1
    assert "protocol" not in json.loads((other[0] / "open-world.json").read_text())["task"]["protocol"]
    board = tmp_path / "board.md"
    assert main(["leaderboard", "--results-dir", str(results), "--out", str(board)]) == 0
    headings = [line for line in board.read_text().splitlines() if line.startswith("## ")]
    assert len(headings) == 2 and sum(h.endswith(", protocol reference)") for h in headings) == 1
    dropped = ref.loc[ref["dropped"], "split"].value_counts()
    assert (f"identical barcodes dropped over the whole file (first kept): {len(ref) - len(kept):,} "
            f"(" + ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items())) + ")") in board.read_text()


def test_alignment_baseline_keeps_the_reference_data_and_metrics(tsv, tmp_path):
    """align has no embedding: under the reference protocol its open-world neighbour is found by
    alignment, on the reference's de-duplicated splits, scored with the reference's metrics."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from benchbarcode.alignment import nearest_by_alignment
    from benchbarcode.run import RunOptions, run_benchmark

    ds = load_barcodes(tsv, protocol="reference")
    report = run_benchmark(RunOptions("align", tasks=("open-world", "closed-world"), protocol="reference",
                                      results_dir=str(tmp_path / "r"), progress=False), ds)
    status = {s.task: s for s in report.statuses}
    assert status["closed-world"].status == "skipped" and "not an embedding" in status["closed-world"].reason
    result = status["open-world"].result
    keys, queries = ds.split("train"), ds.split("test_unseen")
    nearest, _ = nearest_by_alignment(keys["sequence"].tolist(), queries["sequence"].tolist())
    truth, pred = queries["genus"].to_numpy(), keys["genus"].to_numpy()[nearest]
    kept = pandas_reference(tsv).query("not dropped")
    assert result["counts"]["queries"] == len(queries) == int((kept["split"] == "test_unseen").sum())
    assert result["scores"]["accuracy"] == pytest.approx(float((pred == truth).mean()), abs=1e-12)
    assert result["scores"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, pred), abs=1e-12)
    assert result["scores"]["f1_weighted"] == pytest.approx(f1_score(truth, pred, average="weighted"), abs=1e-12)
    protocol = result["task"]["protocol"]
    assert protocol["protocol"] == "reference" and protocol["classifier"].startswith("1-nearest-neighbour by alignment")
    assert protocol["distance"].startswith("alignment score")


def test_skipped_tasks_say_why(tsv, tmp_path):
    from benchbarcode.data.protocols import REFERENCE_SPLITS  # noqa: F401  (the module exists)
    from benchbarcode.run import RunOptions, run_benchmark

    ds = load_barcodes(tsv, protocol="reference")
    report = run_benchmark(RunOptions("kmer", tasks=("clustering", "open-world"), protocol="reference",
                                      results_dir=str(tmp_path / "r"), progress=False), ds)
    status = {s.task: s for s in report.statuses}
    assert status["clustering"].status == "skipped"
    assert status["clustering"].reason == "no reference-protocol counterpart"
    assert status["open-world"].status == "done"
    with pytest.raises(Exception, match="loaded under"):
        run_benchmark(RunOptions("kmer", tasks=("open-world",), results_dir=str(tmp_path / "r")), ds)


def test_reference_probe_hyper_parameters(monkeypatch):
    import torch

    from benchbarcode import probe
    from benchbarcode.tasks.linear_probe import ClosedWorldTask, ReferenceClosedWorldTask

    task = ClosedWorldTask().under("reference")
    assert isinstance(task, ReferenceClosedWorldTask) and task.meta.splits == ("train", "test")
    assert ClosedWorldTask().under("benchbarcode").meta == ClosedWorldTask.meta
    protocol = task.meta.protocol
    assert (protocol["learning_rate"], protocol["momentum"], protocol["weight_decay"], protocol["epochs"],
            protocol["batch_size"]) == (0.01, 0.9, 1e-5, 200, 1024)

    sgd_args, batches, features = [], [], []
    real_sgd, real_ce, real_train = torch.optim.SGD, probe.cross_entropy, probe.train_linear_sgd

    def sgd(params, **kwargs):
        sgd_args.append(kwargs)
        return real_sgd(params, **kwargs)

    def ce(logits, target):
        batches.append(int(target.shape[0]))
        return real_ce(logits, target)

    def train(x, *args, **kwargs):
        features.append(x.clone())
        return real_train(x, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", sgd)
    monkeypatch.setattr(probe, "cross_entropy", ce)
    monkeypatch.setattr(probe, "train_linear_sgd", train)
    rng = np.random.default_rng(0)
    n, d = 2100, 6
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, d)) * np.arange(1, d + 1) + 5 + 3 * y[:, None]).astype(np.float32)
    labels = pd.DataFrame({"processid": [f"p{i}" for i in range(n)], "genus": "G",
                           "species": [f"s{k}" for k in y], "bin": None})
    test_labels = labels.iloc[:50].copy()
    test_labels.loc[0, "species"] = "unknown"
    out = task.evaluate({"train": x, "test": x[:50]}, {"train": labels, "test": test_labels}, seed=3)
    assert sgd_args == [{"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-5}]
    assert len(batches) == 200 * 3 and batches[:3] == [1024, 1024, 52]
    standardised = features[0].double()
    assert abs(standardised.mean().item()) < 1e-5 and abs(standardised.std(unbiased=False).item() - 1) < 1e-5
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean()) / x64.std()  # one scalar mean and std over all entries, not per column
    assert np.allclose(standardised.numpy(), expected, atol=1e-5)
    assert out.counts["dropped_unseen_test"] == 1 and out.counts["test"] == 49
    assert out.scores["accuracy"] > 0.9 and out.seeds == (3,)


def test_default_protocol_is_unchanged(tsv):
    from benchbarcode.canonical import digest
    from benchbarcode.contracts import EncoderMeta
    from benchbarcode.registry import get_task
    from benchbarcode.run import run_id_for

    ds = load_barcodes(tsv)
    meta = EncoderMeta(name="x")
    ident = {"encoder": meta.identity(), "data": ds.content_hash(), "seed": 0, "limit": None}
    assert run_id_for(meta, ds, 0, None).endswith(digest(ident, 12))
    for name in ("open-world", "closed-world", "clustering", "unseen-species"):
        task = get_task(name)
        assert task.under("benchbarcode") is task
    assert get_task("clustering").under("reference") is None
    assert get_task("open-world").under("reference").meta.protocol["protocol"] == "reference"


@pytest.mark.parametrize("case", ["misspelled", "no_test_unseen", "empty_corpus"])
def test_bad_inputs_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    rows = _fixture_rows()
    argv_extra, expected = ["--protocol", "reference"], None
    if case == "misspelled":
        argv_extra, expected = ["--protocol", "referense"], "--protocol"
    elif case == "no_test_unseen":
        rows = [r for r in rows if r["split"] != "test_unseen"]
        expected = "test_unseen"
    else:
        rows = [r for r in rows if r["split"] not in ("pretrain", "other_heldout")]
        expected = "--checkpoint"
    data = write_tsv(tmp_path / "data.tsv", rows)
    out = tmp_path / "out"
    encoder = "mae" if case == "empty_corpus" else "kmer"
    for argv in (["run", "--encoder", encoder, "--data", data, "--results-dir", str(out / "r")],
                 ["embed", "--encoder", encoder, "--data", data, "--out", str(out / "e.npz")]):
        try:
            code = main([*argv, *argv_extra])
        except SystemExit as exc:  # argparse's choices
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err
        assert not out.exists()
    if case == "no_test_unseen":
        assert main(["data", "describe", "--data", data, *argv_extra]) == 2
        assert "test_unseen" in capsys.readouterr().err
