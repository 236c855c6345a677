"""Embedding under torchrun: two CPU processes (gloo) share the distinct sequences, each writes its
shard, every process reads them all; results equal one process's; a shard left by an interrupted
run is reused, a broken one redone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from benchbarcode.data import load_barcodes
from benchbarcode.embed import cache_key, cache_key_parts, embed_sequences, read_embeddings_npz
from benchbarcode.run import evaluation_split
from benchbarcode.spec import EncoderSpec, resolve_encoder

DATA = "sim:900"


def torchrun(args: list[str], tmp_path, processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCHBARCODE_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "benchbarcode", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)


def test_identical_sequences_are_embedded_once():
    class Counting:
        from benchbarcode.registry import EncoderMeta

        meta = EncoderMeta(name="counting", embedding_dim=1)
        seen: list[str] = []

        def embed(self, sequences, batch_size=64, progress=False):
            self.seen += list(sequences)
            return np.array([[len(s)] for s in sequences], dtype=np.float32)

    enc = Counting()
    out, _ = embed_sequences(enc, ["AC", "ACG", "AC", "A", "ACG"], parts=None, cache=None)
    assert enc.seen == ["AC", "ACG", "A"]
    assert out[:, 0].tolist() == [2, 3, 2, 1, 3]


def test_two_processes_embed_and_run_like_one(tmp_path):
    alone = tmp_path / "alone.npz"
    from benchbarcode.cli import main

    assert main(["embed", "--encoder", "kmer", "--data", DATA, "--split", "train", "--out", str(alone),
                 "--no-cache", "--quiet"]) == 0
    proc = torchrun(["embed", "--encoder", "kmer", "--data", DATA, "--split", "train", "--out", "shared.npz",
                     "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(read_embeddings_npz(tmp_path / "shared.npz")["embeddings"],
                                  read_embeddings_npz(alone)["embeddings"])
    assert not any((tmp_path / "cache" / "shards").rglob("*.npy"))  # merged, then removed

    proc = torchrun(["run", "--encoder", "kmer", "--data", DATA, "--tasks", "open-world,unseen-species",
                     "--results-dir", "results", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results:") == 1  # only the first process reports
    assert main(["run", "--encoder", "kmer", "--data", DATA, "--tasks", "open-world,unseen-species",
                 "--results-dir", str(tmp_path / "alone"), "--no-cache", "--quiet"]) == 0
    for task in ("open-world", "unseen-species"):
        shared = json.loads(next((tmp_path / "results").rglob(f"{task}.json")).read_text())
        single = json.loads(next((tmp_path / "alone").rglob(f"{task}.json")).read_text())
        assert shared["scores"] == single["scores"]


def test_a_shard_on_disk_is_reused_and_a_broken_one_redone(tmp_path):
    ds = load_barcodes(DATA)
    encoder = resolve_encoder(EncoderSpec("kmer")).create("cpu")
    parts = cache_key_parts(encoder.meta, ds.content_hash(), "train")
    directory = tmp_path / "cache" / "shards" / cache_key(parts)
    directory.mkdir(parents=True)
    sequences = evaluation_split(ds, "train", None, 0)["sequence"].tolist()
    distinct = list(dict.fromkeys(sequences))
    half = int(round(len(distinct) / 2))
    sentinel = np.full((half, 4 ** 6), 7.0, dtype=np.float32)  # what rank 0 "wrote" before a crash
    np.save(directory / "shard-00000-of-00002.npy", sentinel)
    (directory / "shard-00001-of-00002.npy").write_bytes(b"truncated")
    proc = torchrun(["embed", "--encoder", "kmer", "--data", DATA, "--split", "train", "--out", "out.npz",
                     "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = read_embeddings_npz(tmp_path / "out.npz")["embeddings"]
    reused = np.isin(np.array(sequences), distinct[:half])
    assert (got[reused] == 7.0).all()  # rank 0 did not recompute its shard
    expected = encoder.embed([s for s, r in zip(sequences, reused) if not r])
    np.testing.assert_array_equal(got[~reused], expected)  # rank 1 redid the broken one
