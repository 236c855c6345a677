"""Embedding cache: the key covers every input, hits skip the encoder, corrupt files are replaced."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchbarcode import embed
from benchbarcode.embed import (EmbeddingCache, cache_key, cache_key_parts, default_cache_dir,
                                embed_sequences, read_embeddings_npz, write_embeddings_npz)
from benchbarcode.errors import UserError
from benchbarcode.fileio import LOCK_SUFFIX
from benchbarcode.registry import EncoderMeta, get_encoder

SEQS = ["ACGTACGTAC", "TTTTGGGGCCCCAAAA", "ACGNNACGT", "GATTACA" * 5]
DATA_HASH = "d" * 64


def _written(root: Path) -> list[Path]:
    """The files under ``root``, less the empty lock file an entry's lookup leaves beside it."""
    return [p for p in root.rglob("*") if p.is_file() and p.suffix != LOCK_SUFFIX]


def _meta(**changes) -> EncoderMeta:
    base = EncoderMeta(name="fake", family="test", objective="mae", tokenizer="k-mer (k=4, stride=4)",
                       k=4, layers=2, heads=2, hidden_size=8, parameters=1000, embedding_dim=3,
                       max_length=660, pooling="mean",
                       checkpoint={"path": "/ckpt/a", "sha256": "a" * 64, "preset": "tiny", "seed": 0},
                       budget={"steps": 10})
    return dataclasses.replace(base, **changes)


class FakeEncoder:
    """Deterministic 3-d embeddings; counts its embed calls."""

    def __init__(self, meta: EncoderMeta | None = None, output=None):
        self.meta = meta or _meta()
        self.calls = 0
        self.output = output

    def embed(self, sequences, batch_size=64, progress=False):
        self.calls += 1
        if self.output is not None:
            return self.output
        return np.array([[len(s), s.count("A"), s.count("G") / 2] for s in sequences], dtype=np.float32)


def _parts(meta: EncoderMeta | None = None, split: str = "train") -> dict:
    return cache_key_parts(meta or _meta(), DATA_HASH, split)


def _cached_once(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    enc = FakeEncoder()
    parts = _parts()
    first, hit = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    assert not hit and enc.calls == 1
    # a copy: the returned array is paged from the file, which the corruption tests overwrite in place
    return cache, enc, parts, np.array(first), cache.path(cache_key(parts))


# ----------------------------------------------------------------------------- keys
KEY_CHANGES = {
    "name": {"name": "other"}, "objective": {"objective": "mlm"},
    "tokenizer": {"tokenizer": "k-mer (k=4, stride=1)"}, "k": {"k": 5}, "layers": {"layers": 3},
    "heads": {"heads": 4}, "hidden_size": {"hidden_size": 16}, "pooling": {"pooling": "cls"},
    "max_length": {"max_length": 600}, "dtype": {"dtype": "bfloat16"}, "options": {"options": {"k": 3}},
    "loader": {"loader": {"long_sequences": "chunk"}},
    "checkpoint sha256": {"checkpoint": {"path": "/ckpt/a", "sha256": "b" * 64, "preset": "tiny", "seed": 0}},
    "checkpoint seed": {"checkpoint": {"path": "/ckpt/a", "sha256": "a" * 64, "preset": "tiny", "seed": 1}},
}
# descriptions, counts derived from the weights, and traits: not part of an encoder's identity
KEY_KEEPS = {
    "family": {"family": "x"}, "description": {"description": "other words"},
    "embedding_dim": {"embedding_dim": 4}, "parameters": {"parameters": 1001}, "budget": {"budget": {"steps": 11}},
    "pretrainable": {"pretrainable": True}, "seeded": {"seeded": True}, "control": {"control": {"encoder": "x"}},
    "similarity": {"similarity": "alignment"},  # how rows are compared, declared with the name
}


@pytest.mark.parametrize("component", sorted(KEY_CHANGES))
def test_every_meta_component_changes_the_key(component):
    assert cache_key(_parts(_meta(**KEY_CHANGES[component]))) != cache_key(_parts())


@pytest.mark.parametrize("component", sorted(KEY_KEEPS))
def test_descriptive_fields_do_not_change_the_key(component):
    assert cache_key(_parts(_meta(**KEY_KEEPS[component]))) == cache_key(_parts())


def test_every_meta_field_is_decided():
    """A field added to EncoderMeta must be declared identity or not (and tested here)."""
    fields = {f.name for f in dataclasses.fields(EncoderMeta)}
    changes = {name.split()[0] for name in KEY_CHANGES}
    assert fields == changes | set(KEY_KEEPS)
    assert set(KEY_KEEPS) == set(EncoderMeta.NOT_IDENTITY)


def test_data_and_split_change_the_key():
    base = cache_key(_parts())
    assert cache_key(cache_key_parts(_meta(), "e" * 64, "train")) != base
    assert cache_key(_parts(split="test")) != base
    assert cache_key(_parts()) == base  # and it is deterministic


def test_checkpoint_path_does_not_change_the_key():
    moved = _meta(checkpoint={"path": "/elsewhere/b", "sha256": "a" * 64, "preset": "tiny", "seed": 0})
    assert cache_key(_parts(moved)) == cache_key(_parts())
    assert "path" not in _parts()["encoder"]["checkpoint"]


def test_baseline_checkpoints_key():
    kmer4, kmer5 = get_encoder("kmer").create(k=4), get_encoder("kmer").create(k=5)
    assert cache_key(_parts(kmer4.meta)) != cache_key(_parts(kmer5.meta))
    numpy_seed = _meta(checkpoint={"like": "mae", "preset": "tiny", "seed": np.int64(3)})
    assert _parts(numpy_seed)["encoder"]["checkpoint"]["seed"] == 3


def test_unserialisable_checkpoint_is_a_user_error():
    with pytest.raises(UserError, match="fake"):
        _parts(_meta(checkpoint={"sha256": object()}))


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "bc"))
    assert default_cache_dir() == tmp_path / "bc" / "embeddings"
    monkeypatch.delenv("BENCHBARCODE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "benchbarcode" / "embeddings"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "benchbarcode" / "embeddings"
    assert EmbeddingCache().root == default_cache_dir()
    assert not (tmp_path / "home").exists()  # created lazily


def test_path_layout_and_bad_key(tmp_path):
    key = cache_key(_parts())
    assert EmbeddingCache(tmp_path).path(key) == tmp_path / key[:2] / f"{key}.npy"
    assert EmbeddingCache(tmp_path).record_path(key) == tmp_path / key[:2] / f"{key}.json"
    with pytest.raises(ValueError):
        EmbeddingCache(tmp_path).path("../../etc/passwd")


# ----------------------------------------------------------------------------- hits and misses
def test_miss_then_hit_without_calling_embed(tmp_path):
    cache, enc, parts, first, path = _cached_once(tmp_path)
    assert path.is_file()
    second, hit = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    assert hit and enc.calls == 1
    assert second.dtype == np.float32 and np.array_equal(first, second)


def test_kmer_encoder_round_trip(tmp_path):
    enc = get_encoder("kmer").create(k=4)
    cache = EmbeddingCache(tmp_path)
    parts = cache_key_parts(enc.meta, DATA_HASH, "test")
    a, hit_a = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    b, hit_b = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    assert (hit_a, hit_b) == (False, True) and a.shape == (4, 256) and np.array_equal(a, b)


def test_no_cache_or_no_parts_always_computes(tmp_path):
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path)
    for _ in range(2):
        assert embed_sequences(enc, SEQS, parts=None, cache=cache)[1] is False
        assert embed_sequences(enc, SEQS, parts=_parts(), cache=None)[1] is False
    assert enc.calls == 4 and not any(tmp_path.iterdir())


def test_different_split_is_a_miss(tmp_path):
    cache, enc, _, _, _ = _cached_once(tmp_path)
    assert embed_sequences(enc, SEQS, parts=_parts(split="test"), cache=cache)[1] is False
    assert enc.calls == 2


@pytest.mark.parametrize("output, match", [
    (np.zeros((4, 5), dtype=np.float32), r"shape \(4, 5\), expected \(4, 3\)"),
    (np.zeros((3, 3), dtype=np.float32), "shape"),
    (np.array([[0, 1, np.nan]] * 4, dtype=np.float32), "NaN or infinite values in 4 of 4 rows"),
    (np.array([[0, 1, np.inf]] + [[0, 0, 0]] * 3), "in 1 of 4 rows"),
])
def test_bad_encoder_output_is_a_user_error(tmp_path, output, match):
    enc = FakeEncoder(output=output)
    with pytest.raises(UserError, match=match) as info:
        embed_sequences(enc, SEQS, parts=_parts(), cache=EmbeddingCache(tmp_path))
    assert "'fake'" in str(info.value)
    assert not _written(tmp_path)  # nothing cached


def test_float64_output_is_converted(tmp_path):
    enc = FakeEncoder(output=np.ones((4, 3), dtype=np.float64))
    out, _ = embed_sequences(enc, SEQS, parts=_parts(), cache=EmbeddingCache(tmp_path))
    assert out.dtype == np.float32


# ----------------------------------------------------------------------------- corruption
def _record(path: Path) -> Path:
    return path.with_suffix(".json")


def _rewrite(path: Path, array: np.ndarray | None = None, checksum: bool = False, **record) -> None:
    """Replace the entry's array and/or record fields (``checksum=True``: a checksum that matches)."""
    if array is not None:
        with open(path, "wb") as fh:
            np.save(fh, array, allow_pickle=array.dtype == object)
        if checksum:
            record["checksum"] = embed._checksum(array)
    _record(path).write_text(json.dumps({**json.loads(_record(path).read_text()), **record}))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path):
    path.write_bytes(b"\x93NUMPY but not really" * 10)


def _wrong_key(path):
    _rewrite(path, key="f" * 64)


def _wrong_rows(path):
    _rewrite(path, np.load(path)[:3], checksum=True)


def _stale_checksum(path):
    arr = np.load(path).copy()
    arr[0, 0] += 1.0
    _rewrite(path, arr)


def _nans(path):
    arr = np.load(path).copy()
    arr[1, 1] = np.nan
    _rewrite(path, arr, checksum=True)


def _float64(path):
    _rewrite(path, np.load(path).astype(np.float64), checksum=True)


def _pickled(path):
    _rewrite(path, np.array([object()] * 4, dtype=object))


def _missing_checksum(path):
    record = json.loads(_record(path).read_text())
    del record["checksum"]
    _record(path).write_text(json.dumps(record))


def _garbage_record(path):
    _record(path).write_text("{not json")


def _missing_record(path):  # an array whose record was never written (killed between the two)
    _record(path).unlink()


CORRUPTIONS = [_truncate, _garbage, _wrong_key, _wrong_rows, _stale_checksum, _nans, _float64, _pickled,
               _missing_checksum, _garbage_record, _missing_record]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_file_is_deleted_on_load(tmp_path, corrupt):
    cache, _, parts, _, path = _cached_once(tmp_path)
    corrupt(path)
    assert cache.load(cache_key(parts), len(SEQS)) is None
    assert not path.exists() and not _record(path).exists()  # deleted, never trusted


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_file_is_recomputed_and_replaced(tmp_path, corrupt, caplog):
    cache, enc, parts, first, path = _cached_once(tmp_path)
    corrupt(path)
    again, hit = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    assert not hit and enc.calls == 2 and np.array_equal(again, first)
    assert "corrupt" in caplog.text or corrupt is _missing_record  # no record: simply no entry
    third, hit = embed_sequences(enc, SEQS, parts=parts, cache=cache)  # the replacement is good
    assert hit and enc.calls == 2 and np.array_equal(third, first)


def test_wrong_row_count_request_is_a_miss(tmp_path):
    cache, enc, parts, _, path = _cached_once(tmp_path)
    out, hit = embed_sequences(enc, SEQS[:3], parts=parts, cache=cache)
    assert not hit and out.shape == (3, 3) and enc.calls == 2
    assert cache.load(cache_key(parts), 3) is not None  # the recomputed entry replaced the old one


# ----------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(np, "save", boom)
    cache = EmbeddingCache(tmp_path)
    enc = FakeEncoder()
    with pytest.raises(type(exc)):
        embed_sequences(enc, SEQS, parts=_parts(), cache=cache)
    assert _written(tmp_path) == []


def test_interrupt_midway_through_writing(tmp_path, monkeypatch):
    real = np.save

    def partial(fh, array, **kwargs):
        real(fh, array, **kwargs)
        fh.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", partial)
    with pytest.raises(KeyboardInterrupt):
        embed_sequences(FakeEncoder(), SEQS, parts=_parts(), cache=EmbeddingCache(tmp_path))
    assert _written(tmp_path) == []


def test_save_holds_parts_and_checksum(tmp_path):
    cache, _, parts, first, path = _cached_once(tmp_path)
    record = json.loads(_record(path).read_text())
    assert record == {"key": cache_key(parts), "parts": parts, "checksum": embed._checksum(first)}
    assert np.array_equal(np.load(path, allow_pickle=False), first)


def test_hits_are_memory_mapped_copy_on_write(tmp_path):
    """A hit (and a freshly saved array) is paged from the file; writing to it changes no file."""
    cache = EmbeddingCache(tmp_path / "cache")
    enc, parts = FakeEncoder(), _parts()
    fresh, _ = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    path = cache.path(cache_key(parts))
    assert isinstance(fresh, np.memmap)
    hit, _ = embed_sequences(enc, SEQS, parts=parts, cache=cache)
    assert isinstance(hit, np.memmap) and Path(hit.filename) == path.resolve()
    hit[0, 0] = -1.0
    assert np.load(path)[0, 0] != -1.0


# ----------------------------------------------------------------------------- embeddings npz
def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "processid": ["P1", "P2", "P3"],
        "genus": pd.Series(["Aedes", None, "Culex"], dtype="category"),
        "species": pd.Series(["Aedes aegypti", pd.NA, None], dtype="string"),
        "sequence": ["ACGT"] * 3,
    })


def test_embeddings_npz_round_trip(tmp_path):
    emb = np.arange(6, dtype=np.float64).reshape(3, 2)
    out = tmp_path / "sub" / "e.npz"
    write_embeddings_npz(out, emb, _table())
    got = read_embeddings_npz(out)
    assert sorted(got) == ["embeddings", "genus", "processid", "species"]
    assert got["embeddings"].dtype == np.float32 and np.array_equal(got["embeddings"], emb)
    assert got["processid"].tolist() == ["P1", "P2", "P3"]
    assert got["genus"].tolist() == ["Aedes", "", "Culex"]
    assert got["species"].tolist() == ["Aedes aegypti", "", ""]
    for name in ("processid", "genus", "species"):
        assert got[name].dtype.kind == "U"
    assert [p.name for p in out.parent.iterdir()] == ["e.npz"]  # no temp file left


def test_embeddings_npz_bad_extension(tmp_path):
    with pytest.raises(UserError, match=r"e\.npy: .*\.npz"):
        write_embeddings_npz(tmp_path / "e.npy", np.zeros((3, 2)), _table())
    assert not any(tmp_path.iterdir())


def test_embeddings_npz_row_mismatch(tmp_path):
    with pytest.raises(ValueError):
        write_embeddings_npz(tmp_path / "e.npz", np.zeros((2, 2)), _table())


@pytest.mark.parametrize("arrays, match", [
    ({"embeddings": np.zeros((3, 2), np.float32), "processid": np.array(["a", "b", "c"])}, "'genus' missing"),
    ({"embeddings": np.zeros((3, 2), np.float64), "processid": np.array(["a", "b", "c"]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "expected float32"),
    ({"embeddings": np.zeros(3, np.float32), "processid": np.array(["a", "b", "c"]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "expected float32"),
    ({"embeddings": np.zeros((3, 2), np.float32), "processid": np.array([1, 2, 3]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "'processid': expected 3 strings"),
    ({"embeddings": np.zeros((3, 2), np.float32), "processid": np.array(["a", "b"]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "'processid': expected 3 strings"),
    ({"embeddings": np.full((3, 2), np.nan, np.float32), "processid": np.array(["a", "b", "c"]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "NaN"),
    ({"embeddings": np.array([None] * 3, dtype=object), "processid": np.array(["a", "b", "c"]),
      "genus": np.array(["", "", ""]), "species": np.array(["", "", ""])}, "not a readable"),
])
def test_read_embeddings_npz_bad_files(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=match) as info:
        read_embeddings_npz(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_embeddings_npz_not_npz(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="not a readable"):
        read_embeddings_npz(path)
    with pytest.raises(UserError, match="no such file"):
        read_embeddings_npz(tmp_path / "absent.npz")
