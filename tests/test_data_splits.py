"""Derived splits: invariants, determinism, pretraining corpus, leakage report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchbarcode.data import load_barcodes
from benchbarcode.data.splits import (derive_splits, leakage_report, pretraining_mask, pretraining_overlap,
                                      split_report)

SEEN = {"train", "val", "test"}
UNSEEN = {"key_unseen", "val_unseen", "test_unseen"}
EVAL = {"val", "test", "key_unseen", "val_unseen", "test_unseen"}


def synthetic_table(n_genera=30, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_genera):
        for s in range(int(rng.integers(1, 6))):
            seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(int(rng.integers(1, 5)))]
            for r in range(int(rng.integers(1, 12))):
                rows.append({"processid": f"R{len(rows)}", "sequence": seqs[r % len(seqs)],
                             "order": "O", "family": "F", "genus": f"G{g}", "species": f"G{g} s{s}",
                             "bin": None})
    for i in range(40):  # unlabelled records
        rows.append({"processid": f"U{i}", "sequence": "ACGT" * 8, "order": "O", "family": "F",
                     "genus": None, "species": None, "bin": None})
    t = pd.DataFrame(rows)
    for c in ["order", "family", "genus", "species", "bin"]:
        t[c] = t[c].astype("category")
    return t


def check_invariants(t: pd.DataFrame) -> None:
    labelled = t["species"].notna()
    by_species = t.loc[labelled].groupby("species", observed=True)["split"].agg(lambda s: set(s.astype(str)))
    for species, splits in by_species.items():
        assert splits <= SEEN or splits <= UNSEEN, f"{species} is both seen and unseen: {splits}"
    train_genera = set(t.loc[t["split"].eq("train"), "genus"].dropna())
    unseen_genera = set(t.loc[t["split"].eq("test_unseen"), "genus"].dropna())
    assert unseen_genera <= train_genera
    assert set(t.loc[~labelled, "split"].astype(str)) <= {"pretrain"}
    # identical sequences of one species share a split
    groups = t.loc[labelled].groupby(["species", "sequence"], observed=True)["split"].nunique()
    assert (groups == 1).all()
    corpus = set(t.loc[pretraining_mask(t), "split"].astype(str))
    assert not corpus & EVAL
    # every unseen species with queries has a key: a query of a keyless species can never be right
    keys = set(t.loc[t["split"].eq("key_unseen"), "species"].dropna())
    assert set(t.loc[t["split"].eq("test_unseen"), "species"].dropna()) <= keys
    assert split_report(t)["unseen species with test_unseen records but no key"] == 0


def test_invariants_and_determinism_synthetic():
    t = synthetic_table()
    t["split"] = derive_splits(t, seed=3)
    check_invariants(t)
    assert set(t["split"].astype(str)) >= {"pretrain", "train", "test", "test_unseen"}
    again = derive_splits(t.drop(columns="split"), seed=3)
    assert (again.astype(str) == t["split"].astype(str)).all()
    other = derive_splits(t.drop(columns="split"), seed=4)
    assert (other.astype(str) != t["split"].astype(str)).any()


def test_unseen_fraction_of_eligible_species():
    t = synthetic_table(n_genera=200, seed=5)
    t["split"] = derive_splits(t, seed=0, unseen_fraction=0.25)
    per_genus = t.dropna(subset=["species"]).groupby("genus", observed=True)["species"].nunique()
    eligible = t["genus"].isin(per_genus[per_genus >= 2].index) & t["species"].notna()
    species_unseen = t.loc[t["split"].isin(list(UNSEEN)), "species"].nunique()
    n_eligible = t.loc[eligible, "species"].nunique()
    assert abs(species_unseen / n_eligible - 0.25) < 0.02


def test_leakage_report_counts_identical_sequences():
    t = pd.DataFrame({
        "processid": list("abcdef"),
        "sequence": ["AAA", "CCC", "AAA", "AAA", "GGG", "CCC"],
        "species": ["x", "y", "z", "z", "w", "q"],
        "split": pd.Categorical(["train", "pretrain", "test", "test", "test_unseen", "test_unseen"]),
    })
    rows = {(r["reference"], r["query"]): r for r in leakage_report(t)}
    assert rows[("train", "test")]["query_records_with_identical_reference"] == 2
    assert rows[("train", "test")]["shared_distinct_sequences"] == 1
    assert rows[("train", "test_unseen")]["query_records_with_identical_reference"] == 0
    assert rows[("pretraining corpus", "test_unseen")]["query_records_with_identical_reference"] == 1


def test_real_bold_data_counts_and_invariants(bold_path):
    ds = load_barcodes(str(bold_path))
    t = ds.table
    assert len(t) == 108_656 and ds.cleaning.records_read == 108_656
    assert t["species"].nunique() == 1_023 and t["genus"].nunique() == 364
    assert ds.split_origin == "derived"
    check_invariants(t)


@pytest.mark.parametrize("seed", [0, 1])
def test_sim_splits_invariants(seed):
    ds = load_barcodes("sim:3000", seed=seed)
    check_invariants(ds.table)
    again = load_barcodes("sim:3000", seed=seed)
    assert again.content_hash() == ds.content_hash()


def test_a_species_too_small_to_split_goes_wholly_to_one_side():
    """One distinct sequence: a seen species stays in train, an unseen one becomes keys only."""
    t = synthetic_table()
    t["split"] = derive_splits(t, seed=3)
    per_species = t.loc[t["species"].notna()].groupby("species", observed=True)
    groups = per_species["sequence"].nunique()
    splits = per_species["split"].agg(lambda s: frozenset(s.astype(str)))
    single = groups[groups == 1].index
    assert len(single) > 0
    assert {s for sp in single for s in splits[sp]} <= {"train", "key_unseen"}
    report = split_report(t)
    assert report["seen species only in train"] + report["unseen species only in key_unseen"] >= len(single)


def test_overlap_with_the_pretraining_corpus_per_evaluation_split():
    ds = load_barcodes("sim:1200")
    overlap = ds.identity()["overlap_with_pretraining"]
    assert overlap == pretraining_overlap(ds.table)
    corpus = set(ds.pretraining_sequences())
    test = ds.split("test")["sequence"]
    assert overlap["test"] == {"records": len(test), "in_pretraining_corpus": int(test.isin(corpus).sum())}
    assert overlap["test"]["in_pretraining_corpus"] > 0  # the unlabelled pretrain split, as BIOSCAN-5M's
