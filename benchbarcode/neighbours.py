"""Nearest neighbours by cosine similarity, exact, in bounded memory (the 1-NN tasks' search).

A module of its own so that the task modules import torch only when they evaluate: listing
tasks, ``--help`` and argument errors never load it.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm


def _unit_rows(x: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    """Rows of ``x`` (minus ``offset``) scaled to unit L2 norm; a zero row stays zero (norm taken as 1)."""
    if offset is not None:
        x = x - offset
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


def nearest_keys(keys: np.ndarray, queries: np.ndarray, *, offset: np.ndarray | None = None,
                 device: str = "cpu", query_chunk: int = 1024, key_chunk: int = 32768,
                 progress: bool = False) -> np.ndarray:
    """Index of the nearest key by cosine similarity for each query (int64 ``[n_queries]``).

    Keys and queries (minus ``offset`` when given) are L2-normalised; a zero vector keeps norm
    1, so its similarity to everything is 0. Similarities are float32 matrix products on
    ``device`` over ``[query_chunk, key_chunk]`` blocks, keeping a running best per query, so
    no ``[n_queries, n_keys]`` matrix ever exists. Ties go to the lowest key index.
    """
    dev = torch.device(device)
    off = None if offset is None else torch.as_tensor(offset, dtype=torch.float32, device=dev)
    q = _unit_rows(torch.as_tensor(queries, dtype=torch.float32).to(dev), off)
    best = torch.full((q.shape[0],), -torch.inf, device=dev)
    arg = torch.zeros(q.shape[0], dtype=torch.long, device=dev)
    starts = range(0, keys.shape[0], key_chunk)
    for k0 in tqdm(starts, desc="1-NN", disable=not progress):
        block = _unit_rows(torch.as_tensor(keys[k0:k0 + key_chunk], dtype=torch.float32).to(dev), off)
        for q0 in range(0, q.shape[0], query_chunk):
            sims = q[q0:q0 + query_chunk] @ block.T
            val, idx = sims.max(dim=1)  # first maximum within the block
            better = val > best[q0:q0 + query_chunk]  # strict: earlier blocks win ties
            best[q0:q0 + query_chunk] = torch.where(better, val, best[q0:q0 + query_chunk])
            arg[q0:q0 + query_chunk] = torch.where(better, idx + k0, arg[q0:q0 + query_chunk])
    return arg.cpu().numpy()
