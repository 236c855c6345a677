"""The encoder directory that ``benchbarcode pretrain`` writes, owned by this one module.

``DIR/config.json`` + ``DIR/model.safetensors``: the encoder alone, which
``transformers.AutoModel.from_pretrained(DIR)`` opens. ``DIR/benchbarcode.json``: tokenizer,
objective, preset and recipe, budget, loss history, seed, versions, data identity, the weights
file's sha256 (checked for damage on load; the weights' identity is their tensors' hash,
:func:`weights_identity`); written last, so its presence marks a complete run. ``DIR/checkpoint/``: the resumable
state of an unfinished run (model and optimizer state, step, loss window), removed once the run
completes. A new checkpoint is written beside the old one and swapped in by renames, so that at
every moment one complete checkpoint exists (``checkpoint/``, or ``.checkpoint.old/`` when a crash
fell between the two renames; readers take it).

A file here that does not read back is a :class:`DamagedCheckpoint`: a one-line UserError for a
user's directory, and for ``run``'s cache the sign to pretrain again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from benchbarcode.canonical import file_sha256
from benchbarcode.errors import UserError, located
from benchbarcode.fileio import write_json_atomic

META_FILE = "benchbarcode.json"
CHECKPOINT_DIR = "checkpoint"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"
FORMAT_VERSION = 1
_ENCODER_FILES = (META_FILE, "config.json", WEIGHTS_FILE)
_STAGING, _PREVIOUS = f".{CHECKPOINT_DIR}.tmp", f".{CHECKPOINT_DIR}.old"


class DamagedCheckpoint(UserError):
    """A file of an encoder directory or of its resumable checkpoint that does not read back."""


def is_complete(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a finished encoder (its ``benchbarcode.json`` exists)."""
    return (Path(directory) / META_FILE).is_file()


def read_info(directory: str | os.PathLike) -> dict:
    """The ``benchbarcode.json`` of a finished encoder directory; any problem is a UserError."""
    directory = Path(directory)
    if not directory.exists():
        raise UserError(f"{directory}: no such checkpoint (a directory written by 'benchbarcode pretrain', "
                        "or a reference .pt file for mae/mlm)")
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory written by 'benchbarcode pretrain'")
    path = directory / META_FILE
    if not path.is_file():
        message = f"{directory}: not a benchbarcode encoder directory (no {META_FILE})"
        if resumable_state(directory) is not None:
            message += ("; it holds an unfinished run: continue it with 'benchbarcode pretrain "
                        f"--resume --out {directory}'")
        raise UserError(message)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DamagedCheckpoint(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedCheckpoint(f"{path}: cannot read ({exc})") from None
    for key in ("objective", "tokenizer"):
        if not isinstance(info, dict) or key not in info:
            raise DamagedCheckpoint(f"{path}: field {key!r}: missing")
    if not (directory / WEIGHTS_FILE).is_file():
        raise DamagedCheckpoint(f"{directory}: {WEIGHTS_FILE} is missing")
    return info


def check_weights(directory: str | os.PathLike, info: dict) -> None:
    """Refuse an encoder whose weights file's sha256 is not the one recorded when it was written
    (directories written before it was recorded are not checked)."""
    from benchbarcode.torchfile import safetensors_problem

    path = Path(directory) / WEIGHTS_FILE
    if info.get("weights_sha256") not in (None, file_sha256(path)):
        problem = safetensors_problem(path)
        raise DamagedCheckpoint(f"{path}: damaged: its sha256 is not the one {META_FILE} recorded when it "
                                f"was written{f' ({problem})' if problem else ''}")


def weights_identity(directory: str | os.PathLike) -> str:
    """The identity of the encoder's weights: the sha256 of its tensors
    (:func:`~benchbarcode.canonical.safetensors_sha256`), which the same weights keep whatever
    file metadata or library version wrote them (the file's sha256 above only checks for damage)."""
    from benchbarcode.canonical import safetensors_sha256

    return safetensors_sha256(Path(directory) / WEIGHTS_FILE)


def unloadable(directory: str | os.PathLike, exc: Exception) -> DamagedCheckpoint:
    """The error for an encoder directory that transformers fails to open with ``exc``: its weights
    file when that is truncated or corrupt, else the directory and the library's first line."""
    from benchbarcode.torchfile import safetensors_problem

    weights = Path(directory) / WEIGHTS_FILE
    problem = safetensors_problem(weights)
    if problem:
        return DamagedCheckpoint(f"{weights}: the encoder does not load: {problem}")
    return DamagedCheckpoint(f"{directory}: the encoder does not load ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'no message'})")


def write_encoder(directory: str | os.PathLike, model, info: dict) -> None:
    """Write the encoder of pretraining module ``model`` and then ``info`` (which marks it
    complete), and drop the resumable checkpoint."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = Path(directory)
    tmp = out / ".encoder.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_encoder(tmp)
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
    tmp.rmdir()
    write_json_atomic(out / META_FILE, {**info, "weights_sha256": file_sha256(out / WEIGHTS_FILE)})
    _remove_resumable(out)


def clear(directory: str | os.PathLike) -> None:
    """Remove what a pretraining run wrote to ``directory`` (finished encoder and checkpoint)."""
    out = Path(directory)
    for name in _ENCODER_FILES:
        (out / name).unlink(missing_ok=True)
    _remove_resumable(out)


def check_target(directory: str | os.PathLike, *, resume: bool, overwrite: bool) -> dict | None:
    """What ``benchbarcode pretrain --out DIR`` may do with ``directory``, checked before any work:
    the state of the unfinished run to resume, or None to start clean; a UserError when the
    directory is a file, already holds a finished encoder, holds an unfinished run without
    ``--resume``, or has nothing to resume with it."""
    from benchbarcode.fileio import check_output_dir

    d = check_output_dir(directory, "--out")
    if overwrite:
        return None
    if is_complete(d):
        try:
            json.loads((d / META_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise located(d / META_FILE, line, "invalid JSON: a damaged encoder; pass --overwrite to start clean") from None
        raise UserError(f"{d}: already holds a pretrained encoder{'; nothing to resume' if resume else ''}; "
                        "pass --overwrite to replace it")
    state = resumable_state(d)
    if state is None and resume:
        raise UserError(f"--resume: {d} holds no unfinished run (no {CHECKPOINT_DIR}/); leave out --resume to start one")
    if state is not None and not resume:
        raise UserError(f"{d}: holds an unfinished run (step {state.get('step')}); pass --resume to continue it "
                        "or --overwrite to start clean")
    return state


# ----------------------------------------------------------------------------- resumable state
def _resumable_dir(directory: str | os.PathLike) -> Path | None:
    """The complete resumable checkpoint of ``directory``: ``checkpoint/``, else the previous one
    that a crash between the two renames of :func:`save_resumable` left as ``.checkpoint.old/``."""
    for name in (CHECKPOINT_DIR, _PREVIOUS):
        if (Path(directory) / name / STATE_FILE).is_file():
            return Path(directory) / name
    return None


def _remove_resumable(directory: Path) -> None:
    for name in (CHECKPOINT_DIR, _STAGING, _PREVIOUS):
        shutil.rmtree(directory / name, ignore_errors=True)


def resumable_state(directory: str | os.PathLike) -> dict | None:
    """The state of the unfinished run in ``directory`` (step, loss history, config...), or None."""
    ck = _resumable_dir(directory)
    if ck is None:
        return None
    path, hint = ck / STATE_FILE, "start clean with --overwrite"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DamagedCheckpoint(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} column {exc.colno}); {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedCheckpoint(f"{path}: cannot read ({exc}); {hint}") from None
    if not (isinstance(state, dict) and isinstance(state.get("step"), int) and isinstance(state.get("config"), dict)):
        raise DamagedCheckpoint(f"{path}: not the state of an unfinished run (no step or config); {hint}")
    return state


def save_resumable(directory: str | os.PathLike, model, optimizer, state: dict) -> None:
    """Write the resumable checkpoint: staged in a new folder (files fsynced), then swapped in by
    two renames; at every moment one complete checkpoint exists (see :func:`_resumable_dir`)."""
    import torch
    from safetensors.torch import save_file

    from benchbarcode.fileio import match_umask

    out = Path(directory)
    final, staging, previous = out / CHECKPOINT_DIR, out / _STAGING, out / _PREVIOUS
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              str(staging / WEIGHTS_FILE))
    match_umask(staging / WEIGHTS_FILE)  # safetensors writes 0600; the run's other files follow the umask
    torch.save(optimizer.state_dict(), staging / OPTIMIZER_FILE)
    (staging / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")
    for name in (WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE):
        with open(staging / name, "rb") as fh:
            os.fsync(fh.fileno())
    if final.is_dir():  # else `previous` (if any) is the complete one and stays until the swap
        shutil.rmtree(previous, ignore_errors=True)
        final.rename(previous)
    staging.rename(final)
    shutil.rmtree(previous, ignore_errors=True)


def load_resumable(directory: str | os.PathLike, model, optimizer, device: str) -> dict:
    """Restore ``model`` and ``optimizer`` from the resumable checkpoint; returns the saved state.

    The optimizer state is read by :func:`benchbarcode.torchfile.load_weights_only`: tensors and
    plain containers only, never an arbitrary pickle. Anything that does not read back is a
    :class:`DamagedCheckpoint`.
    """
    from safetensors.torch import load_file

    from benchbarcode.torchfile import detail, load_weights_only

    state = resumable_state(directory)
    if state is None:
        raise UserError(f"{directory}: holds no unfinished run")
    ck = _resumable_dir(directory)
    hint = "; start clean with --overwrite"
    try:
        model.load_state_dict(load_file(str(ck / WEIGHTS_FILE), device="cpu"))
    except Exception as exc:  # noqa: BLE001 (missing, truncated, or weights of another model)
        raise DamagedCheckpoint(f"{ck / WEIGHTS_FILE}: cannot restore the model ({type(exc).__name__}: "
                                f"{detail(exc)}){hint}") from None
    try:
        optimizer.load_state_dict(load_weights_only(ck / OPTIMIZER_FILE, map_location=device))
    except UserError as exc:
        raise DamagedCheckpoint(f"{exc}{hint}") from None
    except Exception as exc:  # noqa: BLE001 (read, but not this optimizer's state)
        raise DamagedCheckpoint(f"{ck / OPTIMIZER_FILE}: cannot restore the optimizer ({type(exc).__name__}: "
                                f"{detail(exc)}){hint}") from None
    return state


def resumable_weights(directory: str | os.PathLike) -> Path | None:
    """The pretraining module's weights in the resumable checkpoint of ``directory``, if any."""
    ck = _resumable_dir(directory)
    return ck / WEIGHTS_FILE if ck is not None and (ck / WEIGHTS_FILE).is_file() else None
