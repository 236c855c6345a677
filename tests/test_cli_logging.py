"""The command line's log lines: benchbarcode's own from INFO up with its prefix; another
library's INFO (e.g. matplotlib's "generated new fontManager") not at all, its warnings named
by their logger; ``--quiet`` leaves benchbarcode's warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import logging, sys
from benchbarcode.cli import main
assert main(["data", "export", "--data", "nosuch.tsv", "--out", "x.csv", *sys.argv[1:]]) == 2  # logging set, then fails
logging.getLogger("matplotlib.font_manager").info("third-party info")
logging.getLogger("matplotlib.font_manager").warning("third-party warning")
logging.getLogger("benchbarcode.embed").info("own info")
logging.getLogger("benchbarcode.embed").warning("own warning")
"""


def log_lines(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    return [line for line in done.stderr.splitlines() if "info" in line or "warning" in line]


@pytest.mark.parametrize("quiet", [False, True])
def test_only_benchbarcode_logs_info_with_its_prefix(quiet):
    lines = log_lines(*(["--quiet"] if quiet else []))
    third_party = "matplotlib.font_manager warning: third-party warning"
    own = ["benchbarcode: own warning"] if quiet else ["benchbarcode: own info", "benchbarcode: own warning"]
    assert lines == [third_party, *own]
