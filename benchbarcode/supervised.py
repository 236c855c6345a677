"""Supervised training of a baseline encoder on labelled barcodes (the BIOSCAN-5M CNN), and the
directory it writes.

The loop sees sequences and their labels, never a task or a data set: ``run`` hands it the
``train`` split's barcodes and species (:func:`benchbarcode.run.obtain_encoder`). Every random
choice (initialisation, batch order) comes from the seed; progress goes through tqdm.

``DIR/model.safetensors`` holds the weights (safetensors, never a pickle) and
``DIR/benchbarcode.json`` the record: model, recipe, the label space (sorted species), seed, budget,
loss history, versions and the weights' sha256. The directory is written under a temporary name and
renamed into place once both files are on disk, so ``DIR`` is either complete or absent; until then
``DIR.partial/`` holds the state after the last finished epoch, from which a rerun continues
(:class:`Partial`: the same batches and weights as an uninterrupted training); reading it
back checks the sha256 (:func:`read_trained`), and a file that does not read back is a
:class:`~benchbarcode.checkpoints.DamagedCheckpoint` (one line; ``run`` trains again). The file's
sha256 only guards against damage: the weights are identified by their tensors' hash
(:func:`~benchbarcode.canonical.tensors_sha256`), as the in-house transformers are.

A :class:`Trainer` is what ``register_encoder(..., trainer=...)`` holds: called as
``trainer(sequences, labels, directory, *, seed, device, progress)``; its ``recipe`` (a dict) is
what sets the weights besides the data and seed (``run``'s cache key), and ``for_options`` gives
the trainer for the encoder's options (``--encoder-option epochs=1`` shortens the recipe).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from benchbarcode.canonical import file_sha256, tensors_sha256
from benchbarcode.checkpoints import META_FILE, WEIGHTS_FILE, DamagedCheckpoint
from benchbarcode.errors import UserError
from benchbarcode.fileio import atomic_path, fresh_beside

FORMAT = 1
KIND = "supervised"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """What sets a supervised model's weights besides data and seed. Defaults: the reference
    CNN script (Adam with torch's default lr 1e-3 and betas, batch 128 shuffled, 20 epochs,
    cross-entropy over the sorted species; no schedule, no weight decay, no early stopping)."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    max_len: int = 660

    def __post_init__(self):
        for name in ("epochs", "batch_size", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"supervised recipe: {name} must be an integer >= 1, not {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise UserError(f"supervised recipe: lr must be a positive number, not {self.lr!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Trainer:
    """A supervised trainer: the module of the architecture (``build``, ``one_hot_codes``,
    ``letter_codes``, ``forward_flops``; imported on call) and the recipe. ``overridable`` names
    the recipe fields an encoder option may change."""

    model: str  # e.g. "benchbarcode.models.cnn"
    defaults: Recipe = Recipe()
    supervision: str = "species labels of the train split"
    overridable: tuple[str, ...] = ("epochs",)

    @property
    def recipe(self) -> dict:
        return {"model": self.model, **self.defaults.to_dict()}

    def for_options(self, options: Mapping[str, Any]) -> "Trainer":
        """This trainer with the recipe fields that ``options`` (the encoder's) set."""
        changes = {k: v for k, v in options.items() if k in self.overridable and v is not None}
        return dataclasses.replace(self, defaults=dataclasses.replace(self.defaults, **changes)) if changes else self

    def __call__(self, sequences: list[str], labels: list[str], directory: str | os.PathLike, *,
                 seed: int, device: str, progress: bool) -> None:
        train(self, list(sequences), list(labels), Path(directory), seed=seed, device=device, progress=progress)


# ----------------------------------------------------------------------------- the loop
def train(trainer: Trainer, sequences: list[str], labels: list[str], directory: Path, *, seed: int,
          device: str, progress: bool) -> None:
    """Train ``trainer``'s model to predict ``labels`` from ``sequences`` and write ``directory``
    (replacing whatever is there once the new one is complete)."""
    import torch

    if len(sequences) != len(labels):
        raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
    if any(not isinstance(label, str) or not label for label in labels):
        raise UserError("supervised training: every sequence needs a label (drop unlabelled records first)")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise UserError(f"supervised training needs at least 2 classes, got {len(classes)}")
    recipe, arch = trainer.defaults, importlib.import_module(trainer.model)
    index = {c: i for i, c in enumerate(classes)}
    codes = torch.from_numpy(arch.letter_codes(sequences, recipe.max_len)).to(device)
    targets = torch.tensor([index[label] for label in labels], dtype=torch.long, device=device)
    torch.manual_seed(seed)  # the initialisation; the control (e.g. cnn-init) draws the same
    model = arch.build(len(classes), recipe.max_len).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    order_rng = torch.Generator().manual_seed(seed)
    history, steps, seen, started = [], 0, 0, time.perf_counter()
    partial = Partial(directory, {"model": trainer.model, "recipe": recipe.to_dict(), "seed": seed,
                                  "classes": classes, "data": _fingerprint(sequences, labels)})
    resumed = partial.load(model, optimizer, order_rng)
    if resumed is not None:
        history, steps, seen = resumed["history"], resumed["steps"], resumed["seen"]
        started -= resumed["wall_s"]
    bar = _progress(recipe.epochs * -(-len(sequences) // recipe.batch_size), progress)
    if bar is not None and history:
        bar.update(len(history) * -(-len(sequences) // recipe.batch_size))
    for epoch in range(len(history), recipe.epochs):
        order = torch.randperm(len(sequences), generator=order_rng).split(recipe.batch_size)
        loss_sum, correct, count = _epoch(model, optimizer, arch, codes, targets, order, device, bar, epoch)
        steps, seen = steps + sum(1 for b in order if b.numel() >= 2), seen + int(count)
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(count, 1), "train_accuracy": correct / max(count, 1)})
        if epoch + 1 < recipe.epochs:
            partial.save(model, optimizer, order_rng, {"history": history, "steps": steps, "seen": seen,
                                                       "wall_s": time.perf_counter() - started})
    if bar is not None:
        bar.close()
    flops = arch.forward_flops(len(classes), recipe.max_len)
    budget = {"steps": steps, "epochs": recipe.epochs, "sequences": seen, "train_sequences": len(sequences),
              "classes": len(classes), "flops": 3.0 * flops["total"] * seen,
              "flops_note": "3 x forward FLOPs (convolutions and dense layers, multiply-add = 2) per sequence seen",
              "supervision": trainer.supervision, "wall_s": round(time.perf_counter() - started, 3)}
    record = {"format": FORMAT, "kind": KIND, "model": trainer.model, "recipe": recipe.to_dict(), "seed": seed,
              "classes": classes, "budget": budget, "loss_history": history, "versions": _versions()}
    write_trained(directory, model, record)
    partial.remove()


def _epoch(model, optimizer, arch, codes, targets, order, device: str, bar, epoch: int) -> tuple[float, float, float]:
    """One pass over the batches of ``order``: ``(summed loss, correct, sequences)`` of the
    batches trained (a batch of one is left out: batch norm cannot train on one sequence)."""
    import torch

    model.train()
    loss_sum = correct = count = 0.0
    for batch in order:
        if batch.numel() < 2:
            continue
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(arch.one_hot_codes(codes[batch]))
        loss = torch.nn.functional.cross_entropy(logits, targets[batch])
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * batch.numel()
        correct += (logits.argmax(1) == targets[batch]).sum().item()
        count += batch.numel()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    return loss_sum, correct, count


def _fingerprint(sequences: list[str], labels: list[str]) -> str:
    """The training data's identity: a resumed run must see the same sequences and labels."""
    import hashlib

    h = hashlib.sha256()
    for sequence, label in zip(sequences, labels):
        h.update(f"{sequence}\t{label}\n".encode())
    return h.hexdigest()


class Partial:
    """The state after the last finished epoch, beside the directory being trained
    (``DIR.partial/``: model and optimizer tensors, the batch-order generator's and torch's RNG
    state, the loss history and counters; ``state.pt`` read with ``weights_only=True``). Saved after
    every epoch but the last, removed once ``DIR`` is written: an interrupted training (Ctrl-C, a
    killed process) continues from its last finished epoch with the same batches and the same
    weights as an uninterrupted one. A partial state of other data, recipe or seed is discarded."""

    STATE = "state.pt"

    def __init__(self, directory: Path, identity: dict):
        self.path = Path(directory).with_name(Path(directory).name + ".partial")
        self.identity = identity

    def save(self, model, optimizer, order_rng, progress: dict) -> None:
        import torch

        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "order_rng": order_rng.get_state(), "torch_rng": torch.get_rng_state(),
                 "identity": json.dumps(self.identity, sort_keys=True), "progress": json.dumps(progress)}
        with atomic_path(self.path / self.STATE) as tmp:
            torch.save(state, tmp)

    def load(self, model, optimizer, order_rng) -> dict | None:
        """The saved progress, with the model, optimizer and generator set to it; None (and the
        state discarded) when there is none, it is another training's, or it does not read."""
        import torch

        path = self.path / self.STATE
        if not path.is_file():
            return None
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            if state["identity"] != json.dumps(self.identity, sort_keys=True):
                raise ValueError("another training's state")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            order_rng.set_state(state["order_rng"])
            torch.set_rng_state(state["torch_rng"])
            progress = json.loads(state["progress"])
        except Exception as exc:  # noqa: BLE001 (a damaged or foreign state: train from the start)
            log.warning("discarding %s (%s); training from the first epoch", self.path, exc)
            self.remove()
            return None
        log.info("resuming the training in %s after epoch %d", self.path, len(progress["history"]))
        return progress

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", leave=False)


def _versions() -> dict:
    import torch

    from benchbarcode import __version__

    return {"benchbarcode": __version__, "torch": torch.__version__}


# ----------------------------------------------------------------------------- the directory
def write_trained(directory: str | os.PathLike, model, record: dict) -> None:
    """Write ``model``'s weights and ``record`` (+ the weights' sha256) into a new folder beside
    ``directory``, fsync both, and rename it into place (an older ``directory`` is removed first)."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = fresh_beside(out, directory=True)  # not mkdtemp: its 0700 would hide the weights
    try:
        with atomic_path(staging / WEIGHTS_FILE) as tmp:  # the umask's mode, not safetensors' 0600
            save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
        text = json.dumps({**record, "weights_sha256": file_sha256(staging / WEIGHTS_FILE)}, indent=1)
        (staging / META_FILE).write_text(text + "\n", encoding="utf-8")
        for name in (WEIGHTS_FILE, META_FILE):
            with open(staging / name, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_trained(directory: str | os.PathLike, model: str | None = None) -> tuple[dict, dict, str]:
    """``(record, state_dict, identity)`` of a directory :func:`train` wrote (of architecture module
    ``model`` when given), its weights file checked against the recorded sha256; ``identity`` is
    the weights' :func:`~benchbarcode.canonical.tensors_sha256`. A UserError (a
    :class:`DamagedCheckpoint` for damage) in one line otherwise."""
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / META_FILE
    if not path.is_file():
        raise UserError(f"{directory}: not a trained supervised encoder (no {META_FILE})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DamagedCheckpoint(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedCheckpoint(f"{path}: cannot read ({exc})") from None
    if not isinstance(record, dict) or record.get("kind") != KIND:
        raise UserError(f"{directory}: not a directory written by supervised training ({path} has no kind "
                        f"{KIND!r})")
    if model is not None and record.get("model") != model:
        raise UserError(f"{directory}: holds a {record.get('model')} model, not {model}")
    for key in ("recipe", "classes", "weights_sha256"):
        if key not in record:
            raise DamagedCheckpoint(f"{path}: field {key!r}: missing")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise DamagedCheckpoint(f"{directory}: {WEIGHTS_FILE} is missing")
    if file_sha256(weights) != record["weights_sha256"]:
        raise DamagedCheckpoint(f"{weights}: damaged: its sha256 is not the one {META_FILE} recorded when it "
                                "was written")
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # noqa: BLE001 (checked sha, but not a safetensors file)
        raise DamagedCheckpoint(f"{weights}: does not load ({type(exc).__name__})") from None
    return record, state, tensors_sha256(state)
