"""In-house transformer encoders: MAE-BERT (BarcodeMAE), MLM-BERT (BarcodeBERT), causal GPT.

Each is made by ``benchbarcode pretrain --encoder NAME`` and loaded from the directory it wrote
(``config.json`` + ``model.safetensors`` + ``benchbarcode.json``). :class:`TransformerEncoder`
embeds with any k-mer-tokenised transformers model; the ``random`` baseline reuses it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from benchbarcode.errors import UserError
from benchbarcode.models import encode
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import META_FILE, build_model, limit_heap_fragmentation
from benchbarcode.registry import Encoder, EncoderMeta, register_encoder
from benchbarcode.tokenizers import KmerTokenizer


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _arch(model: torch.nn.Module) -> tuple[int, int, int]:
    c = model.config
    if getattr(c, "model_type", "") == "gpt2":
        return c.n_layer, c.n_head, c.n_embd
    return c.num_hidden_layers, c.num_attention_heads, c.hidden_size


class TransformerEncoder(Encoder):
    """A transformers encoder (BertModel / GPT2Model) on k-mer tokens, pooled to one vector.

    Inference sorts sequences by length, trims each batch's padding, and runs under
    ``torch.inference_mode``; the output is in input order, float32.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: KmerTokenizer, meta: EncoderMeta,
                 device: str = "cpu"):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.meta = meta
        self.device = device

    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        sequences = list(sequences)
        dim = self.meta.embedding_dim
        if not sequences:
            return np.zeros((0, dim), dtype=np.float32)
        limit_heap_fragmentation()  # batches of varying width, see there
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(sequences), dim), dtype=np.float32)
        starts = range(0, len(sequences), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"embed {self.meta.name}", unit="batch", leave=False)
        with torch.inference_mode():
            for start in starts:
                idx = order[start:start + batch_size]
                ids, attn = self.tokenizer([sequences[i] for i in idx])
                width = max(1, int(attn.sum(1).max()))
                vec = encode(self.model, ids[:, :width], attn[:, :width], pooling=self.meta.pooling)
                out[idx] = vec.float().cpu().numpy()
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, name: str, family: str, device: str = "cpu",
                        pooling: str | None = None) -> "TransformerEncoder":
        """Load a directory written by ``benchbarcode pretrain``."""
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise UserError(f"{directory}: not a benchbarcode encoder directory (no {META_FILE}; "
                            "an unfinished pretraining run can be continued with --resume)")
        try:
            info = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{meta_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        model = AutoModel.from_pretrained(directory)
        tokenizer = KmerTokenizer.from_dict(info["tokenizer"])
        layers, heads, hidden = _arch(model)
        weights = directory / "model.safetensors"
        meta = EncoderMeta(
            name=name, family=family, objective=info["objective"],
            tokenizer=f"k-mer (k={tokenizer.k}, stride={tokenizer.stride})", k=tokenizer.k,
            layers=layers, heads=heads, hidden_size=hidden,
            parameters=sum(p.numel() for n, p in model.named_parameters() if not n.startswith("pooler.")),
            embedding_dim=hidden,
            max_length=tokenizer.max_len, pooling=pooling or info.get("pooling", "mean"),
            checkpoint={"path": str(directory), "sha256": _file_sha256(weights),
                        "preset": info.get("preset"), "seed": info.get("seed")},
            budget=info.get("budget", {}),
        )
        return cls(model, tokenizer, meta, device)


def _pretrained_factory(name: str, objective: str):
    def factory(checkpoint: str | None = None, device: str = "cpu",
                pooling: str | None = None) -> TransformerEncoder:
        if checkpoint is None:
            raise UserError(f"encoder {name!r} needs --checkpoint DIR, a directory written by "
                            f"'benchbarcode pretrain --encoder {name}'")
        enc = TransformerEncoder.from_pretrained(checkpoint, name=name, family="in-house transformer",
                                                 device=device, pooling=pooling)
        if enc.meta.objective != objective:
            raise UserError(f"{checkpoint}: holds a {enc.meta.objective} encoder, not {name} ({objective})")
        return enc

    factory.objective = objective
    return factory


def _tiny_parameters(objective: str):
    def count() -> int:
        torch.manual_seed(0)
        return build_model(objective, get_preset(objective, "tiny")).encoder_parameters()

    return count


mae = register_encoder(
    "mae", family="in-house transformer", objective="mae", pretrainable=True,
    parameters=_tiny_parameters("mae"),
    description="BarcodeMAE: BERT encoder sees only unmasked k-mers; a light BERT decoder "
                "reconstructs the masked ones",
)(_pretrained_factory("mae", "mae"))
mlm = register_encoder(
    "mlm", family="in-house transformer", objective="mlm", pretrainable=True,
    parameters=_tiny_parameters("mlm"),
    description="BarcodeBERT: BERT masked-language model, 50 % of k-mers replaced by [MASK]",
)(_pretrained_factory("mlm", "mlm"))
gpt = register_encoder(
    "gpt", family="in-house transformer", objective="causal", pretrainable=True,
    parameters=_tiny_parameters("causal"),
    description="causal GPT-2 on the same k-mer tokens, next-k-mer loss",
)(_pretrained_factory("gpt", "causal"))
