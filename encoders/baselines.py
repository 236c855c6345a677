"""Baselines every learned encoder must beat: a k-mer count profile and random initialisation."""

from __future__ import annotations

import numpy as np

from benchbarcode.errors import UserError
from benchbarcode.registry import Encoder, list_encoders, register_encoder
from benchbarcode.tokenizers import UNK_ID, KmerTokenizer


@register_encoder("kmer", family="baseline", objective="none", parameters=lambda: 0,
                  description="k-mer count profile (overlapping k-mers, k=6 default), L2-normalised; "
                              "no training")
class KmerProfileEncoder(Encoder):
    def __init__(self, k: int = 6, max_length: int = 660):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 8:
            raise UserError(f"kmer encoder: k must be an integer 1..8, not {k!r}")
        self.k = k
        self.tokenizer = KmerTokenizer(self.k, stride=1, max_len=max_length)

    def describe(self) -> dict:
        return {"tokenizer": f"k-mer (k={self.k}, stride=1)", "k": self.k, "parameters": 0,
                "embedding_dim": 4 ** self.k, "max_length": self.tokenizer.max_len,
                "pooling": "count profile, L2-normalised", "checkpoint": {"k": self.k},
                "budget": {"steps": 0, "flops": 0.0}}

    def embed(self, sequences: list[str], batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        dim = 4 ** self.k
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


@register_encoder("align", family="baseline", objective="none", parameters=lambda: 0, similarity="alignment",
                  description="not an embedding: 1-NN by pairwise alignment of the barcodes themselves "
                              "(exact edit-distance search, edlib), the BLAST-like bar for the 1-NN tasks")
class AlignmentBaseline(Encoder):
    """Rows are the barcodes' nucleotide codes (:func:`benchbarcode.alignment.sequence_codes`),
    which only the alignment similarity reads; tasks that need an embedding skip it."""

    def __init__(self, max_length: int = 660):
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise UserError(f"align encoder: max_length must be a positive integer, not {max_length!r}")
        self.max_length = max_length

    def describe(self) -> dict:
        from importlib.metadata import version

        return {"tokenizer": "none (nucleotides)", "parameters": 0, "embedding_dim": self.max_length,
                "max_length": self.max_length, "pooling": "none: nucleotide codes, compared by alignment",
                "checkpoint": {"aligner": f"edlib {version('edlib')}"}, "budget": {"steps": 0, "flops": 0.0}}

    def embed(self, sequences: list[str], batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        from benchbarcode.alignment import sequence_codes

        return sequence_codes(list(sequences), self.max_length)


def _random_parameters() -> int:
    return random_init_encoder().describe()["parameters"]


@register_encoder("random", family="baseline", objective="random-init", seeded=True,
                  parameters=_random_parameters,
                  description="the architecture of an in-house encoder (--encoder-option like=mae by "
                              "default), randomly initialised: the control every learned encoder must beat")
def random_init_encoder(like: str = "mae", preset: str = "tiny", seed: int = 0, device: str = "cpu",
                        pooling: str | None = None, dtype: str = "float32", *, k: int | None = None, max_len: int | None = None,
                        layers: int | None = None, heads: int | None = None, hidden: int | None = None,
                        intermediate: int | None = None) -> Encoder:
    """The encoder of ``like``'s ``preset``, initialised from ``seed`` exactly as pretraining
    initialises it (:func:`benchbarcode.encoders.inhouse.initialised_encoder`).

    ``k``, ``max_len``, ``layers``, ``heads``, ``hidden`` and ``intermediate``, when given,
    override the preset's architecture (``Preset.with_overrides``), so that a run pretrained with
    such overrides has its control; they are then part of the checkpoint record.
    """
    inhouse = {e.name: e for e in list_encoders(plugins=False) if e.meta.pretrainable}
    if like not in inhouse:
        raise UserError(f"random: like={like!r} is not an in-house encoder (expected one of {', '.join(inhouse)})")
    sizes = {"k": k, "max_len": max_len, "layers": layers, "heads": heads, "hidden": hidden,
             "intermediate": intermediate}
    sizes = {name: value for name, value in sizes.items() if value is not None}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"random {name}={value!r}: expected a positive integer")
    # initialised_encoder imports torch: after the cheap checks
    from benchbarcode.encoders.inhouse import initialised_encoder

    from benchbarcode.models.presets import get_preset

    objective = inhouse[like].meta.objective
    p = get_preset(objective, preset).with_overrides(**sizes)
    try:
        return initialised_encoder(objective, p, seed, device, pooling, dtype,
                                   checkpoint={"like": like, "preset": preset, "seed": seed, **sizes})
    except ValueError as exc:  # e.g. hidden not a multiple of heads
        raise UserError(f"random like={like!r} {sizes}: {exc}") from None
