"""In-house transformer encoders: MAE-BERT (BarcodeMAE), MLM-BERT (BarcodeBERT), causal GPT.

Each is made by ``benchbarcode pretrain --encoder NAME`` and loaded from the directory it wrote
(:mod:`benchbarcode.checkpoints`), or, for mae and mlm, from a reference BarcodeBERT /
BarcodeMAE ``.pt`` file (:mod:`benchbarcode.encoders.reference_pt`). :class:`TransformerEncoder`
embeds with any k-mer-tokenised transformers model; the ``random`` baseline reuses it.
Nothing here imports the training loop, and torch is imported only when an encoder is built.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import numpy as np

from benchbarcode.errors import UserError
from benchbarcode.models.sizes import transformer_sizes
from benchbarcode.registry import Encoder, register_encoder
from benchbarcode.runtime import DTYPES, TRIM_EVERY, autocast, trim_heap
from benchbarcode.tokenizers import KmerTokenizer


def architecture(config) -> dict:
    """Layers, heads and width of a BERT or GPT-2 config, as EncoderMeta fields."""
    sizes = transformer_sizes(config)
    return {"layers": sizes["layers"], "heads": sizes["heads"], "hidden_size": sizes["hidden"]}


class TransformerEncoder(Encoder):
    """A transformers encoder (BertModel / GPT2Model) on k-mer tokens, pooled to one vector.

    Inference sorts sequences by length, trims each batch's padding, and runs under
    ``torch.inference_mode``; the output is in input order, float32. ``dtype`` other than float32
    runs the forward under ``torch.autocast`` in that dtype (weights, layer norms and softmax stay
    float32): bfloat16 doubles the matmul rate of CPUs with AVX-512 BF16 / AMX and of GPUs.
    """

    def __init__(self, model, tokenizer: KmerTokenizer, device: str = "cpu", pooling: str = "mean",
                 *, objective: str | None = None, checkpoint: dict | None = None,
                 budget: dict | None = None, loader: dict | None = None, dtype: str = "float32"):
        from benchbarcode.models.pooling import POOLINGS

        if pooling not in POOLINGS:  # an option the user gives: said before any embedding
            raise UserError(f"encoder option pooling={pooling}: expected one of {', '.join(POOLINGS)}")
        if dtype not in DTYPES:
            raise UserError(f"encoder option dtype={dtype}: expected one of {', '.join(DTYPES)}")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.pooling = pooling
        self.dtype = dtype
        self._facts = {"checkpoint": checkpoint or {},
                       "budget": budget if budget is not None else {"steps": 0, "flops": 0.0},
                       "loader": loader or {}, **({"objective": objective} if objective else {})}

    def describe(self) -> dict:
        arch = architecture(self.model.config)
        return {
            **self._facts, **arch,
            "tokenizer": f"k-mer (k={self.tokenizer.k}, stride={self.tokenizer.stride})",
            "k": self.tokenizer.k, "max_length": self.tokenizer.max_len, "pooling": self.pooling,
            "embedding_dim": arch["hidden_size"], "dtype": self.dtype,
            "parameters": sum(p.numel() for n, p in self.model.named_parameters() if not n.startswith("pooler.")),
        }

    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import torch

        from benchbarcode.models import encode

        sequences = list(sequences)
        dim = architecture(self.model.config)["hidden_size"]
        if not sequences:
            return np.zeros((0, dim), dtype=np.float32)
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(sequences), dim), dtype=np.float32)
        starts = range(0, len(sequences), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embed", unit="batch", leave=False)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            for start in starts:
                idx = order[start:start + batch_size]
                ids, attn = self.tokenizer([sequences[i] for i in idx])
                width = max(1, int(attn.sum(1).max()))
                vec = encode(self.model, ids[:, :width], attn[:, :width], pooling=self.pooling)
                out[idx] = vec.float().cpu().numpy()
                if (start // batch_size + 1) % TRIM_EVERY == 0:
                    trim_heap()  # batches of varying width fragment the heap, see there
        return out

    @classmethod
    def from_directory(cls, directory: str | Path, *, device: str = "cpu", pooling: str | None = None,
                       dtype: str = "float32") -> "TransformerEncoder":
        """Load a directory written by ``benchbarcode pretrain``; its weights are named by their
        tensors' hash (``tensors_sha256``: the same weights whatever wrote the file)."""
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        from benchbarcode import checkpoints

        hf_logging.disable_progress_bar()
        directory = Path(directory)
        info = checkpoints.read_info(directory)
        checkpoints.check_weights(directory, info)  # before loading: damage is named, not a traceback
        try:
            model = AutoModel.from_pretrained(directory)
        except Exception as exc:  # truncated or garbage weights, a config that does not parse...
            raise checkpoints.unloadable(directory, exc) from None
        return cls(model, KmerTokenizer.from_dict(info["tokenizer"]), device,
                   pooling or info.get("pooling", "mean"), objective=info["objective"],
                   checkpoint={"path": str(directory), "tensors_sha256": checkpoints.weights_identity(directory),
                               "preset": info.get("preset"), "seed": info.get("seed")},
                   budget=info.get("budget", {}), dtype=dtype)


def initialised_encoder(objective: str, preset, seed: int, device: str = "cpu", pooling: str | None = None,
                        dtype: str = "float32", *, checkpoint: dict, budget: dict | None = None,
                        record_objective: bool = False) -> TransformerEncoder:
    """The encoder of ``objective`` shaped by ``preset`` (a resolved
    :class:`~benchbarcode.models.presets.Preset`), initialised from ``seed`` exactly as pretraining
    initialises it: ``torch.manual_seed(seed)``, then ``build_model``.

    The one place that builds an untrained in-house encoder: the in-house factories'
    ``initial_preset`` and the ``random`` baseline both come here, so that a control has the
    weights its pretraining run starts from. ``checkpoint`` and ``budget`` are its record;
    ``record_objective``: it states ``objective`` (not for the ``random`` control, whose objective
    is ``random-init``)."""
    import torch

    from benchbarcode.models import build_model

    torch.manual_seed(seed)
    model = build_model(objective, preset).encoder
    return TransformerEncoder(model, KmerTokenizer(preset.k, max_len=preset.max_len), device,
                              pooling or preset.pooling, objective=objective if record_objective else None,
                              checkpoint=checkpoint, budget=budget, dtype=dtype)


def load_pretrained(checkpoint: str | None = None, device: str = "cpu", pooling: str | None = None,
                    dtype: str = "float32", *, objective: str, reference_files: bool = True,
                    initial_preset: str | None = None, initial_seed: int = 0) -> Encoder:
    """An in-house encoder of ``objective`` from ``checkpoint``: a directory written by
    ``benchbarcode pretrain``, or (``reference_files``: the BERT encoders) a reference BarcodeBERT /
    BarcodeMAE ``.pt`` file. The registry checks that the weights are of the declared objective.

    Without a checkpoint, ``initial_preset`` names a preset whose architecture is returned randomly
    initialised from ``initial_seed`` (:func:`initialised_encoder`: the weights pretraining would
    start from), with no pretraining budget."""
    if checkpoint is not None and initial_preset is not None:
        raise UserError(f"--checkpoint {checkpoint} and initial_preset={initial_preset}: give one, not both "
                        "(initial_preset is an untrained encoder)")
    if initial_preset is not None:
        from benchbarcode.models.presets import get_preset

        return initialised_encoder(objective, get_preset(objective, initial_preset), initial_seed, device,
                                   pooling, dtype, record_objective=True, budget={"steps": 0, "flops": 0.0},
                                   checkpoint={"preset": initial_preset, "seed": initial_seed,
                                               "weights": "random initialisation"})
    if checkpoint is None:
        raise UserError("this encoder needs --checkpoint: a directory written by 'benchbarcode pretrain' "
                        "(without --checkpoint, 'benchbarcode run' pretrains it first)")
    if Path(checkpoint).suffix in (".pt", ".pth"):
        if not reference_files:
            raise UserError(f"{checkpoint}: reference .pt files hold BERT encoders (BarcodeBERT, BarcodeMAE); "
                            "this encoder loads only directories written by 'benchbarcode pretrain'")
        from benchbarcode.encoders.reference_pt import load_reference_encoder

        return load_reference_encoder(checkpoint, device=device, pooling=pooling, dtype=dtype)
    return TransformerEncoder.from_directory(checkpoint, device=device, pooling=pooling, dtype=dtype)


def _tiny_parameters(objective: str):
    def count() -> int:
        return load_pretrained(objective=objective, initial_preset="tiny").describe()["parameters"]

    return count


def _inhouse(name: str, objective: str, description: str, **bound) -> None:
    """Register ``name``: :func:`load_pretrained` with its ``objective`` bound (and ``bound``). The
    objective is not an option a user can change, so the factory's signature leaves it out; every
    other keyword stays visible to the option checks."""
    factory = functools.partial(load_pretrained, objective=objective, **bound)
    signature = inspect.signature(factory)
    factory.__signature__ = signature.replace(parameters=[p for p in signature.parameters.values()
                                                         if p.name != "objective"])
    register_encoder(name, family="in-house transformer", objective=objective, pretrainable=True,
                     control={"encoder": "random", "options": {"like": name}},
                     parameters=_tiny_parameters(objective), description=description)(factory)


_inhouse("mae", "mae", "BarcodeMAE: BERT encoder sees only unmasked k-mers; a light BERT decoder "
                       "reconstructs the masked ones")
_inhouse("mlm", "mlm", "BarcodeBERT: BERT masked-language model, 50 % of k-mers replaced by [MASK]")
_inhouse("gpt", "causal", "causal GPT-2 on the same k-mer tokens, next-k-mer loss", reference_files=False)
