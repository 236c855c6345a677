"""docs/cli.md, rendered from the parser: every command's usage, subcommands and options.

``python -m benchbarcode.cli.reference > docs/cli.md`` regenerates it; ``tests/test_docs.py`` fails
when the file and :func:`benchbarcode.cli.build_parser` differ. The page is built from the parser's
actions, not from ``format_help()``, whose layout follows the terminal's width and changes between
Python versions (3.13 lists ``-o, --out FILE``); usage lines wrap at :data:`WIDTH` columns.
"""

from __future__ import annotations

import argparse
import re
import textwrap

from benchbarcode.cli import build_parser

REGENERATE = "python -m benchbarcode.cli.reference > docs/cli.md"
WIDTH = 100


def commands(parser: argparse.ArgumentParser, summary: str = "") -> list[tuple[argparse.ArgumentParser, str]]:
    """``(parser, one-line help)`` for ``parser`` and every parser below it, depth first, in the
    order they were added."""
    found = [(parser, summary)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                found += commands(child, helps.get(name) or "")
    return found


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def argument(action: argparse.Action) -> str:
    """How the action is typed: ``--device auto|cpu|cuda``, ``--out FILE``, ``--json``, ``RESULTS_A``."""
    if action.nargs not in (None, 0):
        raise ValueError(f"{action.dest}: nargs={action.nargs!r} is not rendered; extend {__name__}.argument")
    value = "" if action.nargs == 0 else action.metavar or (
        "|".join(map(str, action.choices)) if action.choices else action.dest.upper())
    return " ".join(filter(None, [(action.option_strings or [""])[-1], value]))


def usage(parser: argparse.ArgumentParser) -> str:
    parts = [parser.prog]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            parts.append(f"{action.metavar} ...")
        elif action.option_strings and not action.required:
            parts.append(f"[{argument(action)}]")
        else:
            parts.append(argument(action))
    glued = " ".join(part.replace(" ", "\N{NO-BREAK SPACE}") for part in parts)  # break between arguments only
    return textwrap.fill(glued, WIDTH, subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False).replace("\N{NO-BREAK SPACE}", " ")


def flat(text: str) -> str:
    return " ".join(text.split())


def cell(text: str) -> str:
    """``text`` in one markdown table cell."""
    return flat(text).replace("|", "\\|")


def options_table(parser: argparse.ArgumentParser) -> str:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            rows += [f"| [`{cell(child.prog)}`](#{anchor(child.prog)}) | {cell(choice.help or '')} |"
                     for choice, child in zip(action._choices_actions, action.choices.values())]
            continue
        text = argparse.HelpFormatter(parser.prog)._expand_help(action) if action.help else ""
        required = " (required)" if action.required and action.option_strings else ""
        rows.append(f"| `{cell(argument(action))}`{required} | {cell(text)} |")
    return "\n".join(["| argument | what |", "|---|---|", *rows]) if rows else ""


def page(parser: argparse.ArgumentParser, summary: str) -> str:
    about = parser.description or summary
    parts = [f"## `{parser.prog}`", flat(about),
             f"```text\n{usage(parser)}\n```", options_table(parser)]
    return "\n\n".join(filter(None, parts)) + "\n"


def render() -> str:
    parsers = commands(build_parser())
    index = "\n".join(f"- [`{p.prog}`](#{anchor(p.prog)})" for p, _ in parsers)
    return (f"# Command-line reference\n\nGenerated from the parser (`benchbarcode.cli.build_parser()`); do not "
            f"edit: `{REGENERATE}` rewrites it, and a test fails when the two differ. Every command also takes "
            f"`-h` / `--help`.\n\n{index}\n\n" + "\n".join(page(p, summary) for p, summary in parsers))


if __name__ == "__main__":
    print(render(), end="")
