"""Baselines every learned encoder must beat: a k-mer count profile and random initialisation."""

from __future__ import annotations

import numpy as np
import torch

from benchbarcode.errors import UserError
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import build_model
from benchbarcode.registry import Encoder, EncoderMeta, get_encoder, register_encoder
from benchbarcode.tokenizers import UNK_ID, KmerTokenizer


@register_encoder("kmer", family="baseline", objective="none",
                  parameters=lambda: 0,
                  description="k-mer count profile (overlapping k-mers, k=6 default), L2-normalised; "
                              "no training")
class KmerProfileEncoder(Encoder):
    def __init__(self, k: int = 6, max_length: int = 660):
        if not 1 <= int(k) <= 8:
            raise UserError(f"kmer encoder: k must be 1..8, not {k}")
        self.k = int(k)
        self.tokenizer = KmerTokenizer(self.k, stride=1, max_len=max_length)
        dim = 4 ** self.k
        self.meta = EncoderMeta(
            name="kmer", family="baseline", objective="none",
            tokenizer=f"k-mer (k={self.k}, stride=1)", k=self.k, layers=None, heads=None,
            hidden_size=None, parameters=0, embedding_dim=dim, max_length=max_length,
            pooling="count profile, L2-normalised", checkpoint={"k": self.k},
            budget={"steps": 0, "flops": 0.0})

    def embed(self, sequences: list[str], batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        dim = self.meta.embedding_dim
        out = np.zeros((len(sequences), dim), dtype=np.float32)
        for start in range(0, len(sequences), batch_size):
            ids, _ = self.tokenizer(list(sequences[start:start + batch_size]))
            rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
            flat = ids.ravel()
            keep = flat > UNK_ID
            counts = np.bincount(rows[keep] * dim + (flat[keep] - 2), minlength=ids.shape[0] * dim)
            block = counts.reshape(ids.shape[0], dim).astype(np.float32)
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            out[start:start + ids.shape[0]] = block / np.maximum(norms, 1e-12)
        return out


def _random_parameters() -> int:
    torch.manual_seed(0)
    return build_model("mae", get_preset("mae", "tiny")).encoder_parameters()


@register_encoder("random", family="baseline", objective="random-init",
                  parameters=_random_parameters,
                  description="the architecture of an in-house encoder (--like mae by default), "
                              "randomly initialised: the control every learned encoder must beat")
def random_init_encoder(like: str = "mae", preset: str = "tiny", seed: int = 0, device: str = "cpu",
                        pooling: str | None = None) -> Encoder:
    from benchbarcode.encoders.inhouse import TransformerEncoder

    entry = get_encoder(like)
    if not entry.pretrainable:
        raise UserError(f"random --like {like!r}: expected an in-house encoder (mae, mlm, gpt)")
    objective = entry.objective
    p = get_preset(objective, preset)
    torch.manual_seed(seed)
    model = build_model(objective, p).encoder
    tokenizer = KmerTokenizer(p.k, max_len=p.max_len)
    c = model.config
    layers = getattr(c, "num_hidden_layers", None) or c.n_layer
    heads = getattr(c, "num_attention_heads", None) or c.n_head
    hidden = getattr(c, "hidden_size", None) or c.n_embd
    meta = EncoderMeta(
        name="random", family="baseline", objective="random-init",
        tokenizer=f"k-mer (k={p.k}, stride={p.k})", k=p.k, layers=layers, heads=heads,
        hidden_size=hidden, parameters=sum(q.numel() for q in model.parameters()),
        embedding_dim=hidden, max_length=p.max_len, pooling=pooling or p.pooling,
        checkpoint={"like": like, "preset": preset, "seed": seed}, budget={"steps": 0, "flops": 0.0})
    return TransformerEncoder(model, tokenizer, meta, device)


