"""Random token masking shared by the masked pretraining objectives.

``sample_mask`` chooses which k-mer tokens an objective hides:

* **maskable** positions are those with ``attention_mask == 1`` *and*
  ``input_ids != UNK_ID``: padding and ``[UNK]`` (k-mers holding an ``N`` or
  another non-ACGT character) are never selected, because they have no k-mer
  label to predict;
* in row ``b`` with ``n_b`` maskable positions exactly
  ``m_b = round(ratio * n_b)`` of them are selected (``torch.round``, i.e.
  half to even), raised to ``1`` when ``n_b >= 1`` and ``ratio > 0`` and
  capped at ``n_b``; every ``m_b``-subset is equally likely;
* it is vectorised: one uniform score per position (non-maskable positions
  get a score above every maskable one), the positions are ranked by score
  with an argsort, and the ``m_b`` lowest ranks are taken;
* it is deterministic given a seeded ``torch.Generator`` (the scores are drawn
  on the generator's device, then moved to the device of ``input_ids``).
"""

from __future__ import annotations

import numpy as np
import torch

from benchbarcode.tokenizers import UNK_ID

__all__ = ["maskable_positions", "masked_counts", "max_masked", "max_unmasked", "sample_mask"]


def _as_tensor(x, device=None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    return torch.as_tensor(x, device=device)


def maskable_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Bool ``[B, T]``: attention 1 and not ``[UNK]`` (the positions that have a k-mer label)."""
    input_ids = _as_tensor(input_ids)
    attention_mask = _as_tensor(attention_mask, device=input_ids.device)
    return attention_mask.bool() & (input_ids != UNK_ID)


def masked_counts(n: torch.Tensor, ratio: float) -> torch.Tensor:
    """How many of ``n`` maskable positions :func:`sample_mask` selects (elementwise):
    ``round(ratio * n)`` (half to even), at least 1 when ``n >= 1`` and ``ratio > 0``, at most ``n``."""
    n = n.to(torch.long)
    m = torch.round(n.to(torch.float64) * float(ratio)).to(torch.long)
    if ratio > 0:
        m = torch.maximum(m, (n >= 1).to(torch.long))
    return torch.minimum(m, n)


def _masked_count(n: int, ratio: float) -> int:
    """:func:`masked_counts` for one row, in Python (``round`` is half to even, as ``torch.round``)."""
    m = max(round(n * float(ratio)), 1 if n >= 1 and ratio > 0 else 0)
    return min(m, n)


def max_masked(n_tokens: int, ratio: float) -> int:
    """The most positions :func:`sample_mask` selects in a row of ``n_tokens`` tokens: the fixed
    number of loss slots per row of a masked objective (a static shape, known before any batch)."""
    return max(_masked_count(n, ratio) for n in range(n_tokens + 1))


def max_unmasked(n_tokens: int, ratio: float) -> int:
    """The most maskable positions :func:`sample_mask` leaves unselected in a row of ``n_tokens``
    tokens (``n - masked_counts(n)`` is not monotone in ``n``, hence the maximum over every ``n``)."""
    return max(n - _masked_count(n, ratio) for n in range(n_tokens + 1))


def sample_mask(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
    scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """Select ``round(ratio * n_maskable)`` maskable positions per row, uniformly at random.

    Parameters
    ----------
    input_ids, attention_mask:
        ``[B, T]`` integer tensors (numpy arrays are accepted too).
    ratio:
        Fraction of the maskable positions to select, in ``[0, 1]``.
    generator:
        Optional ``torch.Generator``; with a seeded generator the result is
        reproducible.
    scores:
        Optional ``[B, T]`` uniform ``[0, 1)`` scores to rank by instead of
        drawing them: the rows of a larger batch's draw, so that a batch
        split across processes is masked as the whole batch would be.

    Returns
    -------
    torch.Tensor
        Bool ``[B, T]`` on the device of ``input_ids``; ``True`` = selected.
        Never ``True`` at padding (attention 0) or ``[UNK]`` positions.
    """
    if not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    input_ids = _as_tensor(input_ids)
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    maskable = maskable_positions(input_ids, attention_mask)
    B, T = maskable.shape
    device = input_ids.device

    m = masked_counts(maskable.sum(dim=1), ratio)  # [B]

    if scores is None:
        gen_device = generator.device if generator is not None else device
        scores = torch.rand((B, T), generator=generator, device=gen_device)
    scores = scores.to(device)
    # Non-maskable positions sort after every maskable one (rand is in [0, 1)).
    scores = scores.masked_fill(~maskable, 2.0)
    order = scores.argsort(dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(T, device=device).expand(B, T))
    return ranks < m[:, None]
