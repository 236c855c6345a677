"""Evaluation protocols of the data layer: ``benchbarcode`` (the default: the data set as loaded)
and ``reference`` (the BIOSCAN-5M / BarcodeMAE reference code's data step).

The reference's data step, as its ``data/data_split.py`` does it: the source barcode with its
trailing ``N`` stripped (``rstrip("N")``) is the key; identical keys are dropped over the whole
file at once, the first occurrence in file order kept, so every split then holds unique barcodes
and a barcode seen earlier in the file is gone from a later split. The pretraining corpus is
``pretrain`` + ``other_heldout``; ``train`` holds the keys and the probe's training set, ``test``
the closed-world test, ``test_unseen`` the open-world queries.

The key is the *source* barcode (before this package's cleaning: gaps, IUPAC codes, leading ``N``,
truncation), as in the reference: two records whose barcodes differ only where cleaning makes
them equal are both kept. Identical source barcodes always clean to the same sequence, so a
record cleaning drops takes its copies with it.
"""

from __future__ import annotations

import pandas as pd

from benchbarcode.errors import UserError

from benchbarcode.protocol_names import DEFAULT_PROTOCOL, PROTOCOLS, REFERENCE_PROTOCOL  # noqa: F401 (re-exported)

#: the splits the reference protocol reads, each of which must hold records
REFERENCE_SPLITS = ("train", "test", "test_unseen")
REFERENCE_PRETRAINING_SPLITS = ("pretrain", "other_heldout")


def check_protocol(protocol: str, flag: str = "--protocol") -> str:
    if protocol not in PROTOCOLS:
        raise UserError(f"{flag} {protocol!r}: unknown protocol; expected one of {', '.join(PROTOCOLS)}")
    return protocol


def source_keys(frame: pd.DataFrame) -> pd.Series:
    """The reference's de-duplication key of each raw record (its source barcode with trailing
    ``N`` stripped), indexed by the processid as cleaning names it (stripped)."""
    keys = frame["sequence"].astype(str).str.rstrip("N")
    keys.index = pd.Index(frame["processid"].astype(str).str.strip())
    return keys


def missing_splits(table: pd.DataFrame) -> list[str]:
    """The reference splits without records in ``table``."""
    counts = table["split"].value_counts()
    return [s for s in REFERENCE_SPLITS if int(counts.get(s, 0)) == 0]


def reference_deduplication(table: pd.DataFrame, keys: pd.Series, where: str) -> tuple[pd.DataFrame, dict]:
    """``table`` (in file order) without the records whose key occurred earlier in it, and the
    records dropped per split (every split named, 0 included). ``keys`` maps processid -> key
    (:func:`source_keys`); ``where`` names the data set in errors.

    The reference splits must hold records before and after: a source without them is an error
    naming what is missing."""
    missing = missing_splits(table)
    if missing:
        raise UserError(f"--protocol reference: {where} has no {', '.join(missing)} records (the reference "
                        f"protocol needs records in {', '.join(REFERENCE_SPLITS)})")
    row_keys = keys.reindex(table["processid"].to_numpy())
    dropped = row_keys.duplicated(keep="first").to_numpy()
    splits = table["split"].astype(str).to_numpy()
    counts = {s: int(((splits == s) & dropped).sum()) for s in table["split"].cat.categories
              if (splits == s).any()}
    out = table.loc[~dropped].reset_index(drop=True)
    missing = missing_splits(out)
    if missing:
        raise UserError(f"--protocol reference: {where} has no {', '.join(missing)} records left after the "
                        "reference's de-duplication (every barcode there occurs earlier in the file)")
    return out, counts
