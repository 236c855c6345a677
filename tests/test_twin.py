"""The sim-large twin of BIOSCAN-5M (benchbarcode.data.twin) and its data source."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchbarcode.data import load_barcodes, twin
from benchbarcode.data.dataset import describe, twin_path
from benchbarcode.errors import UserError

SMALL = 20_000


@pytest.fixture(scope="module")
def full_plan():
    return twin.plan_twin()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twin")
    return load_barcodes(f"sim-large:{SMALL}", cache_dir=folder), folder


def test_full_size_plan_has_bioscan5m_split_records_and_named_species(full_plan):
    counts = full_plan.counts
    assert counts.sum() == twin.FULL_RECORDS
    for j, split in enumerate(twin.SPLITS):
        assert counts[:, j].sum() == twin.SPLIT_RECORDS[split], split
        if split != "pretrain":
            assert (counts[:, j] > 0).sum() == twin.SPLIT_SPECIES[split], split
    named = full_plan.role != twin.UNNAMED
    assert named.sum() == 22_622
    # about 9 % of records carry a species name (the labelled splits)
    assert 0.08 < counts[:, 1:].sum() / counts.sum() < 0.10


def test_small_twin_realises_bioscan5m_bins_per_record(small):
    # Distinct BINs in a generated twin against BIOSCAN-5M's 324,411 scaled to its size. The ratio
    # does not drift with size (measured: 20k, seeds 0-19: 0.980-1.015, mean 0.999, sd 0.009; 100k:
    # 1.003, 0.996; 300k: 0.991, 0.998; 1M: 0.993; full: 0.996, twin.py's 323,103), so 20k records
    # suffice. 3 % is over 3 sd of that spread; _REALISED_BINS_PER_SPECIES 10 % too high or too low
    # gives 0.918 or 1.089.
    ds, _ = small
    scaled = twin.FULL_BINS * SMALL / twin.FULL_RECORDS
    assert abs(ds.table["bin"].nunique() / scaled - 1) < 0.03


def test_plan_keeps_the_open_world_premise(full_plan):
    role, genus, counts = full_plan.role, full_plan.sp_genus, full_plan.counts
    unseen = np.flatnonzero(role == twin.UNSEEN)
    seen_genera = set(genus[role == twin.SEEN].tolist())
    assert all(int(genus[s]) in seen_genera for s in unseen)
    pretraining = [twin.SPLITS.index(s) for s in ("pretrain", "train", "other_heldout")]
    assert counts[np.ix_(unseen, pretraining)].sum() == 0
    assert (counts[unseen, twin.SPLITS.index("key_unseen")] > 0).all()
    unnamed = role == twin.UNNAMED
    assert (counts[unnamed][:, 1:] == 0).all() and (counts[unnamed, 0] > 0).all()


def test_small_twin_reads_as_bioscan5m_with_its_own_splits(small):
    ds, folder = small
    records, species, _ = twin._scaled(SMALL)
    assert ds.name == f"sim-large:{SMALL}:0" and ds.split_origin == "source"
    assert ds.reader.startswith("bioscan5m")
    sizes = ds.table["split"].value_counts().to_dict()
    assert {s: int(n) for s, n in sizes.items() if n} == records
    t = ds.table
    named = t.loc[t["species"].notna()].groupby("split", observed=True)["species"].nunique().to_dict()
    assert named == species
    assert t.loc[t["split"].eq("pretrain"), "species"].isna().all()
    assert t.loc[~t["split"].eq("pretrain"), "species"].notna().all()
    train_genera = set(t.loc[t["split"].eq("train"), "genus"])
    unseen = t.loc[t["split"].isin(["key_unseen", "val_unseen", "test_unseen"])]
    assert set(unseen["genus"]) <= train_genera
    assert not set(unseen["species"]) & set(t.loc[t["split"].isin(["train", "other_heldout"]), "species"])
    report = describe(ds)["split_report"]
    assert report["unseen species with test_unseen records but no key"] == 0
    assert twin_path(SMALL, 0, folder).is_file()


def test_twin_is_cached_and_not_regenerated(small, monkeypatch):
    ds, folder = small
    path = twin_path(SMALL, 0, folder)
    before = path.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("regenerated")

    monkeypatch.setattr(twin, "write_twin", fail)
    again = load_barcodes(f"sim-large:{SMALL}:0", cache_dir=folder)
    assert path.stat().st_mtime_ns == before
    assert again.content_hash() == ds.content_hash()


@pytest.mark.parametrize("damage", ["truncated", "byte changed", "record deleted"])
def test_damaged_cached_twin_is_generated_again(small, damage, tmp_path, caplog):
    ds, folder = small
    good, path = twin_path(SMALL, 0, folder), twin_path(SMALL, 0, tmp_path)
    record = path.with_suffix(".json")
    record.write_bytes(good.with_suffix(".json").read_bytes())
    data = bytearray(good.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    elif damage == "byte changed":  # a base of a barcode mid-file: the file still parses, to other data
        i = data.index(b"A", len(data) // 2)
        data[i:i + 1] = b"C"
    else:
        record.unlink()
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="benchbarcode"):
        again = load_barcodes(f"sim-large:{SMALL}", cache_dir=tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "\n" not in warnings[0]
    assert path.read_bytes() == good.read_bytes()
    assert json.loads(record.read_text()) == json.loads(good.with_suffix(".json").read_text())
    assert again.content_hash() == ds.content_hash()


def test_file_is_the_same_for_any_number_of_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(twin, "BLOCK_SPECIES", 64)  # several blocks even at this size
    one = twin.write_twin(tmp_path / "one.csv", SMALL, 3, workers=1)
    two = twin.write_twin(tmp_path / "two.csv", SMALL, 3, workers=2)
    assert twin.plan_twin(SMALL, 3).n_blocks > 4
    assert one.read_bytes() == two.read_bytes()
    other = twin.write_twin(tmp_path / "other.csv", SMALL, 4, workers=1)
    assert other.read_bytes() != one.read_bytes()
    ids = pd.read_csv(one, usecols=["processid"])["processid"]
    assert ids.is_unique and ids.is_monotonic_increasing


def test_interrupted_generation_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(twin, "BLOCK_SPECIES", 64)
    real = twin.block_frame

    def broken(plan, block):
        if block == 2:
            raise KeyboardInterrupt
        return real(plan, block)

    monkeypatch.setattr(twin, "block_frame", broken)
    with pytest.raises(KeyboardInterrupt):
        load_barcodes(f"sim-large:{SMALL}", cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("source", ["sim-large:abc", "sim-large:9999", "sim-large:20000:1:2",
                                    "sim-large:20000:-1"])
def test_bad_twin_sources_are_refused(source, tmp_path):
    with pytest.raises(UserError, match="sim-large:SIZE:SEED"):
        load_barcodes(source, cache_dir=tmp_path)


def test_cli_refuses_a_bad_twin_source_in_one_line(tmp_path):
    env = {**os.environ, "BENCHBARCODE_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "benchbarcode", "data", "describe", "--data", "sim-large:50"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "SIZE >= 10,000" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_twin_lives_in_the_cache_and_cache_clear_removes_only_it(tmp_path, monkeypatch, capsys):
    from benchbarcode import cli

    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path))
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "keep.json").write_text("{}")
    load_barcodes(f"sim-large:{SMALL}:1")
    assert twin_path(SMALL, 1, tmp_path / "data").is_file()
    assert twin_path(SMALL, 1, tmp_path / "data").with_suffix(".json").is_file()
    assert cli.main(["cache", "info", "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    assert parts["data"]["entries"] == 1 and parts["data"]["bytes"] > 1_000_000
    assert cli.main(["cache", "clear", "--what", "data"]) == 0
    assert not (tmp_path / "data").exists() and (tmp_path / "embeddings" / "keep.json").is_file()


def test_twin_uses_only_the_simulators_public_names():
    import ast
    import inspect

    from benchbarcode.data import simulator

    tree = ast.parse(inspect.getsource(twin))
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sim"}
    assert used and used <= set(simulator.__all__), used - set(simulator.__all__)
