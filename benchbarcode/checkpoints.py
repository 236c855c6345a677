"""The encoder directory that ``benchbarcode pretrain`` writes, owned by this one module.

``DIR/config.json`` + ``DIR/model.safetensors``: the encoder alone, which
``transformers.AutoModel.from_pretrained(DIR)`` opens. ``DIR/benchbarcode.json``: tokenizer,
objective, preset and recipe, budget, loss history, seed, versions, data identity; written last,
so its presence marks a complete run. ``DIR/checkpoint/``: the resumable state of an unfinished
run (model and optimizer state, step, loss window), replaced atomically and removed once the
run completes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from benchbarcode.errors import UserError, located
from benchbarcode.fileio import write_json_atomic

META_FILE = "benchbarcode.json"
CHECKPOINT_DIR = "checkpoint"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
_ENCODER_FILES = (META_FILE, "config.json", WEIGHTS_FILE)


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
        raise located(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise located(path, None, f"cannot read ({exc})") from None
    for key in ("objective", "tokenizer"):
        if not isinstance(info, dict) or key not in info:
            raise located(path, None, f"field {key!r}: missing")
    if not (directory / WEIGHTS_FILE).is_file():
        raise located(directory, None, f"{WEIGHTS_FILE} is missing")
    return info


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
    write_json_atomic(out / META_FILE, info)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)


def clear(directory: str | os.PathLike) -> None:
    """Remove what a pretraining run wrote to ``directory`` (finished encoder and checkpoint)."""
    out = Path(directory)
    for name in (*_ENCODER_FILES, CHECKPOINT_DIR):
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


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
def resumable_state(directory: str | os.PathLike) -> dict | None:
    """The state of the unfinished run in ``directory`` (step, loss history, config...), or None."""
    path = Path(directory) / CHECKPOINT_DIR / "state.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise located(path, exc.lineno, f"invalid JSON ({exc.msg}); start clean with --overwrite") from None


def save_resumable(directory: str | os.PathLike, model, optimizer, state: dict) -> None:
    """Write ``DIR/checkpoint`` atomically (a new folder renamed over the old one)."""
    import torch
    from safetensors.torch import save_file

    out = Path(directory)
    final, tmp, old = out / CHECKPOINT_DIR, out / f".{CHECKPOINT_DIR}.tmp", out / f".{CHECKPOINT_DIR}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              str(tmp / WEIGHTS_FILE))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_resumable(directory: str | os.PathLike, model, optimizer, device: str) -> dict:
    """Restore ``model`` and ``optimizer`` from ``DIR/checkpoint``; returns the saved state.

    The optimizer state is read with ``torch.load(weights_only=True)``: tensors and plain
    containers only, never an arbitrary pickle.
    """
    import torch
    from safetensors.torch import load_file

    ck = Path(directory) / CHECKPOINT_DIR
    model.load_state_dict(load_file(str(ck / WEIGHTS_FILE), device="cpu"))
    optimizer.load_state_dict(torch.load(ck / "optimizer.pt", map_location=device, weights_only=True))
    return json.loads((ck / "state.json").read_text())


def resumable_weights(directory: str | os.PathLike) -> Path | None:
    """The pretraining module's weights in the resumable checkpoint of ``directory``, if any."""
    path = Path(directory) / CHECKPOINT_DIR / WEIGHTS_FILE
    return path if path.is_file() else None
