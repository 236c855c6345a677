"""Embeddings of a split, with an on-disk cache keyed by everything that changes a vector.

A cache entry is ``ROOT/<key[:2]>/<key>.npz`` holding ``embeddings`` (float32 ``[N, D]``),
``key``, ``checksum`` (SHA-256 of the array bytes) and ``parts`` (the key's inputs as JSON).
A file that fails any check on load is deleted and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchbarcode.errors import UserError
from benchbarcode.fileio import atomic_path
from benchbarcode.registry import EncoderMeta

CACHE_FORMAT = 1
_CONFIG_FIELDS = ("family", "objective", "tokenizer", "k", "layers", "heads", "hidden_size",
                  "embedding_dim", "parameters")
_KEY_RE = re.compile(r"[0-9a-f]{64}")
_LABEL_ARRAYS = ("processid", "genus", "species")
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Root of benchbarcode's caches: ``$BENCHBARCODE_CACHE``, else ``$XDG_CACHE_HOME/benchbarcode``,
    else ``~/.cache/benchbarcode``. Embeddings live under ``embeddings/``, pretrained encoders under
    ``pretrained/``."""
    if os.environ.get("BENCHBARCODE_CACHE"):
        return Path(os.environ["BENCHBARCODE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "benchbarcode"


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``cache_root() / "embeddings"``."""
    return cache_root() / "embeddings"


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (numpy scalars, tuples and paths converted), else UserError."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    raise UserError(f"{where}: a {type(value).__name__} cannot be part of an embedding cache key")


def cache_key_parts(meta: EncoderMeta, data_hash: str, split: str, *, dtype: str = "float32") -> dict:
    """Everything that changes the vectors of ``split``; the checkpoint's ``path`` is left out
    (its ``sha256`` identifies the weights wherever they lie)."""
    checkpoint = {k: v for k, v in (meta.checkpoint or {}).items() if k != "path"}
    parts = {
        "format": CACHE_FORMAT,
        "encoder": meta.name,
        "config": {f: getattr(meta, f) for f in _CONFIG_FIELDS},
        "checkpoint": checkpoint,
        "pooling": meta.pooling,
        "max_length": meta.max_length,
        "dtype": dtype,
        "data": data_hash,
        "split": split,
    }
    return _jsonable(parts, f"encoder {meta.name!r} metadata")


def cache_key(parts: dict) -> str:
    """SHA-256 hex digest of ``parts`` as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class EmbeddingCache:
    """Embeddings on disk under ``root`` (created on the first save)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        if not _KEY_RE.fullmatch(key):
            raise ValueError(f"not a cache key (64 lowercase hex digits): {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    def load(self, key: str, n_rows: int) -> np.ndarray | None:
        """The cached ``[n_rows, D]`` float32 array, or None when absent or corrupt (then deleted)."""
        path = self.path(key)
        if not path.is_file():
            return None
        problem = None
        try:
            with np.load(path, allow_pickle=False) as npz:
                array, stored_key, checksum = npz["embeddings"], str(npz["key"]), str(npz["checksum"])
        except Exception as exc:  # truncated, garbage, missing arrays, pickled objects...
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if stored_key != key:
                problem = "stored key differs"
            elif array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != n_rows:
                problem = f"holds {array.dtype} {array.shape}, expected float32 ({n_rows}, D)"
            elif not np.isfinite(array).all():
                problem = "non-finite values"
            elif _checksum(array) != checksum:
                problem = "checksum mismatch"
        if problem is None:
            return array
        log.warning("embedding cache %s is corrupt (%s); deleting it", path, problem)
        path.unlink(missing_ok=True)
        return None

    def save(self, key: str, array: np.ndarray, parts: dict) -> Path:
        """Write ``array`` under ``key`` atomically; returns the file's path."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim != 2 or not np.isfinite(array).all():
            raise ValueError(f"cache entries are finite [N, D] arrays, not shape {array.shape}")
        path = self.path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, embeddings=array, key=np.array(key), checksum=np.array(_checksum(array)),
                     parts=np.array(json.dumps(parts, sort_keys=True)))
        return path


def _checked(encoder: Any, array: Any, n_rows: int) -> np.ndarray:
    """``array`` as float32 if it is a finite ``(n_rows, meta.embedding_dim)`` array, else UserError."""
    meta = encoder.meta
    try:
        array = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise UserError(f"encoder {meta.name!r}: embed returned no numeric array ({exc})") from None
    if array.shape != (n_rows, meta.embedding_dim):
        raise UserError(f"encoder {meta.name!r}: embed returned shape {array.shape}, expected "
                        f"({n_rows}, {meta.embedding_dim}) (sequences, meta.embedding_dim)")
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = int((~finite).any(axis=1).sum())
        raise UserError(f"encoder {meta.name!r}: embed returned NaN or infinite values in "
                        f"{bad_rows} of {n_rows} rows")
    return array


def embed_sequences(encoder: Any, sequences: list[str], *, parts: dict | None,
                    cache: EmbeddingCache | None, batch_size: int = 64,
                    progress: bool = False) -> tuple[np.ndarray, bool]:
    """``(float32 [N, D] embeddings, cache_hit)``; computes (and caches) on a miss.

    Without ``cache`` or ``parts`` it always computes and stores nothing. ``parts`` must describe
    exactly ``sequences`` (see :func:`cache_key_parts`): the cache cannot check that.
    """
    sequences = list(sequences)
    key = cache_key(parts) if cache is not None and parts is not None else None
    if key is not None:
        hit = cache.load(key, len(sequences))
        if hit is not None and hit.shape[1] == encoder.meta.embedding_dim:
            return hit, True
        if hit is not None:  # only a hand-edited file can get here: the key holds embedding_dim
            cache.path(key).unlink(missing_ok=True)
    array = _checked(encoder, encoder.embed(sequences, batch_size=batch_size, progress=progress),
                     len(sequences))
    if key is not None:
        cache.save(key, array, parts)
    return array, False


def _string_array(column: pd.Series) -> np.ndarray:
    values = column.astype(object).where(column.notna(), "")
    return np.array([str(v) for v in values], dtype=str)


def write_embeddings_npz(path: str | os.PathLike, embeddings: np.ndarray, table: pd.DataFrame) -> None:
    """Write ``embeddings`` with ``processid``, ``genus`` and ``species`` of ``table`` (NA -> "")."""
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"{path}: embeddings are written as .npz; give a file name ending in .npz")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(table):
        raise ValueError(f"embeddings of shape {embeddings.shape} for a table of {len(table)} rows")
    labels = {name: _string_array(table[name]) for name in _LABEL_ARRAYS}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=embeddings, **labels)


def read_embeddings_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file of :func:`write_embeddings_npz`; a bad file raises a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [n for n in ("embeddings", *_LABEL_ARRAYS) if n not in npz.files]
            if missing:
                raise UserError(f"{path}: array {missing[0]!r} missing (not written by benchbarcode embed?)")
            out = {name: npz[name] for name in ("embeddings", *_LABEL_ARRAYS)}
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    emb = out["embeddings"]
    if emb.ndim != 2 or emb.dtype != np.float32:
        raise UserError(f"{path}: array 'embeddings': expected float32 [N, D], found {emb.dtype} {emb.shape}")
    if not np.isfinite(emb).all():
        raise UserError(f"{path}: array 'embeddings': holds NaN or infinite values")
    for name in _LABEL_ARRAYS:
        arr = out[name]
        if arr.dtype.kind != "U" or arr.shape != (emb.shape[0],):
            raise UserError(f"{path}: array {name!r}: expected {emb.shape[0]} strings, "
                            f"found {arr.dtype} {arr.shape}")
    return out
