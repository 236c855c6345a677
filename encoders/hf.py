"""Any Hugging Face model as an encoder: ``hf:MODEL`` (a hub id or a local directory) and the
DNA-model presets, each a declaration of a few lines.

Loading: ``AutoConfig`` (the config is always passed explicitly to the model class), the model
class of ``AutoModel`` (or the first of ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` a
remote-code model declares), ``AutoTokenizer``. ``--revision`` is passed to every file lookup and
the commit it resolved to is recorded. A model that ships its own code (``auto_map``) is refused
unless the user passes ``--trust-remote-code``. Weights that the model needs but the checkpoint
lacks are an error (a missing pooler is fine: it is not used).

Embedding: sequences are upper-cased and tokenised one by one (so tokenizers that cannot batch
work too), the model runs on batches of similar length with the attention mask always passed
(models whose forward takes no mask get batches of equal length, so no padding exists), and the
vector is the mean of the last hidden state over the attended tokens that are not special tokens
([CLS], [SEP], [PAD], [UNK] — so an N that a tokenizer cannot spell is left out, not averaged in).
A sequence longer than the model's context is truncated (default) or cut into windows whose
token-weighted mean is taken (``--encoder-option long_sequences=chunk``); the policy and the
context are recorded.

Fixes a preset declares for known traps (and ``--encoder-option fixes=...`` for any model):

* ``no-triton`` — the remote code is imported with ``triton`` hidden: DNABERT-2's code takes a
  Triton flash-attention path whenever triton imports, and that path fails with current Triton;
  without it the code runs plain PyTorch attention (CPU and GPU, fp32 or the chosen dtype).
* ``eager-init`` — the model is built on the CPU and its weights loaded afterwards, instead of
  transformers 5's meta-device initialisation, which DNABERT-2's ALiBi buffer construction does
  not survive. Tried automatically when a model fails on the meta device.

What was done is recorded in the result's ``encoder.loader``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchbarcode.canonical import directory_sha256
from benchbarcode.contracts import THIRD_PARTY
from benchbarcode.errors import UserError
from benchbarcode.models.sizes import config_int, transformer_sizes
from benchbarcode.registry import Encoder, register_encoder
from benchbarcode.runtime import DTYPES

FIXES = ("no-triton", "eager-init")
LONG_SEQUENCES = ("truncate", "chunk")
MODEL_CLASSES = ("AutoModel", "AutoModelForMaskedLM", "AutoModelForCausalLM")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_UNUSED_MISSING = ("pooler.",)  # weights a mean-pooled encoder never uses
BLOCK = 4096  # sequences tokenised at a time


# ----------------------------------------------------------------------------- where the files are
def _is_local(source: str) -> bool:
    if Path(source).expanduser().is_dir():
        return True
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source:
        raise UserError(f"hf model {source!r}: no such directory (a hub id is ORG/NAME)")
    return False


def _how_to_get(source: str, revision: str | None) -> str:
    from huggingface_hub import constants

    offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else f" ({constants.ENDPOINT} does not resolve)"
    rev = f" --revision {revision}" if revision else ""
    return (f"hf model {source!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"the hub cannot be reached{offline}: download it once where there is network "
            f"('hf download {source}{rev}'), or give a local copy (--encoder hf:DIR, or --checkpoint DIR "
            "with a preset)")


def _hub_reachable() -> bool:
    """Whether the hub's host resolves. Without a network, each hub request is retried for about
    30 s before it fails; asking the resolver first lets an uncached model fail at once and a
    cached one load from the cache without waiting."""
    import socket
    import urllib.parse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urllib.parse.urlparse(constants.ENDPOINT).hostname, 443)
    except (OSError, UnicodeError):
        return False
    return True


def _file(source: str, name: str, hub: dict, required: bool = True) -> Path | None:
    """Path of file ``name`` of ``source`` (a local directory, or a hub snapshot in the cache)."""
    if _is_local(source):
        path = Path(source).expanduser() / name
        if required and not path.is_file():
            raise UserError(f"{Path(source)}: no {name} (not a Hugging Face model directory)")
        return path if path.is_file() else None
    from transformers.utils import cached_file

    try:
        found = cached_file(source, name, **hub, _raise_exceptions_for_missing_entries=False,
                            _raise_exceptions_for_connection_errors=False)
    except OSError as exc:  # an unknown repository or revision, a gated model
        raise UserError(f"hf model {source!r}: {str(exc).splitlines()[0]}") from None
    if found is None and required:
        raise UserError(_how_to_get(source, hub["revision"]))
    return Path(found) if found else None


def _commit(config_path: Path) -> str | None:
    """The commit a hub snapshot path belongs to (``.../snapshots/<commit>/config.json``)."""
    return config_path.parent.name if config_path.parent.parent.name == "snapshots" else None


@contextlib.contextmanager
def _hidden_modules(names: tuple[str, ...]):
    """``import NAME`` raises ImportError inside the block (for code that probes for a module)."""
    saved = {n: sys.modules[n] for n in names if n in sys.modules}
    for n in names:
        sys.modules[n] = None  # the import system treats None as "not importable"
    try:
        yield
    finally:
        for n in names:
            del sys.modules[n]
        sys.modules.update(saved)


# ----------------------------------------------------------------------------- loading
def _weights(source: str, hub: dict) -> dict:
    """The checkpoint's state dict, read safely: safetensors, or weights-only ``torch.load``."""
    from safetensors.torch import load_file

    from benchbarcode.torchfile import load_weights_only

    for name in WEIGHT_FILES:
        path = _file(source, name, hub, required=False)
        if path is None:
            continue
        files = [path]
        if name.endswith(".index.json"):
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            files = [_file(source, shard, hub) for shard in shards]
        state: dict = {}
        for f in files:
            if f.suffix == ".safetensors":
                state.update(load_file(str(f)))
                continue
            state.update(load_weights_only(f))  # a pickle that needs more than tensors: refused, never run
        return state
    raise UserError(f"hf model {source!r}: no weights ({', '.join(WEIGHT_FILES)})")


def _check_local_weights(directory: Path) -> None:
    """A local model's safetensors weights (one file or shards) that are truncated or corrupt are
    named here, in one line, before transformers fails on them deep inside safetensors."""
    from benchbarcode.torchfile import safetensors_problem

    for path in sorted(directory.glob("model*.safetensors")):
        problem = safetensors_problem(path)
        if problem:
            raise UserError(f"{path}: {problem}")


def _eager(model_class, config, source: str, hub: dict) -> tuple:
    """Build the model on the CPU, then load the checkpoint's weights into it.

    Keys are matched as transformers does: a checkpoint of the model with a head (``bert.``
    prefix) loads into the bare encoder; returns ``(model, missing, unexpected)``.
    """
    import torch

    with torch.device("cpu"):
        model = model_class(config)
    state = _weights(source, hub)
    prefix = getattr(model, "base_model_prefix", "") or ""
    own = set(model.state_dict())
    if prefix and not any(k.startswith(prefix + ".") for k in own):
        state = {(k[len(prefix) + 1:] if k.startswith(prefix + ".") and k[len(prefix) + 1:] in own else k): v
                 for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    return model, list(missing), list(unexpected)


def _instantiate(model_class, config, source: str, hub: dict, dtype, eager: bool) -> tuple:
    """``(model, missing keys, unexpected keys, how it was initialised)``: transformers'
    ``from_pretrained`` (config passed explicitly), or :func:`_eager` when declared or when the
    model fails on the meta device."""
    if eager:
        return (*_eager(model_class, config, source, hub), "eager (declared fix)")
    try:
        net, info = model_class.from_pretrained(source, config=config, **hub, dtype=dtype, output_loading_info=True)
    except (RuntimeError, NotImplementedError) as exc:
        if "meta" not in str(exc):
            raise
        return (*_eager(model_class, config, source, hub),
                f"eager (meta-device initialisation failed: {str(exc).splitlines()[0]})")
    return net, list(info["missing_keys"]), list(info["unexpected_keys"]), "transformers from_pretrained"


def _model_class_key(auto_map: dict, requested: str | None) -> str:
    if requested:
        if requested not in MODEL_CLASSES:
            raise UserError(f"auto_class {requested!r}: expected one of {', '.join(MODEL_CLASSES)}")
        if auto_map and requested not in auto_map:
            raise UserError(f"auto_class {requested}: the model's code declares only {', '.join(auto_map)}")
        return requested
    if not auto_map:
        return "AutoModel"
    for key in MODEL_CLASSES:
        if key in auto_map:
            return key
    raise UserError(f"the model's code declares no usable model class ({', '.join(auto_map)})")


def _checked_options(dtype: str, long_sequences: str, context: int | None,
                   fixes: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Check :func:`load_hf`'s options before any work; returns the fixes as a tuple (``"a,b"`` is split)."""
    fixes = tuple(f for f in (fixes.split(",") if isinstance(fixes, str) else fixes) if f)
    for value, allowed, what in ((dtype, DTYPES, "dtype"), (long_sequences, LONG_SEQUENCES, "long_sequences"),
                                 *((f, FIXES, "fixes") for f in fixes)):
        if value not in allowed:
            raise UserError(f"hf encoder: {what} {value!r}: expected one of {', '.join(allowed)}")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 3):
        raise UserError(f"hf encoder: context must be an integer >= 3 tokens, not {context!r}")
    return fixes


def _read_config(config_path: Path, source: str, trust_remote_code: bool) -> dict:
    """``config.json`` as a dict; a model that ships its own code is refused without the flag."""
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_path}: not a readable config ({exc})") from None
    auto_map = raw.get("auto_map") or {}
    if auto_map and not trust_remote_code:
        modules = sorted({str(v).split("--")[-1].split(".")[0] + ".py" for v in auto_map.values()})
        raise UserError(f"hf model {source!r} runs its own Python code ({', '.join(modules)}); pass "
                        "--trust-remote-code to allow it (off by default; --revision pins the code you run)")
    return raw


def _load_parts(source: str, hub: dict, auto_map: dict, loader: dict, torch_dtype,
                trust_remote_code: bool) -> tuple:
    """``(model, tokenizer, missing keys, unexpected keys)`` of ``loader["auto_class"]`` with
    ``loader["fixes"]`` applied; ``loader`` gets ``model_class`` and ``init``. transformers' own
    reports are silenced (``loader`` records what was done); every failure is a one-line UserError."""
    import transformers
    from safetensors import SafetensorError
    from transformers.utils import logging as hf_logging

    fixes, key = loader["fixes"], loader["auto_class"]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # what loading reports is recorded in ``loader`` instead
    hf_logging.disable_progress_bar()
    try:
        with _hidden_modules(("triton",) if "no-triton" in fixes else ()):
            config = transformers.AutoConfig.from_pretrained(source, **hub, trust_remote_code=trust_remote_code)
            if auto_map:
                from transformers.dynamic_module_utils import (
                    get_class_from_dynamic_module,
                )

                model_class = get_class_from_dynamic_module(auto_map[key], source, **hub)
            else:
                model_class = getattr(transformers, key)._model_mapping[type(config)]
            loader["model_class"] = f"{model_class.__module__.split('.')[-1]}.{model_class.__name__}"
            net, missing, unexpected, loader["init"] = _instantiate(model_class, config, source, hub,
                                                                    torch_dtype, eager="eager-init" in fixes)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **hub,
                                                                   trust_remote_code=trust_remote_code)
    except UserError:
        raise
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(_how_to_get(source, hub["revision"]) if "connect" in first or "offline" in first.lower()
                        else f"hf model {source!r}: {first}") from None
    except (ImportError, ValueError, TypeError, KeyError, RuntimeError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"hf model {source!r} does not load: {type(exc).__name__}: {first}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return net, tokenizer, missing, unexpected


def load_hf(model: str, *, checkpoint: str | None = None, revision: str | None = None,
            trust_remote_code: bool = False, dtype: str = "float32", device: str = "cpu",
            long_sequences: str = "truncate", context: int | None = None, auto_class: str | None = None,
            fixes: tuple[str, ...] | list[str] | str = ()) -> "HFEncoder":
    """Load ``model`` (hub id or directory; ``checkpoint``: a local copy that replaces it)."""
    import torch

    source = str(checkpoint or model)
    fixes = _checked_options(dtype, long_sequences, context, fixes)
    local = _is_local(source)
    if local and revision:
        raise UserError(f"--revision {revision}: a local directory ({source}) has no revisions")
    # every lookup is pinned to ``revision``; without a reachable hub, only the cache is read
    hub = {"revision": revision, "local_files_only": not local and not _hub_reachable()}
    config_path = _file(source, "config.json", hub)
    raw = _read_config(config_path, source, trust_remote_code)
    if local:
        _check_local_weights(Path(source).expanduser())
    auto_map = raw.get("auto_map") or {}
    key = _model_class_key(auto_map, auto_class)
    torch_dtype = getattr(torch, dtype)
    loader: dict = {"model_class": None, "auto_class": key, "remote_code": bool(auto_map),
                    "config": "passed explicitly", "fixes": list(fixes), "long_sequences": long_sequences}
    net, tokenizer, missing, unexpected = _load_parts(source, hub, auto_map, loader, torch_dtype, trust_remote_code)
    needed = sorted(k for k in missing if not k.startswith(_UNUSED_MISSING))
    if needed:
        raise UserError(f"hf model {source!r}: the checkpoint lacks {len(needed)} weight(s) the model "
                        f"needs (first: {needed[0]}); they would be random")
    loader["weights"] = {"unused_missing": sorted(missing), "ignored": len(unexpected),
                         "ignored_first": sorted(unexpected)[:5]}
    loader["architectures"] = raw.get("architectures")
    checkpoint_record = {"model": model, "revision": revision}
    if local:
        directory = Path(source).expanduser().resolve()
        checkpoint_record |= {"path": str(directory), "sha256": directory_sha256(directory)}
    else:
        checkpoint_record["commit"] = _commit(config_path)
    net = net.to(device=device, dtype=torch_dtype).eval()
    return HFEncoder(net, tokenizer, device=device, dtype=dtype, context=context, checkpoint=checkpoint_record,
                     loader=loader)


# ----------------------------------------------------------------------------- embedding
def _accepts(forward, name: str) -> bool:
    params = inspect.signature(forward).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _field(output, name: str):
    return output.get(name) if isinstance(output, dict) else getattr(output, name, None)


#: where a model's forward output may keep the last hidden state, in the order they are tried
_HIDDEN_AT = {
    "last_hidden_state": lambda out: _field(out, "last_hidden_state"),
    "hidden_states[-1]": lambda out: (list(_field(out, "hidden_states") or ()) or [None])[-1],
    "output": lambda out: out,
    "output[0]": lambda out: out[0] if isinstance(out, (tuple, list)) and out else None,
}


def _last_hidden(output, where: str | None = None):
    """``(where, [B, T, D] tensor)``: the last hidden state in a forward's output, or
    ``(None, None)``; ``where`` (a key of :data:`_HIDDEN_AT`) repeats an earlier call's finding."""
    import torch

    for name in [where] if where else _HIDDEN_AT:
        value = _HIDDEN_AT[name](output)
        if isinstance(value, torch.Tensor) and value.ndim == 3:
            return name, value
    return None, None


class HFEncoder(Encoder):
    """A loaded Hugging Face model and tokenizer; see the module docstring for the protocol."""

    def __init__(self, model, tokenizer, *, device: str = "cpu", dtype: str = "float32",
                 context: int | None = None, checkpoint: dict | None = None, loader: dict | None = None):
        self.model, self.tokenizer, self.device, self.dtype = model, tokenizer, device, dtype
        config = model.config
        limits = [v for v in (config_int(config, ("max_position_embeddings", "n_positions", "max_seq_len")),
                              getattr(tokenizer, "model_max_length", None))
                  if isinstance(v, int) and 0 < v < 1_000_000]
        self.context = context or (min(limits) if limits else None)
        self.special = np.array(sorted(set(getattr(tokenizer, "all_special_ids", []) or [])), dtype=np.int64)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self.takes_mask = _accepts(model.forward, "attention_mask")
        self.checkpoint = checkpoint or {}
        self.loader = {**(loader or {}), "context_tokens": self.context,
                       "attention_mask": "passed" if self.takes_mask else
                       "not taken by the model: batches of equal length, no padding",
                       "special_tokens_excluded": sorted(self.special.tolist()), "uppercase": True}
        # how to call this tokenizer and where the model's output keeps the last hidden state:
        # found once, on a probe, so that the record (and the cache key built from it) is fixed
        self.batched_tokenizer, self.hidden_kwargs, self.hidden_at = True, {}, None
        try:
            self._embed_block(["ACGTTGCAACGT" * 4, "ACGTTGCA"], batch_size=2, bar=None)
        except UserError:
            raise
        except Exception as exc:  # the model's own code fails: say so in one line, before any work
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(f"{type(model).__name__} fails on a probe batch ({type(exc).__name__}: {first})") from None
        self.loader["tokenizer_calls"] = "batched" if self.batched_tokenizer else "one sequence at a time"
        self.loader["hidden_state"] = self.hidden_at + (" (requested with output_hidden_states)"
                                                        if self.hidden_kwargs else "")

    def describe(self) -> dict:
        sizes = transformer_sizes(self.model.config)
        vocab = getattr(self.tokenizer, "vocab_size", None)
        return {
            "tokenizer": f"{type(self.tokenizer).__name__}" + (f" ({vocab} tokens)" if vocab else ""),
            "layers": sizes["layers"], "heads": sizes["heads"],
            "hidden_size": sizes["hidden"], "embedding_dim": sizes["hidden"],
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "pooling": "mean of the last hidden state over attended, non-special tokens",
            "dtype": self.dtype, "checkpoint": self.checkpoint, "loader": self.loader,
            "budget": {"trained_by": THIRD_PARTY},
        }

    # -- tokens
    def _tokenize(self, sequences: list[str]) -> list[list[int]]:
        """Token ids with special tokens, one list per sequence (batched when the tokenizer can)."""
        if self.batched_tokenizer:
            try:
                ids = self.tokenizer(sequences, add_special_tokens=True)["input_ids"]
                if len(ids) == len(sequences) and all(isinstance(row, (list, tuple)) for row in ids):
                    return [list(map(int, row)) for row in ids]
            except (TypeError, ValueError):
                pass
            self.batched_tokenizer = False
        out = []
        for seq in sequences:
            ids = self.tokenizer(seq)["input_ids"]
            out.append([int(i) for i in np.asarray(ids).reshape(-1)])
        return out

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """The model inputs of one sequence: its special prefix and suffix around the content,
        cut to the context (``truncate``) or split into windows that each fit (``chunk``)."""
        if self.context is None or len(ids) <= self.context:
            return [ids]
        is_special = np.isin(np.asarray(ids), self.special)
        start = int(np.argmin(is_special)) if not is_special.all() else len(ids)
        end = len(ids) - int(np.argmin(is_special[::-1])) if not is_special.all() else len(ids)
        prefix, content, suffix = ids[:start], ids[start:end], ids[end:]
        room = self.context - len(prefix) - len(suffix)
        if room < 1:
            raise UserError(f"hf encoder: a context of {self.context} tokens leaves no room between "
                            f"{len(prefix) + len(suffix)} special tokens")
        if self.loader["long_sequences"] == "truncate":
            return [prefix + content[:room] + suffix]
        return [prefix + content[i:i + room] + suffix for i in range(0, len(content), room)]

    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Token ids are built a block of sequences at a time, so memory does not grow with the
        number of sequences (300k barcodes of 150 tokens are gigabytes as Python lists)."""
        sequences = list(sequences)
        out = np.zeros((0, self.describe()["embedding_dim"] or 0), dtype=np.float32)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(sequences), desc="embed", unit="seq", leave=False)
        try:
            for lo in range(0, len(sequences), BLOCK):
                block = self._embed_block([s.upper() for s in sequences[lo:lo + BLOCK]], batch_size, bar)
                if lo == 0:
                    out = np.empty((len(sequences), block.shape[1]), dtype=np.float32)
                out[lo:lo + len(block)] = block
        finally:
            if bar is not None:
                bar.close()
        return out

    def _embed_block(self, sequences: list[str], batch_size: int, bar) -> np.ndarray:
        import torch

        owner, windows = [], []
        for i, ids in enumerate(self._tokenize(sequences)):
            for w in self._windows(ids):
                owner.append(i)
                windows.append(w)
        owner = np.asarray(owner)
        lengths = np.array([len(w) for w in windows], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        sums, counts = None, np.zeros(len(sequences), dtype=np.float64)
        start = 0
        with torch.inference_mode():
            while start < len(order):  # similar lengths together; equal lengths when no mask is taken
                stop = min(start + batch_size, len(order))
                if not self.takes_mask:
                    stop = start + int(np.sum(lengths[order[start:stop]] == lengths[order[start]]))
                rows, start = order[start:stop], stop
                width = int(lengths[rows].max())
                ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
                attention = np.zeros((len(rows), width), dtype=np.int64)
                for r, w in enumerate(rows):
                    ids[r, :lengths[w]] = windows[w]
                    attention[r, :lengths[w]] = 1
                keep = attention.astype(bool) & ~np.isin(ids, self.special)
                hidden = self._forward(torch.from_numpy(ids).to(self.device),
                                       torch.from_numpy(attention).to(self.device)).float()
                weights = torch.from_numpy(keep).to(hidden.device, hidden.dtype)[..., None]
                window_sums = (hidden * weights).sum(1).cpu().numpy().astype(np.float64)
                if sums is None:
                    sums = np.zeros((len(sequences), window_sums.shape[1]), dtype=np.float64)
                np.add.at(sums, owner[rows], window_sums)
                np.add.at(counts, owner[rows], keep.sum(1))
                if bar is not None:
                    bar.update(len(set(owner[rows].tolist())))
        # a sequence with no content token (only N) keeps a zero vector
        return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)

    def _forward(self, ids, attention):
        kwargs = {"input_ids": ids, **({"attention_mask": attention} if self.takes_mask else {})}
        self.hidden_at, hidden = _last_hidden(self.model(**kwargs, **self.hidden_kwargs), self.hidden_at)
        if hidden is None and not self.hidden_kwargs and _accepts(self.model.forward, "output_hidden_states"):
            self.hidden_kwargs = {"output_hidden_states": True}
            self.hidden_at, hidden = _last_hidden(self.model(**kwargs, **self.hidden_kwargs))
        if hidden is None:
            raise UserError(f"hf encoder: found no [batch, tokens, width] hidden state in the output of "
                            f"{type(self.model).__name__}")
        return hidden


# ----------------------------------------------------------------------------- declarations
register_encoder("hf", family="hf", argument="model",
                 description="any Hugging Face model: hf:HUB_ID or hf:DIR (AutoTokenizer + AutoModel, "
                             "mean of the last hidden state over non-special tokens)")(load_hf)

_DNABERT2_FIXES = ("no-triton", "eager-init")


def _preset(name: str, model: str, *, family: str, objective: str, description: str, **how) -> None:
    """A preset: a hub model and how to load it; nothing else (no class per model)."""
    register_encoder(name, family=family, objective=objective, origin=f"preset of hf:{model}",
                     description=description)(functools.partial(load_hf, model, **how))


_preset("dnabert2", "zhihan1996/DNABERT-2-117M", family="DNABERT-2", objective="mlm", fixes=_DNABERT2_FIXES,
        description="DNABERT-2 117M: BPE tokens, MosaicBERT with ALiBi (remote code)")
_preset("dnabert-s", "zhihan1996/DNABERT-S", family="DNABERT-2", objective="contrastive",
        fixes=_DNABERT2_FIXES, description="DNABERT-S: DNABERT-2 tuned for species-aware embeddings (remote code)")
_preset("nt", "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species", family="Nucleotide Transformer",
        objective="mlm", auto_class="AutoModelForMaskedLM",
        description="Nucleotide Transformer v2 50M multi-species: 6-mer tokens, ESM (remote code)")
_preset("hyenadna", "LongSafari/hyenadna-tiny-1k-seqlen-d256-hf", family="HyenaDNA", objective="causal",
        description="HyenaDNA tiny (1k context, width 256): single-base tokens, causal (remote code)")
_preset("barcodebert", "bioscan-ml/BarcodeBERT", family="BarcodeBERT", objective="mlm",
        description="BarcodeBERT from the hub: k-mer tokens, BERT (remote code)")
