"""Canonical forms, in one place: plain JSON values, and the digests of JSON values and files.

Run ids, pretrained-encoder directories and embedding-cache keys are all :func:`digest` of a
plain JSON value; result files and identities hold :func:`plain` values. Weights this suite trained
are identified by :func:`tensors_sha256` (what the tensors are), not by their file's bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
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


def tensors_sha256(tensors: Mapping[str, Any]) -> str:
    """One SHA-256 over named torch tensors: for each, in name order, its name, dtype and shape
    (a line of JSON) and its raw bytes (contiguous, in the machine's byte order: little-endian,
    as safetensors stores them, on every platform torch ships for).

    The identity of weights this suite trained, where a file's hash would also cover what the
    file says around them: the weights file ``save_pretrained`` writes records the transformers
    version in its metadata, so the same tensors saved under transformers 5.24 and 5.25 gave
    different hashes, run ids and cache keys. Neither metadata nor the order of a state dict
    changes this hash; any changed value does."""
    return _tensor_digest(tensors, tensors.__getitem__)


def safetensors_sha256(path: str | os.PathLike) -> str:
    """:func:`tensors_sha256` of the tensors in the safetensors file ``path``, read one at a time."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return _tensor_digest(fh.keys(), fh.get_tensor)


def _tensor_digest(names: Iterable[str], get: Callable[[str], Any]) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(names):
        tensor = get(name).detach().cpu().contiguous()
        header = [name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape)]
        h.update(json.dumps(header).encode("utf-8") + b"\n")
        h.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()
