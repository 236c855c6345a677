"""Load the ``.pt`` checkpoints of the reference BarcodeBERT / BarcodeMAE code as an encoder.

The format, as the reference ``pretraining.py`` saves it every epoch: one ``torch.save`` dict with

* ``model``: the state dict of a ``BertModel`` (BarcodeMAE, ``arch == "maelm"``) or of a
  ``BertForTokenClassification`` (the BarcodeBERT MLM baseline, ``arch == "transformer"``: keys
  ``bert.*`` plus the head ``classifier.*``); keys start with ``module.`` when trained with DDP.
  A later BarcodeMAE revision saves the whole encoder-decoder instead (``encoder.*``,
  ``decoder.*``, ``projection_layer.*``); its encoder is taken.
* ``bert_config``: ``BertConfig.to_dict()`` of the encoder;
* ``config``: the run's ``argparse.Namespace`` (``arch``, ``k_mer``, ``stride`` (None: k),
  ``max_len``, ``tokenizer``, ``tokenize_n_nucleotide``, ...);
* ``optimizer`` / ``scheduler`` state dicts, ints ``epoch``, ``total_step``, ``n_samples_seen``
  and best-score numbers.

Safety: a ``.pt`` file is a pickle, and unpickling can run any code. It is read by
:func:`benchbarcode.torchfile.load_weights_only` (tensors and plain containers, plus
``argparse.Namespace``); a file that needs any other global is refused with a message naming it,
before anything in it runs.

Only the encoder is kept: heads (``classifier``, ``cls``), the pooler and a decoder are dropped
and named in the loader record; every other weight must match a ``BertModel`` built from
``bert_config`` exactly. The tokenizer is rebuilt from ``config`` (:class:`KmerTokenizer` follows
the reference rule). Every problem is a one-line :class:`UserError` that starts with the path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchbarcode.canonical import file_sha256
from benchbarcode.contracts import THIRD_PARTY
from benchbarcode.encoders.inhouse import TransformerEncoder
from benchbarcode.errors import UserError
from benchbarcode.tokenizers import KmerTokenizer
from benchbarcode.torchfile import detail, load_weights_only

FORMAT = "reference .pt"
OBJECTIVES = {"maelm": "mae", "transformer": "mlm"}  # config.arch -> our objective name
HEADS = ("classifier", "cls", "pooler")  # BertForTokenClassification, BertForMaskedLM, BertModel
DECODER = ("decoder", "projection_layer")  # the full encoder-decoder of a later BarcodeMAE revision
# Persistent in the state dict of transformers < 4.31, a buffer (0..n-1) rather than a weight.
POSITION_IDS = "embeddings.position_ids"
# The BertConfig arguments that shape the encoder's forward pass. The rest of to_dict() (labels,
# generation and output settings, versions) leaves the last hidden state unchanged, and old keys
# there can be refused by a newer transformers.
BERT_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
             "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "is_decoder",
             "add_cross_attention")


def load_reference_encoder(path: str | Path, device: str = "cpu", pooling: str | None = None,
                           dtype: str = "float32") -> TransformerEncoder:
    """The encoder of reference checkpoint ``path``, embedding by the masked mean of its last
    hidden state unless ``pooling`` says otherwise."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    config = _run_config(ckpt, path)
    tokenizer = _tokenizer(config, ckpt["bert_config"], path)
    model = _bert_model(ckpt["bert_config"], path)
    state, stripped, dropped = encoder_state(ckpt["model"])
    _load_strictly(model, state, path)
    arch = config.get("arch")
    objective = OBJECTIVES.get(arch)
    if objective is None:  # arch missing (older BarcodeBERT files) or unknown: the dropped parts tell
        objective = "mae" if "decoder" in dropped else "mlm" if {"classifier", "cls"} & set(dropped) else None
    counters = {name: ckpt.get(name) for name in ("epoch", "total_step", "n_samples_seen")}
    counters = {k: int(v) for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}
    checkpoint = {"path": str(path), "sha256": file_sha256(path), "format": FORMAT,
                  **({"arch": arch} if isinstance(arch, str) else {}),
                  **({"epoch": counters["epoch"]} if "epoch" in counters else {})}
    counted = {ours: counters[theirs] for ours, theirs in
               (("steps", "total_step"), ("sequences", "n_samples_seen"), ("epochs", "epoch")) if theirs in counters}
    budget = {"trained_by": THIRD_PARTY, **counted}  # the file's own counters, not a budget this suite set
    loader = {"format": FORMAT, "model": "BertModel", "stripped_prefixes": stripped, "dropped": dropped,
              "tokenizer": tokenizer.to_dict()}
    return TransformerEncoder(model, tokenizer, device, pooling or "mean", objective=objective,
                              checkpoint=checkpoint, budget=budget, loader=loader, dtype=dtype)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint dict in ``path``, read weights-only (see the module docstring)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    ckpt = load_weights_only(path, allowed=(argparse.Namespace,),
                             accepted="tensors, plain containers and argparse.Namespace")
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise UserError(f"{path}: holds a bare state dict, not a reference pretraining checkpoint "
                        "(a dict with 'model', 'bert_config' and 'config')")
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: holds a {type(ckpt).__name__}, not a reference pretraining checkpoint "
                        "(a dict with 'model', 'bert_config' and 'config')")
    missing = [key for key in ("model", "bert_config", "config") if key not in ckpt]
    if missing:
        raise UserError(f"{path}: not a reference pretraining checkpoint: no {', '.join(map(repr, missing))} "
                        f"(has: {', '.join(map(str, ckpt)) or 'nothing'})")
    model = ckpt["model"]
    if not isinstance(model, dict) or not model or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise UserError(f"{path}: 'model' is not a state dict of tensors")
    if not isinstance(ckpt["bert_config"], dict):
        raise UserError(f"{path}: 'bert_config' is a {type(ckpt['bert_config']).__name__}, not a dict")
    return ckpt


def _run_config(ckpt: dict, path: Path) -> dict:
    """``config`` as a dict, refusing the settings whose tokens this package cannot reproduce."""
    config = ckpt["config"]
    config = vars(config) if isinstance(config, argparse.Namespace) else config
    if not isinstance(config, dict):
        raise UserError(f"{path}: 'config' is a {type(config).__name__}, not an argparse.Namespace or dict")
    for key in ("k_mer", "max_len"):
        if config.get(key) is None:
            raise UserError(f"{path}: config has no {key!r}")
    if (config.get("tokenizer") or "kmer") != "kmer":
        raise UserError(f"{path}: config tokenizer is {config['tokenizer']!r}; only 'kmer' checkpoints load")
    if config.get("tokenize_n_nucleotide"):
        raise UserError(f"{path}: trained with tokenize_n_nucleotide (k-mers holding N have their own ids); "
                        "here every k-mer holding N is [UNK], so its tokens cannot be reproduced")
    return config


def _tokenizer(config: dict, bert_config: dict, path: Path) -> KmerTokenizer:
    try:
        tokenizer = KmerTokenizer(config["k_mer"], config.get("stride"), config["max_len"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: config: {exc}") from None
    vocab = bert_config.get("vocab_size")
    if vocab != tokenizer.vocab_size:
        raise UserError(f"{path}: bert_config vocab_size is {vocab}, but k={tokenizer.k} k-mers plus [MASK] and "
                        f"[UNK] make {tokenizer.vocab_size}: not the k-mer vocabulary of this package")
    positions = bert_config.get("max_position_embeddings", 512)
    if isinstance(positions, int) and tokenizer.n_tokens > positions:
        raise UserError(f"{path}: max_len {tokenizer.max_len} gives {tokenizer.n_tokens} tokens, more than "
                        f"the model's {positions} positions")
    return tokenizer


def _bert_model(bert_config: dict, path: Path):
    from transformers import BertConfig, BertModel

    position_type = bert_config.get("position_embedding_type") or "absolute"
    if position_type != "absolute":
        raise UserError(f"{path}: bert_config position_embedding_type is {position_type!r}; "
                        "only absolute position embeddings load")
    try:
        config = BertConfig(**{k: bert_config[k] for k in BERT_KEYS if k in bert_config})
        return BertModel(config, add_pooling_layer=False)
    except Exception as exc:
        raise UserError(f"{path}: bert_config does not build a BertModel ({type(exc).__name__}: "
                        f"{detail(exc)})") from None


def encoder_state(state: dict) -> tuple[dict, list[str], list[str]]:
    """``(encoder state dict, prefixes stripped, parts dropped)`` of a reference ``model`` entry."""
    stripped: list[str] = []

    def strip(entries: dict, prefix: str) -> dict:
        if not any(k.startswith(prefix) for k in entries):
            return entries
        stripped.append(prefix)
        return {k.removeprefix(prefix): v for k, v in entries.items()}

    state = strip(state, "module.")
    if any(k.startswith("decoder.") for k in state):  # the whole encoder-decoder: keep encoder.*
        state = strip({k: v for k, v in state.items() if not k.startswith(DECODER)}, "encoder.")
        dropped = set(DECODER)
    else:
        dropped = set()
    state = strip(state, "bert.")
    kept = {}
    for key, value in state.items():
        part = key.split(".", 1)[0]
        if part in HEADS:
            dropped.add(part)
        elif key == POSITION_IDS:
            dropped.add(key)
        else:
            kept[key] = value
    return kept, stripped, sorted(dropped)


def _load_strictly(model, state: dict, path: Path) -> None:
    """Load ``state`` into ``model``: every weight present, none left over, every shape equal."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise UserError(f"{path}: encoder weight {missing[0]!r} is missing"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        raise UserError(f"{path}: unexpected weight {unexpected[0]!r}, not part of a BertModel encoder"
                        + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise UserError(f"{path}: weight {key!r} has shape {tuple(value.shape)}, but bert_config "
                            f"gives {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True)
    model.eval()
