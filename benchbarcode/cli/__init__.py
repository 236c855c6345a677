"""Command-line interface: the only code that parses arguments or prints.

One module per command, each with its parser (``add_parser``) and a handler that builds the
command's options, lets them validate themselves, and calls the library. ``main`` turns a
:class:`~benchbarcode.errors.UserError` into one line and exit code 2, Ctrl-C into 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from benchbarcode import __version__
from benchbarcode.cli import cache, compare, data, embed, leaderboard, listings, pretrain, profile, reported, run
from benchbarcode.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``benchbarcode run: error: ... (see: benchbarcode run --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class _Prefixed(logging.Formatter):
    """benchbarcode's own records as ``benchbarcode: message``; another library's (only its
    warnings and errors get here) name their logger and level."""

    def format(self, record: logging.LogRecord) -> str:
        own = record.name == "benchbarcode" or record.name.startswith("benchbarcode.")
        return f"{'benchbarcode' if own else f'{record.name} {record.levelname.lower()}'}: {super().format(record)}"


def _log_to_stderr(quiet: bool) -> None:
    """Log lines on stderr: benchbarcode's from INFO up (``quiet``: from WARNING up), every other
    library's from WARNING up (the root's level). Where logging is set up already (an application
    calling :func:`main`, pytest), it is left as it is."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_Prefixed())
    root.addHandler(handler)
    logging.getLogger("benchbarcode").setLevel(logging.WARNING if quiet else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="benchbarcode",
        description="Benchmark suite for DNA-barcode encoders: pretrain or load an encoder, embed "
                    "barcodes, evaluate frozen features, report.")
    parser.add_argument("--version", action="version", version=f"benchbarcode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = [parser, data.add_parser(sub)]
    listings.add_parsers(sub)
    for command in (pretrain, run, embed, leaderboard, compare, reported, profile):
        command.add_parser(sub)
    groups.append(cache.add_parser(sub))
    for p in groups:  # a group without its subcommand is an error, not a help page
        p.set_defaults(_group=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    own = getattr(args, "_parser", None) or getattr(args, "_group", None) or parser
    if extra:  # said by the (sub)command that got them, with its own usage, in one line
        own.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        choices = [a for a in own._subparsers._group_actions[0].choices] if own._subparsers else []
        own.error(f"a command is required: {', '.join(choices)}")
    _log_to_stderr(quiet=getattr(args, "quiet", False))
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"benchbarcode: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # its text, if any, says where the work stopped
        print(f"benchbarcode: interrupted{f' ({exc})' if str(exc) else ''}; finished work is kept: re-run the "
              "same command to resume (pretrain: add --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the machine refused (disk full, permissions changed mid-run): one line
        if exc.filename is None:
            raise
        print(f"benchbarcode: error: {exc.filename}: {exc.strerror or exc}; finished work is kept",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
