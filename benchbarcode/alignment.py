"""Exact nearest neighbours by pairwise alignment (the alignment baseline's search).

**Score.** For a query and a key, the shorter barcode is aligned as an infix of the longer one
(free end gaps on the longer; edlib's ``HW`` mode, unit costs: Myers' bit-vector algorithm);
with ``e`` the edit distance and ``n`` the shorter length, the score is ``n - 2e`` (matches minus
edits, as a BLAST-like score favours long, identical alignments) and the identity ``1 - e / n``.
``N`` and other non-ACGT characters match only themselves. The answer for a query is the key of
highest score, the lowest key index on ties; identical key barcodes are aligned once.

**Exact and fast.** Every key is scored or provably skipped. Keys are visited in decreasing
order of shared 8-mers with the query (a sparse count product), so a good key is found first;
edlib then stops as soon as a key cannot beat the best score (its ``k`` limit), and the q-gram
lemma skips a key without aligning it: ``e`` edits leave at least ``m - q*e`` of the shorter
barcode's ``m`` valid q-grams unchanged in the longer, and the shared count is at most the dot
product of the two q-gram count vectors, so ``e >= (m - dot) / q``.
Queries are spread over worker processes; the answer does not depend on their number.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

#: nucleotide codes of the sequence representation (float32 rows): A C G T, anything else, padding
CODE_CHARS = "ACGTN"
PAD = -1.0
Q = 8  # q-gram length of the candidate ordering and the lemma's bound


def sequence_codes(sequences: list[str], width: int) -> np.ndarray:
    """float32 ``[N, width]`` rows of codes (A=0, C=1, G=2, T=3, other=4, -1 after the end);
    a barcode longer than ``width`` is cut at ``width``."""
    table = np.full(256, 4, dtype=np.int8)
    for code, char in enumerate(CODE_CHARS[:4]):
        table[ord(char)] = code
    out = np.full((len(sequences), width), PAD, dtype=np.float32)
    for row, seq in enumerate(sequences):
        raw = np.frombuffer(seq[:width].encode("ascii", "replace"), dtype=np.uint8)
        out[row, :len(raw)] = table[raw]
    return out


def codes_to_sequences(codes: np.ndarray) -> list[str]:
    """The barcodes of :func:`sequence_codes` rows (non-ACGT characters come back as ``N``)."""
    chars = np.frombuffer(CODE_CHARS.encode(), dtype=np.uint8)
    out = []
    for row in np.asarray(codes):
        valid = row[row >= 0].astype(np.int64)
        if len(valid) and (valid > 4).any():
            raise ValueError("not a sequence-code row (codes must be -1 or 0..4)")
        out.append(chars[valid].tobytes().decode())
    return out


def qgram_counts(sequences: list[str], chunk: int = 8192):
    """Sparse ``[N, 4**Q]`` counts of each barcode's valid (ACGT-only) q-grams (built in chunks of
    barcodes, so the dense token ids of a large key set never exist at once)."""
    import scipy.sparse as sp

    from benchbarcode.tokenizers import UNK_ID, KmerTokenizer

    tokenizer = KmerTokenizer(Q, stride=1, max_len=max([Q] + [len(s) for s in sequences]))
    blocks = []
    for start in range(0, len(sequences), chunk):
        ids, _ = tokenizer(sequences[start:start + chunk])
        rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
        flat = ids.ravel()
        keep = flat > UNK_ID
        block = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], flat[keep] - 2)),
                              shape=(ids.shape[0], 4 ** Q))
        block.sum_duplicates()
        blocks.append(block)
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, 4 ** Q), dtype=np.float32)


_STATE: dict = {}  # the keys, shared with worker processes (fork) or set by _init_worker


def _init_worker(keys: list[str], key_counts, key_valid: np.ndarray) -> None:
    _STATE.update(keys=keys, counts=key_counts, valid=key_valid,
                  lengths=np.array([len(k) for k in keys], dtype=np.int64))


def _search(queries: list[str]) -> list[tuple[int, float]]:
    """``(key index, identity)`` of the best key for each query (indices into the unique keys)."""
    import edlib

    keys, lengths, valid = _STATE["keys"], _STATE["lengths"], _STATE["valid"]
    q_counts = qgram_counts(queries)
    q_valid = np.asarray(q_counts.sum(axis=1)).ravel()
    dots = (q_counts @ _STATE["counts"].T).toarray()
    out = []
    for qi, query in enumerate(queries):
        shared = dots[qi]
        order = np.argsort(-shared, kind="stable")
        shorter = np.minimum(lengths, len(query))
        m = np.where(lengths < len(query), valid, q_valid[qi])
        lower = np.ceil((m - shared) / Q - 1e-9)  # edits at least (q-gram lemma)
        best, arg, best_e = -(1 << 62), -1, 0
        for j in order:
            # most edits that still reach the best score (never more than the shorter length)
            cut = min((shorter[j] - best) // 2, shorter[j])
            if cut < 0 or lower[j] > cut:
                continue
            key = keys[j]
            a, b = (query, key) if len(query) <= len(key) else (key, query)
            e = edlib.align(a, b, mode="HW", task="distance", k=int(cut))["editDistance"]
            if e < 0:
                continue
            score = int(shorter[j]) - 2 * e
            if score > best or (score == best and j < arg):
                best, arg, best_e = score, int(j), e
        out.append((arg, 1.0 - best_e / max(1, int(shorter[arg]))))
    return out


def nearest_by_alignment(keys: list[str], queries: list[str], *, workers: int | None = None,
                         chunk: int = 64, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of the best key by alignment score and that alignment's identity
    (``int64 [n_queries]``, ``float64 [n_queries]``); see the module docstring."""
    if not keys or not queries:
        raise ValueError("alignment search needs at least one key and one query")
    first_index: dict[str, int] = {}  # distinct keys, in order of first appearance
    for i, k in enumerate(keys):
        first_index.setdefault(k, i)
    unique_keys = list(first_index)
    unique_queries = list(dict.fromkeys(queries))
    counts = qgram_counts(unique_keys)
    valid = np.asarray(counts.sum(axis=1)).ravel()
    parts = [unique_queries[i:i + chunk] for i in range(0, len(unique_queries), chunk)]
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(workers or available, len(parts)))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(unique_queries), desc="align", unit="query", disable=not progress)
    found: list[tuple[int, float]] = []
    if workers == 1:
        _init_worker(unique_keys, counts, valid)
        for part in parts:
            found += _search(part)
            bar.update(len(part))
    else:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(unique_keys, counts, valid)) as pool:
            for part, result in zip(parts, pool.map(_search, parts)):
                found += result
                bar.update(len(part))
    bar.close()
    by_query = dict(zip(unique_queries, found))
    nearest = np.array([first_index[unique_keys[by_query[q][0]]] for q in queries], dtype=np.int64)
    identity = np.array([by_query[q][1] for q in queries], dtype=np.float64)
    return nearest, identity
