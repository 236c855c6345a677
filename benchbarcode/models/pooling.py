"""Pooling of encoder hidden states into one vector per sequence.

* ``masked_mean(hidden, attention_mask)``: mean over the positions with
  attention 1 (padding contributes nothing; an all-padding row gives zeros).
* ``last_token(hidden, attention_mask)``: the hidden state at the last
  position with attention 1 (row 0's position 0 for an all-padding row); the
  natural summary of a causal (GPT-2) encoder.
* ``mean-layers``: the masked mean of every hidden state (embedding output and each layer),
  averaged over layers; ``mean-first``: the masked mean of the embedding output alone.
* ``encode(encoder, input_ids, attention_mask, pooling="mean")``: runs a
  pretrained encoder (``BertModel`` or ``GPT2Model``, e.g. reopened with
  ``transformers.AutoModel.from_pretrained``) on full, unmasked sequences with
  the dense inputs and default position ids ``0..T-1``, then pools.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["masked_mean", "last_token", "encode", "POOLINGS"]

POOLINGS = ("mean", "last", "mean-layers", "mean-first")


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]``, ``[B, T]`` -> ``[B, D]``: mean over positions with attention 1."""
    m = attention_mask.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)
    total = (hidden * m).sum(dim=1)
    return total / m.sum(dim=1).clamp(min=1.0)


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]``, ``[B, T]`` -> ``[B, D]``: hidden state at the last position with attention 1."""
    B, T, _ = hidden.shape
    m = attention_mask.to(hidden.device).bool()
    pos = torch.arange(1, T + 1, device=hidden.device).expand(B, T)
    idx = (pos * m).argmax(dim=1)  # index of the largest attended position; 0 if none
    return hidden[torch.arange(B, device=hidden.device), idx]


def encode(
    encoder: torch.nn.Module,
    input_ids,
    attention_mask,
    pooling: str = "mean",
    grad: bool = False,
) -> torch.Tensor:
    """Embed sequences with ``encoder`` and pool to ``[B, D]``.

    ``input_ids``/``attention_mask``: ``[B, T]`` tensors or numpy arrays (moved
    to the encoder's device). The encoder's train/eval mode is left as is (call
    ``encoder.eval()`` for deterministic features). ``grad=False`` (default)
    runs under ``torch.no_grad()``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    device = next(encoder.parameters()).device
    if isinstance(input_ids, np.ndarray):
        input_ids = torch.from_numpy(input_ids)
    if isinstance(attention_mask, np.ndarray):
        attention_mask = torch.from_numpy(attention_mask)
    input_ids = torch.as_tensor(input_ids, device=device).long()
    attention_mask = torch.as_tensor(attention_mask, device=device).long()
    kwargs = {}
    if getattr(encoder.config, "model_type", None) == "gpt2":
        kwargs["use_cache"] = False
    with torch.set_grad_enabled(grad):
        if pooling in ("mean-layers", "mean-first"):
            states = encoder(input_ids=input_ids, attention_mask=attention_mask,
                             output_hidden_states=True, **kwargs).hidden_states
            if pooling == "mean-first":  # the (contextless) embedding layer alone
                return masked_mean(states[0], attention_mask)
            return torch.stack([masked_mean(h, attention_mask) for h in states]).mean(0)
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        if pooling == "mean":
            return masked_mean(hidden, attention_mask)
        return last_token(hidden, attention_mask)
