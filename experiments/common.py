"""What the studies share, all through the package: encoders from the registry, embeddings the
way ``benchbarcode run`` makes them, scores from the registered tasks.

* :func:`open_world_scores`: the ``open-world`` task (1-NN genus, keys = train, cosine; raw and
  centred) of an encoder, optionally under several poolings;
* :func:`random_control`: the ``random`` encoder with the architecture of a preset and its
  overrides (the control a pretrained run starts from, for the same seed);
* :func:`load_run` / :func:`run_info`: the encoder of a ``benchbarcode pretrain`` directory,
  finished or (from its resumable checkpoint) cut short, and what its run did;
* :func:`study_parser`: the command-line options the studies share.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchbarcode import checkpoints
from benchbarcode.data.dataset import BarcodeDataset
from benchbarcode.errors import UserError
from benchbarcode.models import build_model
from benchbarcode.models.presets import Preset
from benchbarcode.api import Encoder
from benchbarcode.registry import get_task, list_encoders
from benchbarcode.run import Caching, embed_split, label_frame
from benchbarcode.spec import EncoderSpec, resolve_encoder

#: the poolings a mean-pooled transformer is also scored under (column tags ``[mean-layers]`` ...)
POOLINGS = ("mean", "mean-layers", "mean-first")
#: the preset fields that shape the encoder (what the ``random`` encoder takes besides the preset)
ARCHITECTURE = ("k", "max_len", "layers", "heads", "hidden", "intermediate")
BATCH_SIZE = 256


def study_parser(doc: str, *, run_options: bool = True, seed_help: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of a study, described by the first paragraph of ``doc`` (the script's
    module docstring), with ``--data`` (default ``sim``) and, with ``run_options``, ``--seed``
    (default 0; ``seed_help`` says what it seeds), ``--device`` (default ``auto``) and ``--json
    FILE`` (where the rows are written). The script adds its own options."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", default="sim",
                        help="data source: sim, sim:SIZE, sim-large[:SIZE[:SEED]], bioscan5m:DIR or a file")
    if run_options:
        parser.add_argument("--seed", type=int, default=0, help=seed_help)
        parser.add_argument("--device", default="auto")
        parser.add_argument("--json", metavar="FILE")
    return parser


def parse_overrides(text: str) -> dict:
    """``"lr=5e-4,loss_on=\"all\",decoder={...}"`` -> preset overrides (values are JSON)."""
    overrides = {}
    for item in filter(None, re.split(r",(?![^{]*\})", text)):  # commas outside {...}
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    return overrides


def inhouse_name(name: str) -> str:
    """The in-house encoder called ``name``, or the one whose objective is ``name`` (causal -> gpt)."""
    entries = [e for e in list_encoders(plugins=False) if e.meta.pretrainable]
    for entry in entries:
        if name == entry.name:
            return entry.name
    for entry in entries:
        if name == entry.meta.objective:
            return entry.name
    raise UserError(f"{name!r}: expected an in-house encoder or objective "
                    f"({', '.join(e.name for e in entries)})")


def random_control(like: str, preset: str, overrides: dict, seed: int, device: str,
                   pooling: str | None = None) -> Encoder:
    """The ``random`` encoder of ``like``'s ``preset`` with the architecture fields of
    ``overrides`` (and its ``pooling``, unless ``pooling`` is given)."""
    sizes = {f: overrides[f] for f in ARCHITECTURE if f in overrides}
    pooling = pooling or overrides.get("pooling")
    if pooling is not None:
        sizes["pooling"] = pooling
    spec = EncoderSpec("random", options={"like": like, "preset": preset, **sizes}, seed=seed)
    return resolve_encoder(spec).create(device)


def run_info(directory: str | Path) -> dict:
    """What the ``benchbarcode pretrain`` run in ``directory`` did: ``steps`` done, ``complete``,
    ``recipe`` and the last logged ``loss``; FileNotFoundError when it holds neither a finished
    encoder (:data:`benchbarcode.checkpoints.META_FILE`) nor a resumable checkpoint."""
    directory = Path(directory)
    if checkpoints.is_complete(directory):
        info = checkpoints.read_info(directory)
        return {"steps": info["budget"]["steps"], "complete": True, "recipe": info["recipe"],
                "loss": info["loss_history"][-1][1]}
    state = checkpoints.resumable_state(directory)
    if state is None or checkpoints.resumable_weights(directory) is None:
        raise FileNotFoundError(f"{directory}: neither a finished encoder ({checkpoints.META_FILE}) "
                                "nor a resumable checkpoint")
    history = state.get("loss_history") or [[0, None]]
    return {"steps": state["step"], "complete": False, "recipe": state["config"]["recipe"],
            "loss": history[-1][1]}


def load_run(directory: str | Path, device: str, pooling: str | None = None) -> Encoder:
    """The encoder of the ``benchbarcode pretrain`` run in ``directory`` (see :func:`run_info`).

    A finished run is opened by its registered encoder (an ``EncoderSpec(NAME, checkpoint=DIR)``).
    A run cut short is read from its resumable checkpoint: its pretraining module is rebuilt from
    the recorded recipe (``build_model``), loaded with the saved weights
    (``checkpoints.resumable_weights``), and its encoder put into the random control of the same
    architecture, whose own weights it replaces.
    """
    directory = Path(directory)
    if checkpoints.is_complete(directory):
        info = checkpoints.read_info(directory)
        name = inhouse_name(info.get("encoder") or info["objective"])
        options = {} if pooling is None else {"pooling": pooling}
        return resolve_encoder(EncoderSpec(name, checkpoint=str(directory), options=options)).create(device)
    run_info(directory)  # raises for a directory without a run
    from safetensors.torch import load_file

    config = checkpoints.resumable_state(directory)["config"]
    recipe = config["recipe"]
    full = build_model(config["objective"], Preset(**recipe))
    full.load_state_dict(load_file(str(checkpoints.resumable_weights(directory))))
    encoder = random_control(inhouse_name(config.get("encoder") or config["objective"]), "tiny",
                             recipe, config.get("seed", 0), device, pooling or recipe.get("pooling"))
    encoder.model = full.encoder.to(device).eval()
    return encoder


def embed_splits(encoder: Encoder, ds: BarcodeDataset, splits, batch_size: int = BATCH_SIZE
                 ) -> tuple[dict[str, np.ndarray], dict]:
    """Embeddings and label frames of ``splits``, made as ``benchbarcode run`` makes them
    (:func:`benchbarcode.run.embed_split`, no cache, whole splits)."""
    embeddings, labels = {}, {}
    for split in dict.fromkeys(splits):
        table, embeddings[split], _ = embed_split(encoder, ds, split, batch_size=batch_size,
                                                  caching=Caching(enabled=False))
        labels[split] = label_frame(table)
    return embeddings, labels


def open_world(embeddings: dict, labels: dict, *, queries: str = "test_unseen", seed: int = 0,
               device: str = "cpu") -> dict:
    """The ``open-world`` task's scores with keys = train and ``queries`` as the query split
    (``val_unseen`` scores the same protocol on the split that chooses)."""
    task = get_task("open-world")
    keys_split, query_split = task.meta.splits
    result = task.evaluate({keys_split: embeddings[keys_split], query_split: embeddings[queries]},
                           {keys_split: labels[keys_split], query_split: labels[queries]},
                           seed=seed, device=device)
    return dict(result.scores)


def open_world_scores(create: Callable[..., Encoder], ds: BarcodeDataset, *, poolings=(None,),
                      seed: int = 0, device: str = "cpu") -> dict:
    """``ow_raw`` / ``ow_centred`` (open-world ``accuracy`` / ``accuracy_centred``, 4 decimals) of
    the encoder ``create(pooling=P)`` for each pooling P (``None``: ``create()``, the encoder's
    own); poolings other than ``mean`` are tagged ``ow_raw[P]``."""
    splits = get_task("open-world").meta.splits
    out = {}
    for pooling in poolings:
        encoder = create() if pooling is None else create(pooling=pooling)
        scores = open_world(*embed_splits(encoder, ds, splits), seed=seed, device=device)
        tag = "" if pooling in (None, "mean") else f"[{pooling}]"
        out[f"ow_raw{tag}"] = round(scores["accuracy"], 4)
        out[f"ow_centred{tag}"] = round(scores["accuracy_centred"], 4)
    return out


def poolings_of(pooling: str) -> tuple:
    """The poolings a transformer whose own pooling is ``pooling`` is scored under (as before:
    all of :data:`POOLINGS` for a mean-pooled one, else its own only)."""
    return POOLINGS if pooling == "mean" else (None,)
