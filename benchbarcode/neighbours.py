"""Exact nearest neighbours by cosine similarity, in bounded memory (the 1-NN tasks' search).

The answer for a query is the key with the largest cosine similarity, computed in float64 from
the float32 unit vectors, the lowest key index among equal similarities. Every search finds it
the same way, whatever its speed setting:

1. **Candidates.** A blocked matrix product in ``precision`` (bfloat16 where the hardware has it,
   else float32) over ``[query_chunk, key_chunk]`` blocks; no ``[n_queries, n_keys]`` matrix
   exists. The product is taken against the keys' *residuals* ``k - c`` (``c`` the keys' mean unit
   vector): ``q.k = q.c + q.(k - c)`` and ``q.c`` is the same for every key of a query, so the
   ranking is unchanged, while the rounding error shrinks with the residuals' norm (encoders
   whose embeddings share a large offset have tiny residuals).
2. **Bound.** With unit roundoff ``u`` of the candidate dtype (bfloat16 ``2**-8``), inputs rounded
   to it and float32 accumulation, each approximate product is within
   ``delta = (3u + D * 2**-23) * max|k - c| + 1e-6`` of the exact one (two input roundings, one
   output rounding, ``D``-term accumulation; ``|q| = 1``). The exact best key is therefore among
   the keys whose approximate product is within ``2 * delta`` of the best approximate product.
3. **Re-ranking.** Those candidates are scored in float32 (one matrix-vector product per query,
   within ``D * 2**-24 * max|k - c| + 2**-23`` of exact), those within twice that of their
   query's best in float64, and the best one (lowest index on ties) is the answer. Identical key
   vectors are searched once (the first, i.e. lowest, index).

Memory: bitwise copies among the raw keys are dropped first, the distinct keys are normalised into
one float32 copy (:data:`ROW_CHUNK` rows at a time) and the residuals exist one ``key_chunk``
block at a time, so the search holds the keys (possibly memory-mapped) plus one float32 copy of
the distinct ones: at BIOSCAN-5M's train split with the 4,096-dimensional k-mer profile, 4.7 GB
plus at most 4.7 GB, where normalising and centring whole matrices had needed four such copies.
Candidates are held within :data:`PAIR_BUDGET` pairs: embeddings packed closer together than
bfloat16 resolves (an undertrained encoder's, where every key is a candidate of every query) make
the bfloat16 pass give up after its first block, and float32 candidates are used instead; if even
those exceed the budget (near-copies), a few queries are searched at a time. Each path returns the
same exact answer (``tests/test_tasks.py``). Without the budget, an undertrained encoder's
embeddings of the sim-large twin's train split made bfloat16 keep almost every distinct key as a
candidate of every query, and the search ran out of memory; the budget bounds it (the figures are
in ``tests/benchmarks/test_search_scale.py``).

``tests/test_tasks.py`` checks the answer against a float64 brute force on embeddings built to
break it (a shared offset, keys 1e-6 apart, copies across blocks); without the margin bfloat16
alone picks another key for most queries there. ``tests/benchmarks/test_search_scale.py`` times
it at 300k keys x 8k queries beside the float32 running-maximum search it replaced (which
resolves near-ties by float32 rounding) and faiss.

A zero vector keeps norm 1 (similarity 0 to everything); a zero query gets key 0.
A module of its own so that the task modules import torch only when they evaluate.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from tqdm.auto import tqdm

PRECISIONS = ("auto", "bfloat16", "float32")
#: block sizes of the candidate pass: a [2048, 2048] block of similarities stays in cache for the
#: max / threshold / nonzero passes that follow the product (fastest of those measured on 2 cores)
QUERY_CHUNK = KEY_CHUNK = 2048
_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float32": 2.0 ** -24}


#: candidate pairs held at once while searching (about 20 bytes each): see :func:`nearest_keys`
PAIR_BUDGET = 1 << 23
ROW_CHUNK = 4096  # rows normalised at a time: no temporary of the whole key matrix's size


def unit_rows(x: np.ndarray, offset: np.ndarray | None, rows: np.ndarray | None = None) -> np.ndarray:
    """float32 rows of ``x`` (only ``rows``, when given; minus ``offset``) scaled to unit L2 norm;
    a zero row stays zero. Written into one new array, :data:`ROW_CHUNK` rows at a time."""
    x = np.asarray(x)
    rows = np.arange(len(x)) if rows is None else rows
    out = np.empty((len(rows), x.shape[1]), dtype=np.float32)
    shift = None if offset is None else torch.as_tensor(np.asarray(offset, dtype=np.float32))
    for i in range(0, len(rows), ROW_CHUNK):
        block = torch.as_tensor(np.asarray(x[rows[i:i + ROW_CHUNK]], dtype=np.float32))
        if shift is not None:
            block = block - shift
        norms = torch.linalg.vector_norm(block, dim=1, keepdim=True)
        out[i:i + ROW_CHUNK] = (block / torch.where(norms > 0, norms, torch.ones_like(norms))).numpy()
    return out


@functools.cache
def _cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bfloat16 on CUDA and on CPUs with bfloat16 hardware, float32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if device.startswith("cuda") or _cpu_has_bf16() else "float32"


def first_of_duplicates(x: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Indices (ascending) of the rows of float32 ``x`` that are not a bitwise copy of an earlier row.

    Rows are grouped by a fingerprint (a random linear hash of their bits in wrapping 64-bit
    integer arithmetic, so equal rows always share it) and each row is compared bitwise with the
    first of its group, ``chunk`` rows at a time: memory stays a few chunks whatever the share of
    copies. A group whose rows are not all equal (two different rows with one fingerprint) is
    resolved exactly on its own."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    words = (np.pad(bits, ((0, 0), (0, 1))) if bits.shape[1] % 2 else bits).view(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**63, size=words.shape[1], dtype=np.uint64)
    fingerprint = np.concatenate([(words[i:i + chunk] * weights).sum(axis=1, dtype=np.uint64)
                                  for i in range(0, len(words), chunk)] or [np.zeros(0, np.uint64)])
    return _first_of_groups(bits, fingerprint, chunk)


def _first_of_groups(bits: np.ndarray, fingerprint: np.ndarray, chunk: int) -> np.ndarray:
    """:func:`first_of_duplicates` given each row's fingerprint (any function of the row)."""
    n = len(bits)
    order = np.argsort(fingerprint, kind="stable")  # within a group: ascending row index
    starts = np.ones(n, dtype=bool)
    starts[1:] = fingerprint[order][1:] != fingerprint[order][:-1]
    group = np.cumsum(starts) - 1  # group number, in sorted order
    first = order[starts][group]  # each row's group's first (lowest) row
    later = np.flatnonzero(~starts)
    rows, heads = order[later], first[later]
    equal = np.ones(len(rows), dtype=bool)
    for i in range(0, len(rows), chunk):
        equal[i:i + chunk] = (bits[rows[i:i + chunk]] == bits[heads[i:i + chunk]]).all(axis=1)
    keep = np.ones(n, dtype=bool)
    keep[rows[equal]] = False
    mixed = np.unique(group[later[~equal]])  # groups holding different rows: resolve exactly
    if len(mixed):
        members = np.sort(order[np.isin(group, mixed)])
        keep[members] = False
        view = bits[members].view(np.dtype((np.void, 4 * bits.shape[1]))).ravel()
        keep[members[np.unique(view, return_index=True)[1]]] = True
    return np.flatnonzero(keep)


def nearest_keys(keys: np.ndarray, queries: np.ndarray, *, offset: np.ndarray | None = None,
                 device: str = "cpu", precision: str = "auto", query_chunk: int | None = None,
                 key_chunk: int | None = None, progress: bool = False) -> np.ndarray:
    """Index of the nearest key by cosine similarity for each query (int64 ``[n_queries]``).

    Keys and queries (minus ``offset`` when given) are L2-normalised in float32; the answer is
    exact (see the module docstring): ``precision`` only decides how fast candidates are found.
    """
    dev = torch.device(device)
    dtype = resolve_precision(precision, str(dev))
    answer = np.zeros(len(queries), dtype=np.int64)
    if len(keys) == 0 or len(queries) == 0:
        return answer
    # a bitwise copy of a raw key is a copy after centring and scaling too: drop copies first, so
    # that only the distinct keys are ever copied (in float32, once)
    keys32 = np.asarray(keys, dtype=np.float32)
    kept = first_of_duplicates(keys32)
    k_unit = torch.from_numpy(unit_rows(keys32, offset, rows=kept))
    q_unit = torch.from_numpy(unit_rows(queries, offset))
    centre = torch.from_numpy(k_unit.numpy().mean(axis=0, dtype=np.float64).astype(np.float32))
    radius = max(float(torch.linalg.vector_norm(k_unit[i:i + ROW_CHUNK] - centre, dim=1).max())
                 for i in range(0, len(k_unit), ROW_CHUNK)) * (1 + 1e-5)
    chunks = (query_chunk or QUERY_CHUNK, key_chunk or KEY_CHUNK)
    q_dev = q_unit.to(dev)

    def search(which: np.ndarray, candidate_dtype: str, cap: int | None) -> np.ndarray:
        """Candidates of the queries ``which``, resolved into ``answer``; returns those over ``cap``."""
        qi, ki, over = _candidates(q_dev[torch.from_numpy(which)], k_unit, centre, candidate_dtype, radius,
                                   *chunks, progress, cap)
        _resolve(answer, which, qi, ki, q_unit, k_unit, centre, kept, radius)
        return which[over]

    # Each query may hold PAIR_BUDGET / n_queries candidates; one with more (its embeddings too close
    # together for bfloat16's resolution) is searched again with float32 candidates, and if even
    # those are too many (near-copies), a few queries at a time with no limit.
    todo = np.arange(len(q_unit))
    for candidate_dtype in dict.fromkeys([dtype, "float32"]):
        todo = search(todo, candidate_dtype, max(1, PAIR_BUDGET // len(todo)))
        if len(todo) == 0:
            return answer
    step = max(1, PAIR_BUDGET // len(k_unit))
    for i in range(0, len(todo), step):
        search(todo[i:i + step], "float32", None)
    return answer


def _resolve(answer: np.ndarray, which: np.ndarray, qi: torch.Tensor, ki: torch.Tensor, q_unit: torch.Tensor,
             k_unit: torch.Tensor, centre: torch.Tensor, kept: np.ndarray, radius: float) -> None:
    """Write the exact best key of each query ``which[j]`` among its candidates ``ki[qi == j]``
    (grouped by query) into ``answer``: float32 products of the candidates (error <= D * 2**-24 *
    radius, plus 2**-23 from forming the residuals), then float64 for those within twice that of
    their query's best, the lowest index among equal similarities. Memory: a few row chunks."""
    rows = max(1, (1 << 22) // k_unit.shape[1])  # float32 / float64 rows gathered at a time
    bounds = torch.searchsorted(qi, torch.arange(len(which) + 1)).tolist()
    approx = torch.empty(len(qi), dtype=torch.float64)
    for j, query in enumerate(which.tolist()):  # matrix-vector products: the candidates stay in cache
        for b in range(bounds[j], bounds[j + 1], rows):
            e = min(b + rows, bounds[j + 1])
            approx[b:e] = (k_unit[ki[b:e]] - centre) @ q_unit[query]
    best = torch.full((len(which),), -torch.inf, dtype=torch.float64).scatter_reduce(0, qi, approx, "amax")
    margin = 2.0 * (k_unit.shape[1] * 2.0 ** -24 * radius * 1.01 + 2.0 ** -23)
    keep = (approx >= best[qi] - margin).numpy()
    qi, ki = qi.numpy()[keep], ki.numpy()[keep]
    exact = np.empty(len(qi))
    for b in range(0, len(qi), rows):
        exact[b:b + rows] = np.einsum("ij,ij->i", q_unit.numpy()[which[qi[b:b + rows]]].astype(np.float64),
                                      k_unit.numpy()[ki[b:b + rows]].astype(np.float64))
    order = np.lexsort((ki, -exact, qi))  # per query: highest similarity, then lowest index
    first = np.ones(len(order), dtype=bool)
    first[1:] = qi[order][1:] != qi[order][:-1]
    winners = order[first]
    answer[which[qi[winners]]] = kept[ki[winners]]


def _candidates(queries: torch.Tensor, keys: torch.Tensor, centre: torch.Tensor, dtype: str, radius: float,
                query_chunk: int, key_chunk: int, progress: bool,
                cap: int | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``(query, key)`` index pairs (CPU int64, grouped by query) holding every query's exact best
    key: those within ``2 * delta`` of the query's best product in ``dtype`` against the residuals
    ``keys - centre``, formed one block of keys at a time (module docstring, step 2).

    With ``cap``: whenever more than :data:`PAIR_BUDGET` pairs are held, those a later block
    overtook are dropped, and a query still holding more than ``cap`` is given up (its pairs
    dropped, no more collected); the third value marks those queries. Once more than half the
    queries are given up, the search stops and gives up all of them (they are searched again in
    float32, at the cost of one candidate block in ``dtype``)."""
    dev = queries.device
    u = _ROUNDOFF[dtype]
    margin = 2.0 * ((3.0 * u + keys.shape[1] * 2.0 ** -23) * radius + 1e-6)
    q_all = queries.to(getattr(torch, dtype))
    # a zero query has no candidates (the answer stays key 0): its threshold is +inf
    dead = torch.where(torch.linalg.vector_norm(queries, dim=1) > 0, 0.0, torch.inf).to(dev)
    best = torch.full((len(queries),), -torch.inf, device=dev)
    over = torch.zeros(len(queries), dtype=torch.bool, device=dev)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    held = 0
    for k0 in tqdm(range(0, len(keys), key_chunk), desc="1-NN", disable=not progress):
        block = (keys[k0:k0 + key_chunk] - centre).to(dev, getattr(torch, dtype))
        for q0 in range(0, len(queries), query_chunk):
            rows = slice(q0, q0 + query_chunk)
            sims = q_all[rows] @ block.T  # in dtype; compared below in float32
            block_best = sims.amax(dim=1).float()
            best[rows] = torch.maximum(best[rows], block_best)
            threshold = best[rows] - margin + dead[rows]
            hit = (block_best >= threshold).nonzero().squeeze(1)  # queries with a candidate here
            if len(hit) == 0:
                continue
            sub = sims[hit] if len(hit) < len(sims) else sims
            qi, ki = (sub >= threshold[hit, None]).nonzero(as_tuple=True)
            pairs.append((hit[qi] + q0, ki + k0, sub[qi, ki].float()))
            held += len(qi)
            if cap is not None and held > PAIR_BUDGET:
                pairs = [_compact(pairs, best, over, margin, cap)]
                held = len(pairs[0][0])
                if over.float().mean() > 0.5:  # this dtype cannot separate these keys: all again
                    over.fill_(True)
                    break
        if cap is not None and over.all():
            break
    qi, ki, _ = _compact(pairs, best, over, margin, cap)
    qi, ki = qi.cpu(), ki.cpu()
    order = torch.argsort(qi, stable=True)  # grouped by query
    return qi[order], ki[order], over.cpu().numpy()


def _compact(pairs: list, best: torch.Tensor, over: torch.Tensor, margin: float,
             cap: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``(query, key, approximate product)`` pairs of :func:`_candidates`' blocks in one
    tensor each, without those a later block overtook (below their query's ``best - margin``) and
    those of queries given up (``over``). With ``cap``, a query holding more than ``cap`` pairs is
    given up first: marked in ``over`` (in place) and its pairs dropped."""
    dev = best.device
    if not pairs:
        none = torch.zeros(0, dtype=torch.long, device=dev)
        return none, none, torch.zeros(0, device=dev)
    qi, ki, approx = (torch.cat(p) for p in zip(*pairs))
    still = (approx >= best[qi] - margin) & ~over[qi]  # drop those a later block overtook
    qi, ki, approx = qi[still], ki[still], approx[still]
    if cap is not None:
        over.logical_or_(torch.bincount(qi, minlength=len(best)) > cap)
        live = ~over[qi]
        qi, ki, approx = qi[live], ki[live], approx[live]
    return qi, ki, approx


# ----------------------------------------------------------------------------- similarity backends
def _cosine_search(keys, queries, *, device="cpu", query_chunk=None, key_chunk=None, progress=False):
    """Raw cosine and, as ``_centred``, cosine after subtracting the keys' mean embedding."""
    centre = np.asarray(keys).mean(axis=0, dtype=np.float64).astype(np.float32)
    found = {suffix: nearest_keys(keys, queries, offset=offset, device=device, query_chunk=query_chunk,
                                  key_chunk=key_chunk, progress=progress)
             for suffix, offset in (("", None), ("_centred", centre))}
    return found, {}, {}


def _alignment_search(keys, queries, *, device="cpu", query_chunk=None, key_chunk=None, progress=False):
    """Rows are nucleotide codes (:func:`benchbarcode.alignment.sequence_codes`)."""
    from importlib.metadata import version

    from benchbarcode.alignment import codes_to_sequences, nearest_by_alignment

    nearest, identity = nearest_by_alignment(codes_to_sequences(keys), codes_to_sequences(queries),
                                             progress=progress)
    protocol = {"distance": "alignment score: the shorter barcode aligned as an infix of the longer "
                            "(unit-cost edit distance e, shorter length n), score n - 2e; exact search",
                "precision": f"integer edit distances (edlib {version('edlib')})"}
    return {"": nearest}, protocol, {"nearest_identity": {
        "median": float(np.median(identity)), "mean": float(identity.mean())}}


#: how a 1-NN task compares rows, by ``EncoderMeta.similarity``: each returns
#: ``({metric suffix: nearest key per query}, protocol entries it decides, extra outcome keys)``
SIMILARITIES = {"cosine": _cosine_search, "alignment": _alignment_search}


def search(similarity: str, keys: np.ndarray, queries: np.ndarray, **options):
    """The 1-NN answers of backend ``similarity`` (see :data:`SIMILARITIES`)."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r} (known: {', '.join(SIMILARITIES)})")
    return SIMILARITIES[similarity](keys, queries, **options)
