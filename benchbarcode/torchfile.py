"""Reading ``torch.save`` files without running them: the one weights-only loader.

A ``.pt`` file is a pickle, and unpickling can run any code. Every ``torch.save`` file this
package reads (a reference BarcodeBERT / BarcodeMAE checkpoint, a ``pytorch_model.bin``, the
optimizer state of an unfinished pretraining) goes through :func:`load_weights_only`:
``torch.load(weights_only=True)``, which allows tensors and plain containers, plus the globals a
caller names. A file that needs any other global is refused with a one-line :class:`UserError`
naming those globals, before anything in it runs; torch's advice to pass ``weights_only=False``
is not passed on.

A ``.safetensors`` file runs nothing, but one cut short fails deep inside the library that reads
it; :func:`safetensors_problem` says what is wrong with it from its header alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchbarcode.errors import UserError

# torch's weights-only failure opens with this, then advises weights_only=False: not passed on.
_WEIGHTS_ONLY_FAILED = "Weights only load failed"
_BOILERPLATE = (_WEIGHTS_ONLY_FAILED, "Please file an issue", "Check the documentation")


def load_weights_only(path: str | Path, *, allowed: tuple = (), accepted: str = "tensors and plain containers",
                      map_location="cpu"):
    """The object in ``torch.save`` file ``path``, unpickled weights-only with ``allowed`` globals.

    ``accepted`` says in the refusal what the caller takes. Any failure is a one-line UserError
    starting with the path: refused (the globals it needs, or torch's reason) or unreadable
    (truncated, not a torch.save file).
    """
    import torch

    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        unsafe = _unsafe_globals(path, exc, allowed)
        if unsafe:
            raise UserError(f"{path}: refused: it needs {', '.join(unsafe)}, which weights-only loading does "
                            f"not allow (unpickling it could run code); only {accepted} are accepted") from None
        if str(exc).startswith(_WEIGHTS_ONLY_FAILED):
            raise UserError(f"{path}: refused by weights-only loading ({detail(exc)}); only torch.save files "
                            f"of {accepted} are accepted") from None
        raise UserError(f"{path}: not a readable PyTorch checkpoint (truncated, or not written by "
                        f"torch.save? {type(exc).__name__}: {detail(exc)})") from None


def _unsafe_globals(path: Path, exc: Exception, allowed: tuple) -> list[str]:
    """The globals that kept ``path`` from loading weights-only, found without running them."""
    import torch

    scan = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    if scan is not None:
        try:
            with torch.serialization.safe_globals(list(allowed)):
                return sorted(scan(path))  # a static disassembly of the pickle
        except Exception:  # not a torch.save archive (a bare pickle): torch's own message names them
            pass
    return sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(exc))))


def detail(exc: Exception) -> str:
    """The informative first sentence of a library error, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = next((line for line in lines if not line.startswith(_BOILERPLATE)), "no detail")
    return line.split(". ")[0]


def safetensors_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (truncated, or not safetensors at all), or None.

    Only the header is read: 8 bytes giving the length of a JSON table of tensors, whose data
    offsets must end exactly where the file does.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        length = int.from_bytes(fh.read(8), "little") if size >= 8 else None
        if length is None or length > size - 8:
            return f"truncated or corrupt safetensors file: {size:,} bytes, too few for its header"
        try:
            table = json.loads(fh.read(length))
            end = max((int(t["data_offsets"][1]) for name, t in table.items() if name != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "corrupt safetensors file: its header is not a table of tensors"
    expected = 8 + length + end
    if expected != size:
        return (f"{'truncated' if expected > size else 'corrupt'} safetensors file: its header describes "
                f"{expected:,} bytes, the file holds {size:,}")
    return None
