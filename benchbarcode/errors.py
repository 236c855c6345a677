"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a missing file, an unknown name: anything the user can correct.

    The message is a single line that names where the problem is (file, line, field).
    """

    exit_code = 2


def located(path: object, line: int | None, message: str) -> UserError:
    """A UserError whose message starts with ``path:line:`` (line omitted when unknown)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return UserError(f"{where}: {message}")
