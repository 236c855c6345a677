"""The alignment baseline: exact search (against brute force), the sequence representation, and
its place in run and the leaderboard (the 1-NN tasks only, marked as not an embedding)."""

from __future__ import annotations

import json

import edlib
import numpy as np
import pytest

from benchbarcode.alignment import codes_to_sequences, nearest_by_alignment, sequence_codes


def mutate(rng, seq: str, rate: float) -> str:
    out = []
    for ch in seq:
        r = rng.random()
        if r < rate / 3:
            continue  # deletion
        if r < 2 * rate / 3:
            out.append("ACGT"[rng.integers(4)])  # substitution (sometimes silent)
        elif r < rate:
            out.append(ch + "ACGT"[rng.integers(4)])  # insertion
        else:
            out.append(ch)
    return "".join(out)


def brute_force(keys: list[str], queries: list[str]) -> np.ndarray:
    """Every pair aligned in full; highest score n - 2e, lowest key index on ties."""
    answer = []
    for q in queries:
        best, arg = None, None
        for j, k in enumerate(keys):
            a, b = (q, k) if len(q) <= len(k) else (k, q)
            score = len(a) - 2 * edlib.align(a, b, mode="HW", task="distance")["editDistance"]
            if best is None or score > best:
                best, arg = score, j
        answer.append(arg)
    return np.array(answer)


@pytest.fixture(scope="module")
def family():
    """Keys: 12 'species' of 5 variants each, some cut short, some with N, exact duplicates."""
    rng = np.random.default_rng(5)
    roots = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(3)]
    species = [mutate(rng, roots[i % 3], 0.15) for i in range(12)]
    keys = []
    for s in species:
        for v in range(5):
            k = mutate(rng, s, 0.03)
            if v == 3:
                k = k[20:150]  # a partial barcode
            if v == 4:
                k = k[:50] + "NN" + k[52:]
            keys.append(k)
    keys[7] = keys[2]  # identical barcodes: the lower index must win
    queries = [mutate(rng, species[i % 12], 0.05) for i in range(40)] + [keys[2], keys[13][10:90], "ACGT"]
    return keys, queries


def test_search_equals_brute_force(family):
    keys, queries = family
    found, identity = nearest_by_alignment(keys, queries, workers=1, chunk=7)
    np.testing.assert_array_equal(found, brute_force(keys, queries))
    assert found[40] == 2 and identity[40] == 1.0  # the exact copy, at its first index
    assert ((identity >= 0) & (identity <= 1)).all()


def test_workers_do_not_change_the_answer(family):
    keys, queries = family
    one = nearest_by_alignment(keys, queries, workers=1, chunk=5)
    two = nearest_by_alignment(keys, queries, workers=2, chunk=5)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_sequence_codes_round_trip():
    seqs = ["ACGT", "", "NNACRY", "A" * 12]
    codes = sequence_codes(seqs, 10)
    assert codes.dtype == np.float32 and codes.shape == (4, 10)
    assert codes_to_sequences(codes) == ["ACGT", "", "NNACNN", "A" * 10]  # other -> N, cut at width
    with pytest.raises(ValueError, match="not a sequence-code row"):
        codes_to_sequences(np.array([[0.0, 7.0]], dtype=np.float32))


def test_run_align_scores_the_1nn_tasks_and_sits_beside_kmer(tmp_path, monkeypatch):
    from benchbarcode.cli import main

    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    for encoder in ("align", "kmer"):
        assert main(["run", "--encoder", encoder, "--data", "sim:1500", "--results-dir", str(results),
                     "--quiet"]) == 0
    written = {p.parent.parent.name + "/" + p.stem: json.loads(p.read_text())
               for p in results.glob("*/*/*.json")}
    tasks = {name.split("/")[1] for name in written if name.startswith("align/")}
    assert tasks == {"open-world", "unseen-species"}  # the probe and clustering need embeddings
    world = written["align/open-world"]
    assert world["encoder"]["similarity"] == "alignment"
    assert world["task"]["protocol"]["distance"].startswith("alignment score")
    assert set(world["scores"]) == {"accuracy", "balanced_accuracy"}
    assert world["scores"]["accuracy"] > 0.5  # sim's genera are far apart in sequence
    assert written["kmer/open-world"]["task"]["protocol"]["distance"] == "cosine"

    assert main(["leaderboard", "--results-dir", str(results), "--out", str(tmp_path / "board.md")]) == 0
    board = (tmp_path / "board.md").read_text()
    assert board.count("\n## ") == 1  # one table: align beside kmer
    align_line = next(line for line in board.splitlines() if "| align" in line)
    assert "align ‡" in align_line and "(incomplete" not in align_line  # n/a, not missing
    assert "‡`: not an embedding" in board


@pytest.mark.parametrize("command", [["embed", "--out", "x.npz"], ["profile"]])
def test_embed_and_profile_refuse_it(tmp_path, monkeypatch, capsys, command):
    from benchbarcode.cli import main

    monkeypatch.chdir(tmp_path)
    assert main([command[0], "--encoder", "align", *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "not an embedding" in err and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()
