"""Cleaning of raw barcode records into the canonical table; every action is counted.

Sequence rules, in this order (so that cleaning is idempotent):

1. surrounding white space is removed and letters are uppercased;
2. alignment gaps ``-`` are removed;
3. IUPAC ambiguity codes ``RYKMSWBDHV`` become ``N``;
4. leading and trailing ``N`` are stripped;
5. the sequence is truncated to ``max_length`` nucleotides (660 by default, as BIOSCAN-5M), and
   ``N`` left at the new end is stripped;
6. a record left empty is dropped.

Any other character is an error naming the file, line, processid, field and character; with
``on_bad="skip"`` such records are dropped and counted instead. Label values ``''``, ``None``,
``NA`` and ``not_classified`` become missing (NA). A duplicate processid is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchbarcode.data.readers import RANKS, RawTable
from benchbarcode.errors import UserError, located

MISSING_LABELS = frozenset({"", "None", "NA", "not_classified"})
IUPAC_AMBIGUITY = "RYKMSWBDHV"
SPLITS = ["pretrain", "train", "val", "test", "key_unseen", "val_unseen", "test_unseen",
          "other_heldout"]
LABEL_COLUMNS = [*RANKS, "bin"]
TABLE_COLUMNS = ["processid", "sequence", *LABEL_COLUMNS, "split"]
_IUPAC_TABLE = str.maketrans({c: "N" for c in IUPAC_AMBIGUITY})
#: the rule behind each count of dropped records, as messages say it ({field}: the sequence field)
DROP_RULES = {
    "dropped_other_marker": "of a marker other than COI-5P",
    "dropped_invalid_character": "with an invalid character, as --on-bad skip asks",
    "dropped_empty": "whose {field} was empty or only gaps and N",
}


@dataclass
class CleaningReport:
    """Counts of every cleaning action (records affected, unless the name says otherwise)."""

    records_read: int = 0
    records_kept: int = 0
    counts: dict = field(default_factory=dict)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def to_dict(self) -> dict:
        return {"records_read": self.records_read, "records_kept": self.records_kept,
                **self.counts}


def no_barcodes(raw: RawTable, report: CleaningReport) -> UserError:
    """The error for a file that cleaning left without a single barcode: how many records were
    read, and how many each rule dropped."""
    if report.records_read == 0:
        return located(raw.path, None, "holds no barcodes: no records after the header line")
    dropped = [f"{n:,} {DROP_RULES[name].format(field=repr(raw.sequence_field))}"
               for name, n in report.counts.items() if name in DROP_RULES and n]
    read = f"{report.records_read:,} record{'s' if report.records_read > 1 else ''} read"
    return located(raw.path, None, f"holds no barcodes: {read}, all dropped "
                                   f"({'; '.join(dropped) or 'by no counted rule'})")


def clean(raw: RawTable, max_length: int = 660, on_bad: str = "error") -> tuple[pd.DataFrame, pd.DataFrame, CleaningReport]:
    """Clean a raw table. Returns ``(table, extras, report)``.

    ``table`` has the canonical columns (``split`` only when the source had one), ``extras``
    the other source columns (same index), ``report`` the counts.
    """
    if on_bad not in ("error", "skip"):
        raise ValueError(f"on_bad must be 'error' or 'skip', not {on_bad!r}")
    if max_length < 1:
        raise ValueError("max_length must be >= 1")
    frame = raw.frame
    report = CleaningReport(records_read=len(frame) + sum(raw.counts.values()))
    for name, n in raw.counts.items():
        report.add(name, n)
    lines = frame["_line"].to_numpy()

    pid = frame["processid"].astype(str).str.strip()
    empty_pid = pid.eq("").to_numpy()
    if empty_pid.any():
        i = int(empty_pid.argmax())
        raise located(raw.path, int(lines[i]), "field 'processid' is empty")

    seq, keep = _clean_sequences(frame, raw, lines, pid, report, max_length, on_bad)

    table = pd.DataFrame({"processid": pid, "sequence": seq})
    for col in LABEL_COLUMNS:
        table[col] = _clean_labels(frame[col] if col in frame.columns else None, len(frame), report, col)
    if "split" in frame.columns:
        table["split"] = _clean_split(frame["split"], raw, lines)
    table["_line"] = lines

    table = table.loc[keep]
    dup = table["processid"].duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(dup.argmax())
        pid_dup = table["processid"].iloc[i]
        first_line = int(table.loc[table["processid"].eq(pid_dup), "_line"].iloc[0])
        raise located(raw.path, int(table["_line"].iloc[i]),
                      f"duplicate processid {pid_dup!r} (first seen on line {first_line})")

    extra_cols = [c for c in frame.columns if c not in (*TABLE_COLUMNS, "_line")
                  and c not in ("markercode", "marker_code")]
    extras = frame.loc[keep, extra_cols].reset_index(drop=True)
    extras.insert(0, "processid", table["processid"].to_numpy())
    table = table.drop(columns="_line").reset_index(drop=True)
    for col in LABEL_COLUMNS:
        table[col] = table[col].cat.remove_unused_categories()
    report.records_kept = len(table)
    return table, extras, report


def _clean_sequences(frame, raw, lines, pid, report, max_length, on_bad):
    """Returns the cleaned sequences and a boolean array of the records to keep.

    Each rewrite touches only the records it changes, so a 5M-row file is not copied per step.
    """
    keep = np.ones(len(frame), dtype=bool)
    seq = frame["sequence"].astype(str).str.strip()

    def rewrite(name: str, affected: pd.Series, fn) -> None:
        affected = affected.to_numpy(dtype=bool)
        report.add(name, affected.sum())
        if affected.any():
            seq.loc[affected] = fn(seq.loc[affected])

    rewrite("lowercase_uppercased", seq.str.contains("[a-z]", regex=True), lambda x: x.str.upper())
    rewrite("gaps_removed", seq.str.contains("-", regex=False), lambda x: x.str.replace("-", "", regex=False))
    rewrite("iupac_to_n", seq.str.contains(f"[{IUPAC_AMBIGUITY}]", regex=True),
            lambda x: x.str.translate(_IUPAC_TABLE))
    rewrite("ends_n_stripped", seq.str.startswith("N") | seq.str.endswith("N"), lambda x: x.str.strip("N"))

    bad = seq.str.contains("[^ACGTN]", regex=True).to_numpy()
    if bad.any():
        if on_bad == "error":
            i = int(bad.argmax())
            char = next(c for c in seq.iloc[i] if c not in "ACGTN")
            raise located(raw.path, int(lines[i]),
                          f"processid {pid.iloc[i]!r}: field {raw.sequence_field!r} has invalid "
                          f"character {char!r} (use --on-bad skip to drop such records)")
        report.add("dropped_invalid_character", bad.sum())
        keep &= ~bad

    rewrite("truncated", seq.str.len().gt(max_length), lambda x: x.str.slice(0, max_length).str.rstrip("N"))
    empty = seq.str.len().eq(0).to_numpy() & keep
    report.add("dropped_empty", empty.sum())
    keep &= ~empty
    return seq, keep


def _clean_labels(values, n: int, report: CleaningReport, name: str) -> pd.Series:
    if values is None:
        report.add(f"{name}_missing", n)
        return pd.Series(pd.Categorical([pd.NA] * n, categories=[]), dtype="category")
    cat = values.astype("category")
    cats = cat.cat.categories
    stripped = pd.Index([str(c).strip() for c in cats])
    if not stripped.equals(cats):
        cat = pd.Series(pd.Categorical(cat.astype(str).str.strip()), index=cat.index)
        cats = cat.cat.categories
    drop = [c for c in cats if c in MISSING_LABELS]
    if drop:
        cat = cat.cat.remove_categories(drop)
    report.add(f"{name}_missing", cat.isna().sum())
    return cat.reset_index(drop=True)


def _clean_split(values, raw: RawTable, lines) -> pd.Series:
    text = values.astype(str).str.strip()
    bad = ~text.isin(SPLITS).to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise located(raw.path, int(lines[i]),
                      f"field 'split' has unknown value {text.iloc[i]!r} (expected one of "
                      f"{', '.join(SPLITS)})")
    return pd.Series(pd.Categorical(text, categories=SPLITS)).reset_index(drop=True)
