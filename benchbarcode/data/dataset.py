"""The canonical barcode data set: load any SOURCE, clean it, split it, hash it, describe it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchbarcode.canonical import file_sha256
from benchbarcode.data.cleaning import LABEL_COLUMNS, SPLITS, CleaningReport, clean, no_barcodes
from benchbarcode.data.protocols import (DEFAULT_PROTOCOL, REFERENCE_PRETRAINING_SPLITS, check_protocol,
                                         reference_deduplication, source_keys)
from benchbarcode.data.readers import RawTable, download_bioscan5m, find_bioscan5m_metadata, read_file
from benchbarcode.data.splits import (PRETRAINING_SPLITS, derive_splits, leakage_report, pretraining_mask,
                                      pretraining_overlap, split_report)
from benchbarcode.errors import UserError
from benchbarcode.fileio import LOCK_SUFFIX, cache_root, exclusive, write_json_atomic

DEFAULT_SIM_SIZE = 20_000
log = logging.getLogger("benchbarcode")


@dataclass
class BarcodeDataset:
    """A cleaned, split barcode table with where it came from and what cleaning did.

    ``table`` columns: processid (unique str), sequence (cleaned), order, family, genus, species,
    bin (category, NA where missing), split (category over :data:`SPLITS`). ``extras`` holds the
    other source columns, keyed by processid. ``protocol`` names the evaluation protocol the data
    was prepared for (:mod:`benchbarcode.data.protocols`); ``deduplication`` counts, per split,
    the records the reference protocol dropped (None under the default protocol).
    """

    name: str
    source: str
    table: pd.DataFrame
    extras: pd.DataFrame
    cleaning: CleaningReport
    split_origin: str  # "source" or "derived"
    split_seed: int | None
    reader: str
    protocol: str = DEFAULT_PROTOCOL
    deduplication: dict | None = None
    _hash: str | None = field(default=None, repr=False)
    _overlap: dict | None = field(default=None, repr=False)

    def content_hash(self) -> str:
        """SHA-256 over the canonical table (ids, sequences, labels, splits), order included."""
        if self._hash is None:
            h = hashlib.sha256()
            for col in ["processid", "sequence", *LABEL_COLUMNS, "split"]:
                values = self.table[col].astype(object).where(self.table[col].notna(), "\x00NA")
                h.update(col.encode())
                h.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
            if self.protocol != DEFAULT_PROTOCOL:  # another pretraining corpus even without duplicates
                h.update(f"protocol:{self.protocol}".encode())
            self._hash = h.hexdigest()
        return self._hash

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise UserError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return self.table.loc[self.table["split"].eq(name).to_numpy()].reset_index(drop=True)

    @property
    def pretraining_splits(self) -> tuple[str, ...]:
        """The splits of the pretraining corpus: pretrain + other_heldout + train (reference
        protocol: pretrain + other_heldout); never an evaluation split."""
        return PRETRAINING_SPLITS if self.protocol == DEFAULT_PROTOCOL else REFERENCE_PRETRAINING_SPLITS

    def pretraining_sequences(self) -> list[str]:
        """The pretraining corpus (:attr:`pretraining_splits`)."""
        return self.table.loc[pretraining_mask(self.table, self.pretraining_splits), "sequence"].tolist()

    def overlap(self) -> dict:
        """Evaluation records with an identical sequence in the pretraining corpus, per split."""
        if self._overlap is None:
            self._overlap = pretraining_overlap(self.table, self.pretraining_splits)
        return self._overlap

    def identity(self) -> dict:
        """What identifies this data set in results and checkpoints (and what the results need to
        know of it: split sizes, overlap of evaluation splits with the pretraining corpus)."""
        return {"name": self.name, "source": self.source, "content_hash": self.content_hash(),
                "reader": self.reader,  # the format read: tells real BIOSCAN-5M from its twin (reported.py)
                "records": int(len(self.table)), "split_origin": self.split_origin,
                "split_seed": self.split_seed,
                "split_sizes": {s: int(n) for s, n in self.table["split"].value_counts(sort=False).items()},
                "overlap_with_pretraining": self.overlap(),
                **({"protocol": self.protocol, "deduplication": self.deduplication}
                   if self.protocol != DEFAULT_PROTOCOL else {})}


def parse_sim_source(source: str) -> tuple[int, int]:
    """``sim``, ``sim:SIZE`` or ``sim:SIZE:SEED`` -> (size, simulator seed)."""
    parts = source.split(":")
    try:
        size = int(parts[1]) if len(parts) > 1 and parts[1] else DEFAULT_SIM_SIZE
        sim_seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise UserError(f"bad data source {source!r}: expected sim, sim:SIZE or sim:SIZE:SEED "
                        "with whole numbers") from None
    if len(parts) > 3 or size < 50 or sim_seed < 0:
        raise UserError(f"bad data source {source!r}: expected sim, sim:SIZE or sim:SIZE:SEED "
                        "with SIZE >= 50 and SEED >= 0")
    return size, sim_seed


def parse_twin_source(source: str) -> tuple[int, int]:
    """``sim-large``, ``sim-large:SIZE`` or ``sim-large:SIZE:SEED`` -> (size, twin seed)."""
    from benchbarcode.data.twin import FULL_RECORDS, MIN_RECORDS

    usage = (f"bad data source {source!r}: expected sim-large, sim-large:SIZE or sim-large:SIZE:SEED "
             f"with whole numbers, SIZE >= {MIN_RECORDS:,} (default {FULL_RECORDS:,}, BIOSCAN-5M's size)")
    parts = source.split(":")
    try:
        size = int(parts[1]) if len(parts) > 1 and parts[1] else FULL_RECORDS
        twin_seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise UserError(usage) from None
    if len(parts) > 3 or size < MIN_RECORDS or twin_seed < 0:
        raise UserError(usage)
    return size, twin_seed


def twin_path(size: int, twin_seed: int, cache_dir: str | Path | None = None) -> Path:
    """Where the ``sim-large`` twin of ``size`` records is cached (``cache_root()/data``); its
    integrity record is the same name with ``.json``."""
    from benchbarcode.data.twin import TWIN_VERSION

    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "data"
    return folder / f"sim-large-{size}-{twin_seed}-v{TWIN_VERSION}.csv"


def _twin_problem(path: Path, params: dict) -> str | None:
    """Why the cached twin at ``path`` cannot be used ("absent" when there is none), or None: its
    record must hold ``params`` and the CSV's byte size and SHA-256."""
    if not path.is_file():
        return "absent"
    try:
        record = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return "no readable integrity record"
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in params.items()):
        return "integrity record is for another twin"
    if path.stat().st_size != record.get("bytes"):
        return f"{path.stat().st_size} bytes, its record says {record.get('bytes')}"
    # SHA-256 on every use, not only the size (a changed byte keeps it): hashlib reads 0.6-1.1 GB/s on
    # 2 busy cores here (sha256sum: 170 MB/s), so the 3.7 GB full-size twin costs 4-6 s beside its
    # 50-65 s read (~10 %), which then finds the file in the page cache
    if file_sha256(path) != record.get("sha256"):
        return "SHA-256 differs from its record"
    return None


def _twin_file(size: int, twin_seed: int, cache_dir: str | Path | None, progress: bool) -> Path:
    """The cached twin, verified against its record (:func:`_twin_problem`), written first if absent
    or damaged. A lock beside it lets concurrent processes (the ranks of a torchrun job, two runs)
    wait for one writer instead of each generating it."""
    from benchbarcode.data.twin import TWIN_VERSION, write_twin

    path = twin_path(size, twin_seed, cache_dir)
    record = path.with_suffix(".json")
    params = {"size": size, "seed": twin_seed, "twin_version": TWIN_VERSION}
    if _twin_problem(path, params) is None:
        return path
    with exclusive(path.with_suffix(LOCK_SUFFIX), f"generating the sim-large twin {path.name}"):
        problem = _twin_problem(path, params)  # another process may have written it meanwhile
        if problem is not None:
            if problem != "absent":
                log.warning("sim-large twin %s is damaged (%s); generating it again", path, problem)
            record.unlink(missing_ok=True)
            write_twin(path, size, twin_seed, progress=progress)
            write_json_atomic(record, {**params, "bytes": path.stat().st_size, "sha256": file_sha256(path)})
    return path


def is_local_file(source: str) -> bool:
    """Whether a data SOURCE is a file of the machine that ran it: not ``sim...`` or ``sim-large...``
    (generated anywhere) and not ``bioscan5m:DIR`` (downloadable with ``--download``)."""
    return not (source in ("sim", "sim-large") or source.startswith(("sim:", "sim-large:", "bioscan5m:")))


def _read_source(source: str, download: bool, cache_dir: str | Path | None = None,
                 progress: bool = False) -> tuple[RawTable, str]:
    if is_local_file(source):
        path = Path(source)
        return read_file(path), path.name
    if source == "sim-large" or source.startswith("sim-large:"):
        size, twin_seed = parse_twin_source(source)
        raw = read_file(_twin_file(size, twin_seed, cache_dir, progress))
        return RawTable(raw.frame, raw.path, "bioscan5m (sim-large twin)", raw.sequence_field,
                        raw.counts), f"sim-large:{size}:{twin_seed}"
    if source == "sim" or source.startswith("sim:"):
        from benchbarcode.data.simulator import simulate

        size, sim_seed = parse_sim_source(source)
        frame = simulate(n_records=size, seed=sim_seed)
        frame["_line"] = np.arange(1, len(frame) + 1)
        return RawTable(frame, f"sim:{size}:{sim_seed}", "simulator", "sequence"), f"sim:{size}:{sim_seed}"
    directory = Path(source.split(":", 1)[1] or ".")  # bioscan5m:DIR
    found = find_bioscan5m_metadata(directory)
    if found is None:
        if not download:
            raise UserError(f"{directory}: no BIOSCAN_5M_Insect_Dataset_metadata file found; "
                            "pass --download to fetch it (needs the bioscan-dataset package "
                            "and network)")
        found = download_bioscan5m(directory)
    return read_file(found), "BIOSCAN-5M"


def load_barcodes(source: str = "sim", *, seed: int = 0, max_length: int = 660,
                  on_bad: str = "error", unseen_fraction: float = 0.25,
                  download: bool = False, cache_dir: str | Path | None = None,
                  progress: bool = False, protocol: str = DEFAULT_PROTOCOL) -> BarcodeDataset:
    """Read SOURCE (``sim``, ``sim:SIZE``, ``sim-large[:SIZE[:SEED]]``, ``bioscan5m:DIR`` or a file
    path) into a data set.

    ``seed`` only matters when the source has no ``split`` column and splits are derived.
    ``sim-large`` is generated once into ``cache_dir`` (default ``cache_root()/data``; a tqdm bar
    with ``progress``), verified against its integrity record on each use (generated again if
    damaged) and read from there by the BIOSCAN-5M reader.

    ``protocol="reference"`` prepares the data as the BIOSCAN-5M / BarcodeMAE reference code does
    (:mod:`benchbarcode.data.protocols`): identical source barcodes (trailing N stripped) dropped
    over the whole file, first occurrence kept, counted per split in ``deduplication``.
    """
    check_protocol(protocol)
    if seed < 0:  # a split seed numpy would refuse after the whole file was read
        raise UserError(f"--split-seed {seed} is negative; a seed is an integer >= 0")
    raw, name = _read_source(source, download, cache_dir, progress)
    raw_format = raw.format
    table, extras, report = clean(raw, max_length=max_length, on_bad=on_bad)
    if table.empty:  # every command needs barcodes: said here, before any split, hash or task
        raise no_barcodes(raw, report)
    keys = source_keys(raw.frame) if protocol != DEFAULT_PROTOCOL else None
    del raw
    if "split" in table.columns:
        origin, split_seed = "source", None
    else:
        table["split"] = derive_splits(table, seed=seed, unseen_fraction=unseen_fraction)
        origin, split_seed = "derived", seed
    dropped = None
    if keys is not None:
        table, dropped = reference_deduplication(table, keys, name)
        extras = extras.loc[extras["processid"].isin(table["processid"]).to_numpy()].reset_index(drop=True)
    return BarcodeDataset(name=name, source=source, table=table, extras=extras, cleaning=report,
                          split_origin=origin, split_seed=split_seed, reader=raw_format,
                          protocol=protocol, deduplication=dropped)


def describe(ds: BarcodeDataset) -> dict:
    """Counts per split, length statistics, the cleaning report and the leakage report."""
    t = ds.table
    lengths = t["sequence"].str.len()
    per_split = []
    for name in SPLITS:
        m = t["split"].eq(name).to_numpy()
        if not m.any():
            continue
        sub = t.loc[m]
        per_split.append({
            "split": name, "records": int(m.sum()),
            "unique_sequences": int(sub["sequence"].nunique()),
            "species": int(sub["species"].nunique()), "genera": int(sub["genus"].nunique()),
            "bins": int(sub["bin"].nunique()),
            "median_length": float(lengths[m].median()),
        })
    return {
        "data": ds.identity(),
        "reader": ds.reader,
        "totals": {"records": int(len(t)), "unique_sequences": int(t["sequence"].nunique()),
                   "orders": int(t["order"].nunique()), "families": int(t["family"].nunique()),
                   "genera": int(t["genus"].nunique()), "species": int(t["species"].nunique()),
                   "bins": int(t["bin"].nunique())},
        "length": {"min": int(lengths.min()) if len(t) else 0,
                   "median": float(lengths.median()) if len(t) else 0.0,
                   "mean": round(float(lengths.mean()), 1) if len(t) else 0.0,
                   "max": int(lengths.max()) if len(t) else 0},
        "splits": per_split,
        "cleaning": ds.cleaning.to_dict(),
        "leakage": leakage_report(t, ds.pretraining_splits),
        "split_report": split_report(t),
    }
