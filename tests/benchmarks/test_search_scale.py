"""1-NN search at BIOSCAN-5M scale: 300k keys x 8k queries x 768 dimensions (pytest-benchmark).

Run (about 5 minutes on 2 cores) and save JSON with::

    python -m pytest tests/benchmarks/test_search_scale.py -o addopts="" --benchmark-only \
        --benchmark-json=search.json

``BENCHBARCODE_BENCH_SEARCH=keys,queries`` changes the sizes. The embeddings imitate a frozen
encoder's: a shared offset (raw cosine near 1 everywhere), 2,000 clusters, near-identical and
identical keys. Every method is timed in alternating rounds in one run (the benchmark's own
timing: ``nearest_keys`` with bfloat16 candidates; the others' medians in ``extra_info``), and
``nearest_keys``'s answers are checked against a float64 brute force on 200 queries
(:func:`brute_force`) and against each other:

* ``blocked_float32``: the suite's search before the candidate pass (a running float32 maximum
  over ``[1024, 32768]`` blocks), the reference;
* ``nearest_keys`` with bfloat16 and float32 candidates (exact by construction);
* faiss ``IndexFlatIP`` (exact float32 inner product), when faiss is installed.

Recorded beside these (not rerun by this suite), measured 2026-11-30 on this project's 2-core CPU
machine (commit 9a4e263): the sim-large twin's train split as keys (289k keys, 145,954 distinct) and
its 7,887 test_unseen barcodes as queries, embedded by the ``tiny`` preset's 250-step ``mae``.
Before :data:`benchbarcode.neighbours.PAIR_BUDGET`, bfloat16 kept 139,619 of the 145,954 distinct
keys per query as candidates (1.1 billion pairs) and the search was killed at 24 GB; with the
budget (float32 candidates for those queries), 16 s at 1.5 GB.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from benchbarcode.neighbours import nearest_keys, unit_rows

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"
SIZES = os.environ.get("BENCHBARCODE_BENCH_SEARCH", "2000,100" if SMOKE else "300000,8000")
ROUNDS = 1 if SMOKE else 3


def encoder_like(n_keys: int, n_queries: int, dim: int = 768, seed: int = 0):
    rng = np.random.default_rng(seed)
    offset = 3.0 * rng.standard_normal(dim, dtype=np.float32)
    centres = rng.standard_normal((2000, dim), dtype=np.float32)

    def draw(n):
        x = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, dim), dtype=np.float32)
        return x + offset

    keys, queries = draw(n_keys), draw(n_queries)
    keys[1::50] = keys[::50][: len(keys[1::50])]  # identical keys (same barcode)
    keys[2::50] = keys[::50][: len(keys[2::50])] + 1e-6  # near-identical
    return keys, queries


def blocked_float32(keys, queries, query_chunk=1024, key_chunk=32768):
    """The reference: float32 similarities, running maximum per query, lowest index on ties."""
    def unit(x):
        x = torch.from_numpy(x)
        n = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return x / torch.where(n > 0, n, torch.ones_like(n))

    q = unit(queries)
    best = torch.full((len(q),), -torch.inf)
    arg = torch.zeros(len(q), dtype=torch.long)
    for k0 in range(0, len(keys), key_chunk):
        block = unit(keys[k0:k0 + key_chunk])
        for q0 in range(0, len(q), query_chunk):
            val, idx = (q[q0:q0 + query_chunk] @ block.T).max(dim=1)
            better = val > best[q0:q0 + query_chunk]
            best[q0:q0 + query_chunk] = torch.where(better, val, best[q0:q0 + query_chunk])
            arg[q0:q0 + query_chunk] = torch.where(better, idx + k0, arg[q0:q0 + query_chunk])
    return arg.numpy()


def faiss_flat(keys, queries):
    import faiss

    k, q = keys.copy(), queries.copy()
    faiss.normalize_L2(k)
    faiss.normalize_L2(q)
    index = faiss.IndexFlatIP(k.shape[1])
    index.add(k)
    return index.search(q, 1)[1][:, 0]


def brute_force(keys, queries, block=32768):
    """Which keys are an exact answer for each query (bool ``[keys, queries]``), by brute force, as
    :mod:`benchbarcode.neighbours` defines it: the largest float64 cosine between the float32 unit
    vectors (``unit_rows``), the lowest index among bitwise copies. Similarities within twice the
    float64 rounding bound of a ``D``-term dot product of unit vectors, ``D * 2**-53`` (2e-13 at
    D = 768), count as equal: the module sums in another order than numpy's product here."""
    q = unit_rows(queries, None).astype(np.float64)
    sims = np.concatenate([unit_rows(keys[i:i + block], None).astype(np.float64) @ q.T
                           for i in range(0, len(keys), block)])
    best = sims >= sims.max(axis=0) - 2 * keys.shape[1] * 2.0 ** -53
    for j in range(best.shape[1]):
        ties = np.flatnonzero(best[:, j])
        for i, key in enumerate(ties[1:], 1):  # a copy of an earlier tie is not an answer
            best[key, j] = not (keys[ties[:i]] == keys[key]).all(axis=1).any()
    return best


def test_nearest_keys_at_scale(benchmark):
    n_keys, n_queries = (int(v) for v in SIZES.split(","))
    keys, queries = encoder_like(n_keys, n_queries)
    others = {"blocked_float32": blocked_float32,
              "nearest_keys_float32": lambda k, q: nearest_keys(k, q, precision="float32")}
    try:
        import faiss  # noqa: F401

        others["faiss_flat_ip"] = faiss_flat
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in others}
    answers = {}

    def run_others():  # before each timed round of nearest_keys in bfloat16: rounds alternate
        for name, method in others.items():
            started = time.perf_counter()
            answers[name] = method(keys, queries)
            times[name].append(time.perf_counter() - started)

    answers["nearest_keys_bfloat16"] = benchmark.pedantic(nearest_keys, args=(keys, queries),
                                                          kwargs={"precision": "bfloat16"}, setup=run_others,
                                                          rounds=ROUNDS, iterations=1)
    medians = {name: statistics.median(t) for name, t in times.items()}
    medians["nearest_keys_bfloat16"] = benchmark.stats.stats.median
    exact = answers["nearest_keys_float32"]
    sample = np.random.default_rng(1).choice(n_queries, min(200, n_queries), replace=False)
    truth = brute_force(keys, queries[sample])
    wrong = {name: np.flatnonzero(~truth[a[sample], np.arange(len(sample))]) for name, a in answers.items()}
    benchmark.extra_info.update({
        "keys": n_keys, "queries": n_queries, "threads": torch.get_num_threads(), "seconds": medians,
        "speedup_bfloat16_vs_blocked_float32": medians["blocked_float32"] / medians["nearest_keys_bfloat16"],
        "answers_differing_from_exact": {name: int((a != exact).sum()) for name, a in answers.items()},
        "sample_not_exact_by_brute_force": {name: len(w) for name, w in wrong.items()}})
    for name in ("nearest_keys_bfloat16", "nearest_keys_float32"):
        assert len(wrong[name]) == 0, f"{name}: not the exact answer for queries {sample[wrong[name]]}"
    np.testing.assert_array_equal(answers["nearest_keys_bfloat16"], exact)


def test_alignment_search(benchmark):
    """The alignment baseline's exact search (``benchbarcode.alignment``): open-world keys (train)
    and queries (test_unseen) of ``sim``, one worker process (the benchmark's timing) and two;
    ``extra_info``: seconds, seconds per distinct query; both must give the same answer."""
    from benchbarcode.alignment import nearest_by_alignment
    from benchbarcode.data import load_barcodes

    ds = load_barcodes("sim:3000" if SMOKE else "sim")
    keys, queries = ds.split("train")["sequence"].tolist(), ds.split("test_unseen")["sequence"].tolist()
    if SMOKE:
        queries = queries[:20]
    answers = {1: benchmark.pedantic(nearest_by_alignment, args=(keys, queries), kwargs={"workers": 1},
                                     rounds=1, iterations=1)[0]}
    seconds = {1: benchmark.stats.stats.median}
    started = time.perf_counter()
    answers[2] = nearest_by_alignment(keys, queries, workers=2)[0]
    seconds[2] = time.perf_counter() - started
    np.testing.assert_array_equal(answers[1], answers[2])
    benchmark.extra_info.update({"keys": len(keys), "distinct_keys": len(set(keys)), "queries": len(queries),
                                 "distinct_queries": len(set(queries)), "seconds_by_workers": seconds,
                                 "s_per_distinct_query_1_worker": seconds[1] / len(set(queries))})
