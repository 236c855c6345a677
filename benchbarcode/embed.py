"""Embeddings of a split, with an on-disk cache keyed by everything that changes a vector.

A cache entry is two files under ``ROOT/<key[:2]>/``: ``<key>.npy`` (float32 ``[N, D]``) and
``<key>.json`` (``key``, ``checksum``: SHA-256 of the array bytes, ``parts``: the key's inputs),
each written atomically, the record last (an array without its record is no entry); ``<key>.lock``
beside them lets concurrent runs compute an entry once (:func:`benchbarcode.fileio.exclusive`). A hit is
memory-mapped (copy-on-write), so the embeddings of millions of barcodes are paged in from the
file instead of held in memory, and a freshly computed array is returned the same way once
saved. A file that fails any check on load is deleted and recomputed, never trusted.
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

from benchbarcode.canonical import digest
from benchbarcode.errors import UserError
from benchbarcode.fileio import LOCK_SUFFIX, atomic_path, cache_root, exclusive, write_text_atomic
from benchbarcode.registry import EncoderMeta
from benchbarcode.runtime import Dist

CACHE_FORMAT = 4  # 2: keyed by EncoderMeta.identity(); 3: canonical.digest; 4: .npy + .json, memory-mapped
_KEY_RE = re.compile(r"[0-9a-f]{64}")
_LABEL_ARRAYS = ("processid", "genus", "species")
_OPTIONAL_ARRAYS = ("split",)
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``cache_root() / "embeddings"``."""
    return cache_root() / "embeddings"


def cache_key_parts(meta: EncoderMeta, data_hash: str, split: str) -> dict:
    """Everything that changes the vectors of ``split``: the encoder's identity (see
    :meth:`EncoderMeta.identity`), the data set's content hash and the split (with any subset)."""
    return {"format": CACHE_FORMAT, "encoder": meta.identity(), "data": data_hash, "split": split}


def cache_key(parts: dict) -> str:
    """SHA-256 hex digest of ``parts`` as canonical JSON."""
    return digest(parts)


def _checksum(array: np.ndarray, chunk_rows: int = 65536) -> str:
    """SHA-256 of the array's bytes (row blocks at a time: a memory map is paged, not copied)."""
    array = np.ascontiguousarray(array)
    digest_ = hashlib.sha256()
    for start in range(0, len(array), chunk_rows):  # an empty split: the digest of no bytes
        digest_.update(memoryview(array[start:start + chunk_rows]).cast("B"))
    return digest_.hexdigest()


def _finite(array: np.ndarray, chunk_rows: int = 65536) -> bool:
    return all(np.isfinite(array[i:i + chunk_rows]).all() for i in range(0, len(array), chunk_rows))


class EmbeddingCache:
    """Embeddings on disk under ``root`` (created on the first save)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        """The array file of ``key`` (its record is the same name with ``.json``)."""
        if not _KEY_RE.fullmatch(key):
            raise ValueError(f"not a cache key (64 lowercase hex digits): {key!r}")
        return self.root / key[:2] / f"{key}.npy"

    def record_path(self, key: str) -> Path:
        return self.path(key).with_suffix(".json")

    def lock_path(self, key: str) -> Path:
        """The lock held while ``key`` is looked up and, if missing, computed and saved."""
        return self.path(key).with_suffix(LOCK_SUFFIX)

    def load(self, key: str, n_rows: int) -> np.ndarray | None:
        """The cached ``[n_rows, D]`` float32 array (memory-mapped, copy-on-write), or None when
        absent or corrupt (then deleted)."""
        path, record_path = self.path(key), self.record_path(key)
        if not record_path.is_file():
            path.unlink(missing_ok=True)  # an array whose record was never written
            return None
        problem = None
        try:
            record = json.loads(record_path.read_text())
            array = np.load(path, mmap_mode="c", allow_pickle=False)
            stored_key, checksum = record["key"], record["checksum"]
        except Exception as exc:  # truncated, garbage, missing fields, pickled objects...
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if stored_key != key:
                problem = "stored key differs"
            elif array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != n_rows:
                problem = f"holds {array.dtype} {array.shape}, expected float32 ({n_rows}, D)"
            elif not _finite(array):
                problem = "non-finite values"
            elif _checksum(array) != checksum:
                problem = "checksum mismatch"
        if problem is None:
            return array
        log.warning("embedding cache %s is corrupt (%s); deleting it", path, problem)
        self.remove(key)
        return None

    def save(self, key: str, array: np.ndarray, parts: dict) -> np.ndarray:
        """Write ``array`` under ``key`` atomically; returns it memory-mapped from the file."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim != 2 or not _finite(array):
            raise ValueError(f"cache entries are finite [N, D] arrays, not shape {array.shape}")
        path = self.path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        write_text_atomic(self.record_path(key),
                          json.dumps({"key": key, "checksum": _checksum(array), "parts": parts}, sort_keys=True))
        return np.load(path, mmap_mode="c", allow_pickle=False)

    def remove(self, key: str) -> None:
        self.record_path(key).unlink(missing_ok=True)
        self.path(key).unlink(missing_ok=True)


def _checked(encoder: Any, array: Any, n_rows: int) -> np.ndarray:
    """``array`` as float32 if it is a finite ``(n_rows, D)`` array (``D = meta.embedding_dim``
    when the encoder states it), else UserError."""
    meta = encoder.meta
    try:
        array = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise UserError(f"encoder {meta.name!r}: embed returned no numeric array ({exc})") from None
    dim = meta.embedding_dim
    if array.ndim != 2 or array.shape[0] != n_rows or (dim is not None and array.shape[1] != dim) \
            or array.shape[1] == 0:
        raise UserError(f"encoder {meta.name!r}: embed returned shape {array.shape}, expected "
                        f"({n_rows}, {dim if dim is not None else 'D'}) (sequences, meta.embedding_dim)")
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = int((~finite).any(axis=1).sum())
        raise UserError(f"encoder {meta.name!r}: embed returned NaN or infinite values in "
                        f"{bad_rows} of {n_rows} rows")
    return array


def embed_sequences(encoder: Any, sequences: list[str], *, parts: dict | None,
                    cache: EmbeddingCache | None, batch_size: int = 64, progress: bool = False,
                    dist: Dist | None = None, shards: str | Path | None = None) -> tuple[np.ndarray, bool]:
    """``(float32 [N, D] embeddings, cache_hit)``; computes (and caches) on a miss.

    Identical sequences are embedded once. Under torchrun (``dist.world > 1``) the distinct
    sequences are split into one contiguous shard per process; each process writes its shard
    atomically under ``shards/<key>/``, and after a barrier every process reads them all (rank 0
    also fills the cache). A shard already on disk from an interrupted run is reused, so only a
    crashed process's shard is redone. Without ``cache`` or ``parts`` it computes and stores
    nothing (shards need ``parts`` too). ``parts`` must describe exactly ``sequences`` (see
    :func:`cache_key_parts`): the cache cannot check that.

    A single process looks the entry up, and computes and saves it if missing, holding the
    entry's lock (:meth:`EmbeddingCache.lock_path`): a second run that needs the same entry waits
    and then reads it instead of computing it again, while other entries go on in parallel. The
    lookup itself is inside the lock because it deletes an array without its record, which is
    also what a writer's file looks like between its two renames.
    """
    sequences = list(sequences)
    dist = dist or Dist()
    key = cache_key(parts) if cache is not None and parts is not None else None
    if key is None or dist.world > 1:  # torchrun's processes wait for each other at barriers instead
        return _cached_or_computed(encoder, sequences, key, cache, parts, dist, batch_size, progress, shards)
    with exclusive(cache.lock_path(key), f"embedding {parts.get('split', 'these sequences')}"):
        return _cached_or_computed(encoder, sequences, key, cache, parts, dist, batch_size, progress, shards)


def _cached_or_computed(encoder: Any, sequences: list[str], key: str | None, cache: EmbeddingCache | None,
                        parts: dict | None, dist: Dist, batch_size: int, progress: bool,
                        shards: str | Path | None) -> tuple[np.ndarray, bool]:
    """:func:`embed_sequences` once its lock, if any, is held: the cache's entry when it holds a
    good one (another run may have just written it), else the embeddings computed and saved."""
    if key is not None:
        hit = cache.load(key, len(sequences))
        if hit is not None and encoder.meta.embedding_dim in (None, hit.shape[1]):
            return hit, True
        if hit is not None and dist.main:  # a hand-edited file, or an encoder whose stated dimension changed
            cache.remove(key)
    first: dict[str, int] = {}  # distinct sequences in order of first appearance
    rows = np.fromiter((first.setdefault(seq, len(first)) for seq in sequences), dtype=np.int64,
                       count=len(sequences))
    distinct = list(first)
    if dist.world > 1:
        if shards is None or parts is None:
            raise ValueError("embedding under torchrun needs a shard directory and the cache parts")
        vectors = _embed_sharded(encoder, distinct, Path(shards) / cache_key(parts), dist, batch_size, progress)
    else:
        vectors = _checked(encoder, encoder.embed(distinct, batch_size=batch_size, progress=progress),
                           len(distinct))
    array = vectors[rows]
    del vectors
    if key is not None and dist.main:
        array = cache.save(key, array, parts)  # from here on paged from the file, not held twice
    return array, False


def _embed_sharded(encoder: Any, distinct: list[str], directory: Path, dist: Dist, batch_size: int,
                   progress: bool) -> np.ndarray:
    """Embed this process's contiguous part of ``distinct`` into ``directory``, wait for the others,
    and return every part in order (see :func:`embed_sequences`)."""
    bounds = np.linspace(0, len(distinct), dist.world + 1).round().astype(int)
    paths = [directory / f"shard-{r:05d}-of-{dist.world:05d}.npy" for r in range(dist.world)]
    mine = distinct[bounds[dist.rank]:bounds[dist.rank + 1]]
    if _read_shard(paths[dist.rank], len(mine)) is None:
        array = _checked(encoder, encoder.embed(mine, batch_size=batch_size, progress=progress and dist.main),
                         len(mine)) if mine else np.zeros((0, encoder.meta.embedding_dim or 0), np.float32)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(paths[dist.rank]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array)
    dist.barrier()
    parts = [_read_shard(p, hi - lo) for p, lo, hi in zip(paths, bounds[:-1], bounds[1:])]
    missing = [path.name for path, part in zip(paths, parts) if part is None]
    if missing:
        raise UserError(f"{directory}: {', '.join(missing)} missing or unreadable after every process finished")
    widths = {p.shape[1] for p in parts if len(p)}
    if len(widths) > 1:
        raise UserError(f"{directory}: shards of different widths {sorted(widths)}")
    out = np.concatenate([p for p in parts if len(p)] or [np.zeros((0, 0), np.float32)])
    dist.barrier()  # every process has read them: the first may remove them
    if dist.main:
        for path in paths:
            path.unlink(missing_ok=True)
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return out


def _read_shard(path: Path, rows: int) -> np.ndarray | None:
    """A shard written by :func:`_embed_sharded` with ``rows`` finite float32 rows, else None."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except Exception:  # truncated or foreign: redo it
        return None
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != rows or not _finite(array):
        return None
    return array


def _string_array(column: pd.Series) -> np.ndarray:
    values = column.astype(object).where(column.notna(), "")
    return np.array([str(v) for v in values], dtype=str)


NPZ = ".npz"  # the suffix of an embeddings file (benchbarcode embed --out)


def write_embeddings_npz(path: str | os.PathLike, embeddings: np.ndarray, table: pd.DataFrame) -> None:
    """Write ``embeddings`` with ``processid``, ``genus`` and ``species`` of ``table`` (NA -> "")
    to ``path``, whose name ends in :data:`NPZ`."""
    path = Path(path)
    if path.suffix != NPZ:
        raise UserError(f"{path}: embeddings are written as {NPZ}; give a file name ending in {NPZ}")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(table):
        raise ValueError(f"embeddings of shape {embeddings.shape} for a table of {len(table)} rows")
    labels = {name: _string_array(table[name]) for name in (*_LABEL_ARRAYS, *_OPTIONAL_ARRAYS) if name in table}
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
            out = {name: npz[name] for name in ("embeddings", *_LABEL_ARRAYS, *_OPTIONAL_ARRAYS)
                   if name in npz.files}
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    emb = out["embeddings"]
    if emb.ndim != 2 or emb.dtype != np.float32:
        raise UserError(f"{path}: array 'embeddings': expected float32 [N, D], found {emb.dtype} {emb.shape}")
    if not np.isfinite(emb).all():
        raise UserError(f"{path}: array 'embeddings': holds NaN or infinite values")
    for name in (n for n in (*_LABEL_ARRAYS, *_OPTIONAL_ARRAYS) if n in out):
        arr = out[name]
        if arr.dtype.kind != "U" or arr.shape != (emb.shape[0],):
            raise UserError(f"{path}: array {name!r}: expected {emb.shape[0]} strings, "
                            f"found {arr.dtype} {arr.shape}")
    return out


# ----------------------------------------------------------------------------- the cache as a whole
_PARTS = ("embeddings", "pretrained", "shards", "data")  # shards: unfinished torchrun embeddings;
# data: generated data sets (sim-large twins)
_ENTRY_SUFFIX = {"embeddings": ".json", "data": ".csv"}  # other parts: one folder per entry


def cache_info() -> dict:
    """Where the cache is (and what set it), and the entries and bytes of each part."""
    root = cache_root()
    set_by = ("$BENCHBARCODE_CACHE" if os.environ.get("BENCHBARCODE_CACHE")
              else "$XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "default")
    parts = {}
    for part in _PARTS:
        files = [p for p in (root / part).rglob("*") if p.is_file()] if (root / part).is_dir() else []
        entries = (len([f for f in files if f.suffix == _ENTRY_SUFFIX[part]]) if part in _ENTRY_SUFFIX
                   else len([d for d in (root / part).iterdir() if d.is_dir()]) if (root / part).is_dir() else 0)
        parts[part] = {"entries": entries, "bytes": sum(f.stat().st_size for f in files)}
    return {"root": str(root), "set_by": set_by, "parts": parts}


def clear_cache(what: str = "all") -> dict:
    """Remove one part of the cache (embeddings, pretrained encoders, torchrun shards, generated
    data) or all of them; never anything else under the root."""
    import shutil

    root = cache_root()
    files = nbytes = 0
    for part in (_PARTS if what == "all" else (what,)):
        if part not in _PARTS:
            raise UserError(f"cache clear --what {what}: expected all, {', '.join(_PARTS)}")
        folder = root / part
        if folder.is_dir():  # the empty lock files go too, uncounted: they hold no entry
            found = [p for p in folder.rglob("*") if p.is_file() and p.suffix != LOCK_SUFFIX]
            files += len(found)
            nbytes += sum(p.stat().st_size for p in found)
            shutil.rmtree(folder)
    return {"root": str(root), "files": files, "bytes": nbytes}
