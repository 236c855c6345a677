"""Export a data set in the BIOSCAN-5M metadata column format (round-trips through the reader)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from benchbarcode.data.dataset import BarcodeDataset
from benchbarcode.data.readers import BIOSCAN5M_COLUMNS, RANKS
from benchbarcode.errors import UserError
from benchbarcode.fileio import atomic_path

SUFFIXES = (".csv", ".csv.gz")  # what export writes (CSV, gzip-compressed for .gz)

# Source columns (BOLD names included) that carry a BIOSCAN-5M field of the same meaning.
_EXTRA_SOURCES = {
    "subfamily": ("subfamily", "subfamily_name"),
    "country": ("country", "country/ocean"),
    "sampleid": ("sampleid",),
    "province_state": ("province_state", "province/state"),
}


def to_bioscan5m_frame(ds: BarcodeDataset) -> pd.DataFrame:
    t = ds.table
    out = pd.DataFrame(index=t.index, columns=BIOSCAN5M_COLUMNS, dtype=object).fillna("")
    out["processid"] = t["processid"].to_numpy()
    for rank in RANKS:
        out[rank] = t[rank].astype(object).where(t[rank].notna(), "").to_numpy()
    out["dna_bin"] = t["bin"].astype(object).where(t["bin"].notna(), "").to_numpy()
    out["dna_barcode"] = t["sequence"].to_numpy()
    out["split"] = t["split"].astype(str).to_numpy()
    out["phylum"] = "Arthropoda"
    out["class"] = "Insecta"
    taxon = pd.Series("", index=t.index, dtype=object)
    for rank in RANKS:  # lowest known rank wins
        taxon = taxon.where(t[rank].isna().to_numpy(), t[rank].astype(object))
    out["taxon"] = taxon.to_numpy()
    extras = ds.extras
    for target, names in _EXTRA_SOURCES.items():
        for name in names:
            if name in extras.columns:
                out[target] = extras[name].fillna("").astype(str).to_numpy()
                break
    return out


def export_bioscan5m(ds: BarcodeDataset, path: str | Path) -> Path:
    """Write ``ds`` as a BIOSCAN-5M metadata CSV (gzip when the name ends in .gz), atomically."""
    path = Path(path)
    if not str(path).lower().endswith(SUFFIXES):
        raise UserError(f"--out {path}: expected a file name ending in {' or '.join(SUFFIXES)}")
    frame = to_bioscan5m_frame(ds)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with gzip.open(tmp, "wt", encoding="utf-8", newline="") as fh:
                frame.to_csv(fh, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path
