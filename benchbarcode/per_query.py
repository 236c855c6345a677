"""Per-query outcomes on disk: the file beside a result that says what the task answered for each
query, and the outcome a comparison reads from it.

The file is ``<task>.queries.tsv.gz`` beside ``<task>.json``: a gzip'd TSV (written with a fixed
gzip time, so the same outcomes give the same bytes) with columns ``processid``, ``true`` and the
prediction columns; the result records it under ``per_query`` (file name, SHA-256, rows, columns,
the main score's columns and the kind), so a reader finds a changed or truncated file instead of
comparing against it. The file is written before the result: a result on disk means its outcomes
are there too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from benchbarcode.contracts import QueryOutcomes
from benchbarcode.errors import UserError

SUFFIX = ".queries.tsv.gz"


def to_bytes(outcomes: QueryOutcomes) -> bytes:
    """The file's bytes (deterministic: gzip time 0, no file name inside)."""
    text = outcomes.frame().to_csv(sep="\t", index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as fh:
        fh.write(text.encode("utf-8"))
    return buffer.getvalue()


def record(outcomes: QueryOutcomes, file_name: str, data: bytes) -> dict:
    """What a result stores about its per-query file."""
    return {"file": file_name, "sha256": hashlib.sha256(data).hexdigest(), "rows": len(outcomes.ids),
            "columns": ["processid", "true", *outcomes.predicted], "main": list(outcomes.main),
            "kind": outcomes.kind}


def read(result_path: str | Path, result: dict) -> pd.DataFrame | None:
    """The per-query outcomes of the result at ``result_path`` (None: it recorded none, e.g. it was
    written before they existed); a missing, changed or malformed file is a UserError naming it.
    Every column is read as text (labels are names; a cluster id compares as its digits)."""
    meta = result.get("per_query")
    if not meta:
        return None
    path = Path(result_path).with_name(meta["file"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the per-query outcomes its result names ({exc.strerror}); "
                        "--overwrite on the run writes both again") from None
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise UserError(f"{path}: SHA-256 differs from the one {Path(result_path).name} records "
                        "(changed after it was written); --overwrite on the run writes both again")
    frame = pd.read_csv(io.BytesIO(data), sep="\t", compression="gzip", dtype=str, keep_default_na=False)
    if list(frame.columns) != meta["columns"] or len(frame) != meta["rows"]:
        raise UserError(f"{path}: columns or rows differ from the record in {Path(result_path).name}")
    return frame


def correctness(frame: pd.DataFrame, main: list[str]) -> np.ndarray:
    """Per query, the share of the main columns that predicted the true label (0 or 1 for one
    column; a mean over repeats otherwise): the outcome a classification's main score averages."""
    truth = frame["true"].to_numpy()
    return np.mean([frame[c].to_numpy() == truth for c in main], axis=0)
