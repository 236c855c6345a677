"""bfloat16 inference: the same task scores as float32 within a stated tolerance, and a dtype of
its own in the cache key, the run id and every result."""

from __future__ import annotations

import numpy as np
import pytest

from benchbarcode.data import load_barcodes
from benchbarcode.embed import cache_key, cache_key_parts
from benchbarcode.registry import get_encoder
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec

#: the largest difference in a 1-NN accuracy allowed between bfloat16 and float32 embeddings
SCORE_TOLERANCE = 0.01
#: the smallest cosine similarity allowed between a sequence's bfloat16 and float32 embeddings
MIN_COSINE = 0.999


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


def test_bfloat16_embeddings_match_float32_closely():
    seqs = load_barcodes("sim:600").split("test")["sequence"].tolist()
    entry = get_encoder("random")
    fp32 = entry.create(like="mae", seed=0).embed(seqs)
    bf16 = entry.create(like="mae", seed=0, dtype="bfloat16").embed(seqs)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() >= MIN_COSINE
    assert not np.array_equal(fp32, bf16)  # it did compute in another dtype


def test_bfloat16_and_float32_give_the_same_scores_on_sim(tmp_path):
    """On ``sim`` (1-NN tasks; random-init transformer) every score agrees within SCORE_TOLERANCE,
    and the dtype is recorded and keys a separate run and cache entry."""
    ds = load_barcodes("sim:4000")
    reports = {}
    for dtype in ("float32", "bfloat16"):
        options = {"like": "mae"} | ({"dtype": dtype} if dtype != "float32" else {})
        reports[dtype] = run_benchmark(RunOptions(
            encoder=EncoderSpec("random", options=options, device="cpu"), tasks=("open-world", "unseen-species"),
            results_dir=str(tmp_path / "results"), progress=False), ds)
    fp32, bf16 = reports["float32"], reports["bfloat16"]
    assert fp32.run_id != bf16.run_id
    for a, b in zip(fp32.statuses, bf16.statuses):
        assert a.result["dtype"] == "float32" and b.result["dtype"] == "bfloat16"
        assert b.result["encoder"]["dtype"] == "bfloat16" and b.result["cache"] == {s: "miss" for s in b.result["cache"]}
        for name, value in a.result["scores"].items():
            assert abs(value - b.result["scores"][name]) <= SCORE_TOLERANCE, (a.task, name)
    meta32 = get_encoder("random").create(like="mae").meta
    meta16 = get_encoder("random").create(like="mae", dtype="bfloat16").meta
    assert cache_key(cache_key_parts(meta32, "h", "test")) != cache_key(cache_key_parts(meta16, "h", "test"))


def test_unknown_dtype_is_one_line(tmp_path):
    from benchbarcode.errors import UserError

    with pytest.raises(UserError, match="dtype=float8"):
        get_encoder("random").create(like="mae", dtype="float8")
