"""The documentation follows the code: docs/cli.md is the parser's, every documented ``benchbarcode``
command parses (the cheap ones also run), every relative link resolves, and the README's set-up and
test commands are what ``.ci/run`` runs.

Which lines are commands: in a ```bash block, every line that starts with ``benchbarcode`` or runs
``-m benchbarcode`` (torchrun), joined with its ``\\`` continuations, ``# comments`` dropped; in a
```console block, only lines that start with ``$ `` (the others are output)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchbarcode.cli import build_parser, main
from benchbarcode.cli.reference import REGENERATE, anchor, render

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

# Parse-checked only, and why (by subcommand).
EXPENSIVE = {
    "run": "pretrains or loads an encoder, embeds and evaluates: minutes (tests/test_run.py runs it small)",
    "pretrain": "trains an encoder: minutes (tests/test_pretrain.py runs it small)",
    "embed": "embeds a split, after pretraining an in-house encoder: minutes (tests/test_run.py)",
    "profile": "times an encoder over repeats: tens of seconds (tests/test_profile.py)",
    "compare": "needs two finished runs (RUN_A and RUN_B stand for them)",
    "leaderboard": "needs the result files of documented runs (tests/test_leaderboard.py renders the committed board)",
}
SMALL_DATA = re.compile(r"sim(:\d+(:\d+)?)?")  # generated in a second; anything else is a file, BIOSCAN-5M or the 5M twin


def commands_in(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line number, launcher, argv after benchbarcode)`` of each command in ``text``'s code blocks;
    launcher is ``benchbarcode`` or ``torchrun``."""
    found = []
    for block in FENCE.finditer(text):
        language, body = block.group(1), block.group(2)
        if language not in ("bash", "console"):
            continue
        first = text.count("\n", 0, block.start(2)) + 1
        lines, number = body.splitlines(), 0
        while number < len(lines):
            start, line = number, lines[number]
            while line.endswith("\\") and number + 1 < len(lines):
                number += 1
                line = line[:-1] + " " + lines[number].strip()
            number += 1
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            words = shlex.split(line, comments=True)
            if words[:1] == ["benchbarcode"]:
                found.append((first + start, "benchbarcode", words[1:]))
            elif "-m" in words and words[words.index("-m") + 1:][:1] == ["benchbarcode"]:
                found.append((first + start, words[0], words[words.index("-m") + 2:]))
    return found


def documented() -> list:
    return [pytest.param(launcher, argv, id=f"{page.name}:{number}")
            for page in PAGES for number, launcher, argv in commands_in(page.read_text(encoding="utf-8"))]


def parse_only(launcher: str, argv: list[str]) -> str | None:
    """Why the command is not run here, or None."""
    if launcher != "benchbarcode":
        return f"runs under {launcher}'s processes"
    if argv and argv[0] in EXPENSIVE:
        return EXPENSIVE[argv[0]]
    if "--data" in argv and not SMALL_DATA.fullmatch(argv[argv.index("--data") + 1]):
        return "reads data that is not in the repository, or generates BIOSCAN-5M's twin"
    return None


def test_the_extraction_rules():
    text = ("```bash\npip install x\nbenchbarcode encoders      # a comment\n"
            "torchrun --nproc_per_node=2 -m benchbarcode run \\\n    --encoder kmer --data sim\n```\n"
            "```console\n$ benchbarcode tasks\nbenchbarcode: not a command, output\n```\n"
            "```text\nbenchbarcode run --encoder mae\n```\n")
    assert commands_in(text) == [(3, "benchbarcode", ["encoders"]),
                                 (4, "torchrun", ["run", "--encoder", "kmer", "--data", "sim"]),
                                 (8, "benchbarcode", ["tasks"])]


def test_the_main_command_is_found_and_some_commands_run():
    readme = commands_in((ROOT / "README.md").read_text(encoding="utf-8"))
    assert ("benchbarcode", ["run", "--encoder", "mae"]) in [(launcher, argv) for _, launcher, argv in readme]
    assert [p for p in documented() if parse_only(*p.values) is None]


@pytest.mark.parametrize(("launcher", "argv"), documented())
def test_a_documented_command_parses(launcher, argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0; a mistake exits 2
        assert exc.code == 0 and {"-h", "--help", "--version"} & set(argv), f"does not parse: {shlex.join(argv)}"
        return
    assert getattr(args, "func", None), f"names no command: {shlex.join(argv)}"


@pytest.mark.parametrize(("launcher", "argv"), [p for p in documented() if parse_only(*p.values) is None])
def test_a_cheap_documented_command_runs(launcher, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    try:
        code = main(argv)
    except SystemExit as exc:  # --help, --version
        code = exc.code
    assert code == 0, f"{shlex.join(argv)}: exit {code}: {capsys.readouterr().err[-2000:]}"


def test_the_cli_reference_is_the_parser():
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == render(), f"docs/cli.md differs from the parser; regenerate it: {REGENERATE}"


def headings(page: Path) -> Iterator[str]:
    """The anchors of ``page``'s headings (GitHub's: a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if re.match(r"#{1,6} ", line):
            slug = anchor(line.lstrip("#").strip())
            seen[slug] = seen.get(slug, -1) + 1
            yield slug if seen[slug] == 0 else f"{slug}-{seen[slug]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif fragment and file.suffix == ".md" and fragment not in set(headings(file)):
            broken.append(f"{target}: no heading #{fragment}")
    assert broken == []


def test_readme_size():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def ci_section(name: str) -> list[str]:
    """The commands under ``# README "name"`` in .ci/run, up to the next ``# README`` comment."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    section = text.split(f'# README "{name}"\n')[1].split("# README ")[0]
    return [line.strip() for line in section.splitlines() if line.strip() and not line.startswith("#")]


def readme_section(name: str) -> list[str]:
    """The commands of the first code block under the README's ``## name``, ``&&`` split."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split(f"\n## {name}\n")[1]
    block = FENCE.search(text).group(2)
    return [part.strip() for line in block.splitlines() for part in line.split("&&") if part.strip()]


@pytest.mark.parametrize("name", ["Set-up", "Tests"])
def test_readme_commands_are_what_ci_runs(name):
    ci, readme = ci_section(name), readme_section(name)
    remaining = iter(ci)
    assert readme and all(command in remaining for command in readme), (readme, ci)
