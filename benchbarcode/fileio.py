"""Where files go: atomic writes (a temp file in the target directory, fsync, then rename over the
target), a lock for what concurrent processes would otherwise each produce, output-path checks,
and the root of benchbarcode's caches."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

LOCK_SUFFIX = ".lock"  # the lock file beside what it guards (see exclusive)
log = logging.getLogger(__name__)


def fresh_beside(target: str | os.PathLike, suffix: str = "", directory: bool = False) -> Path:
    """A new, empty file (or ``directory``) with a unique hidden name beside ``target``
    (``.NAME.XXXXXXXX<suffix>.tmp``), created with the mode the umask gives, as ``open`` and
    ``mkdir`` create: ``tempfile.mkstemp`` / ``mkdtemp`` make it 0600 / 0700 whatever the umask,
    and a result, export or weights file renamed from it could not be shared."""
    target = Path(target)
    for _ in range(100):
        path = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}.tmp"
        try:
            if directory:
                path.mkdir()
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(target.parent))


def match_umask(path: str | os.PathLike) -> None:
    """Give the file ``path`` the mode a new file beside it gets from the umask, for files a library
    writes with a mode of its own (``save_pretrained``'s safetensors weights: 0600)."""
    probe = fresh_beside(path)
    try:
        os.chmod(path, stat.S_IMODE(probe.stat().st_mode))
    finally:
        probe.unlink()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    On any exception (Ctrl-C included) the temporary file is removed and ``target`` is untouched.
    The file gets the mode the umask gives (:func:`fresh_beside`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = fresh_beside(target, suffix)
    mode = stat.S_IMODE(tmp_path.stat().st_mode)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)  # a writer may have replaced the file with its own (safetensors: 0600)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (an empty file beside what it guards, created if
    absent and left in place) while producing ``what``.

    Two processes that would each produce the same file (two runs on one cache pretraining the
    same encoder, say) then produce it once: the second waits here, saying so in one log line,
    and must look for the product again once inside before making it. The lock is an
    ``fcntl.flock``, which the OS releases when the holder's file closes or its process ends
    (Ctrl-C and crashes included), so no stale lock outlives a run; producers still write
    atomically, so an interrupted one leaves nothing half-written. Without POSIX locks (Windows)
    nothing is held: concurrent producers then duplicate the work, each replacing the files
    atomically.
    """
    try:
        import fcntl
    except ImportError:
        fcntl = None
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:  # "a": created if absent, never truncated
        if fcntl is not None:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another run, which holds %s, to finish %s", lock_file, what)
                fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` if it is, or can become, a writable directory; else a UserError naming ``flag``.

    Called before any work, so that a bad output path fails at once; creates nothing.
    """
    from benchbarcode.errors import UserError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p}: is a file, not a directory")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise UserError(f"{flag} {p}: {base} is a file, not a directory")
    if not _can_create_in(base):
        raise UserError(f"{flag} {p}: {base} is not writable")
    return p


def _can_create_in(directory: Path) -> bool:
    """Whether a file can be created in ``directory``, by creating (and removing) one: permission
    bits say nothing for root, read-only mounts or pseudo file systems such as /proc."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".benchbarcode-probe."):
            return True
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` if a file can be written there (with one of ``suffixes`` when given); else a
    UserError naming ``flag``. Creates nothing."""
    from benchbarcode.errors import UserError

    p = Path(path)
    if suffixes and not str(p).lower().endswith(suffixes):
        raise UserError(f"{flag} {p}: expected a file name ending in {' or '.join(suffixes)}")
    if p.is_dir():
        raise UserError(f"{flag} {p}: is a directory, not a file")
    check_output_dir(p.parent, f"{flag} {p}: its folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{flag} {p}: is not writable")
    return p


def cache_root() -> Path:
    """Root of benchbarcode's caches: ``$BENCHBARCODE_CACHE``, else ``$XDG_CACHE_HOME/benchbarcode``,
    else ``~/.cache/benchbarcode``. Embeddings live under ``embeddings/``, pretrained encoders under
    ``pretrained/``, generated data sets under ``data/``."""
    if os.environ.get("BENCHBARCODE_CACHE"):
        return Path(os.environ["BENCHBARCODE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "benchbarcode"
