"""Canonical forms, in one place: plain JSON values, and the digests of JSON values and files.

Run ids, pretrained-encoder directories and embedding-cache keys are all :func:`digest` of a
plain JSON value; result files and identities hold :func:`plain` values.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchbarcode.errors import UserError


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays, tuples and paths converted, dict
    keys made strings; anything else is a UserError naming ``where``."""
    if isinstance(value, np.generic):  # before the plain types: np.float64 is a float subclass
        return plain(value.item(), where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, where) for v in value]
    raise UserError(f"{where}: a {type(value).__name__} is not a JSON value")


def digest(value: Any, length: int = 64) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``value`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(plain(value), sort_keys=True).encode("utf-8")).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def directory_sha256(directory: str | os.PathLike) -> str:
    """One SHA-256 over a directory's files (relative names and contents), hidden ones excluded."""
    directory = Path(directory)
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(directory).parts)):
        h.update(str(path.relative_to(directory)).encode() + b"\0" + file_sha256(path).encode())
    return h.hexdigest()
