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


def unit_rows(x: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """float32 rows of ``x`` (minus ``offset``) scaled to unit L2 norm; a zero row stays zero."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if offset is not None:
        x = x - torch.as_tensor(np.asarray(offset, dtype=np.float32))
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return (x / torch.where(norms > 0, norms, torch.ones_like(norms))).numpy()


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

    Rows are compared bitwise only among those sharing a fingerprint: a random linear hash of
    their bits in wrapping 64-bit integer arithmetic, so equal rows always share it."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    words = (np.pad(bits, ((0, 0), (0, 1))) if bits.shape[1] % 2 else bits).view(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**63, size=words.shape[1], dtype=np.uint64)
    fingerprint = np.concatenate([(words[i:i + chunk] * weights).sum(axis=1, dtype=np.uint64)
                                  for i in range(0, len(words), chunk)] or [np.zeros(0, np.uint64)])
    order = np.argsort(fingerprint, kind="stable")
    same = np.flatnonzero(fingerprint[order][1:] == fingerprint[order][:-1])
    shared = np.unique(np.concatenate([order[same], order[same + 1]]))
    keep = np.ones(len(bits), dtype=bool)
    if len(shared):
        rows = bits[shared].view(np.dtype((np.void, 4 * bits.shape[1]))).ravel()
        keep[shared] = False
        keep[shared[np.unique(rows, return_index=True)[1]]] = True
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
    k_unit = unit_rows(keys, offset)
    q_unit = unit_rows(queries, offset)
    answer = np.zeros(len(q_unit), dtype=np.int64)
    if len(k_unit) == 0 or len(q_unit) == 0:
        return answer
    kept = first_of_duplicates(k_unit)
    k_unit = k_unit[kept]
    residual = k_unit - k_unit.mean(axis=0, dtype=np.float64).astype(np.float32)
    radius = float(torch.linalg.vector_norm(torch.from_numpy(residual), dim=1).max()) * (1 + 1e-5)
    qi, ki = _candidates(torch.from_numpy(q_unit).to(dev), torch.from_numpy(residual), dtype, radius,
                         query_chunk or QUERY_CHUNK, key_chunk or KEY_CHUNK, progress)
    # float32 products of the candidates (error <= D * 2**-24 * radius, plus 2**-23 from forming the
    # residuals), then float64 for those within twice that of their query's best
    q32, r32 = torch.from_numpy(q_unit), torch.from_numpy(residual)
    bounds = torch.searchsorted(qi, torch.arange(len(q_unit) + 1)).tolist()
    approx = torch.empty(len(qi), dtype=torch.float64)
    for j in range(len(q_unit)):  # one matrix-vector product per query: its candidates stay in cache
        if bounds[j + 1] > bounds[j]:
            approx[bounds[j]:bounds[j + 1]] = r32[ki[bounds[j]:bounds[j + 1]]] @ q32[j]
    best = torch.full((len(q_unit),), -torch.inf, dtype=torch.float64).scatter_reduce(0, qi, approx, "amax")
    margin = 2.0 * (k_unit.shape[1] * 2.0 ** -24 * radius * 1.01 + 2.0 ** -23)
    keep = (approx >= best[qi] - margin).numpy()
    qi, ki = qi.numpy()[keep], ki.numpy()[keep]
    exact = np.einsum("ij,ij->i", q_unit[qi].astype(np.float64), k_unit[ki].astype(np.float64))
    order = np.lexsort((ki, -exact, qi))  # per query: highest similarity, then lowest index
    first = np.ones(len(order), dtype=bool)
    first[1:] = qi[order][1:] != qi[order][:-1]
    winners = order[first]
    answer[qi[winners]] = kept[ki[winners]]
    return answer


def _candidates(queries: torch.Tensor, residual: torch.Tensor, dtype: str, radius: float,
                query_chunk: int, key_chunk: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(query, key)`` index pairs (CPU int64) holding every query's exact best key: those within
    ``2 * delta`` of the query's best product in ``dtype`` (module docstring, step 2)."""
    dev = queries.device
    u = _ROUNDOFF[dtype]
    margin = 2.0 * ((3.0 * u + residual.shape[1] * 2.0 ** -23) * radius + 1e-6)
    q_all = queries.to(getattr(torch, dtype))
    # a zero query has no candidates (the answer stays key 0): its threshold is +inf
    dead = torch.where(torch.linalg.vector_norm(queries, dim=1) > 0, 0.0, torch.inf).to(dev)
    best = torch.full((len(queries),), -torch.inf, device=dev)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for k0 in tqdm(range(0, len(residual), key_chunk), desc="1-NN", disable=not progress):
        block = residual[k0:k0 + key_chunk].to(dev, getattr(torch, dtype))
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
    qi, ki, approx = (torch.cat(p) for p in zip(*pairs))
    still = approx >= best[qi] - margin  # drop those a later block overtook
    qi, ki = qi[still].cpu(), ki[still].cpu()
    order = torch.argsort(qi, stable=True)  # grouped by query
    return qi[order], ki[order]


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
