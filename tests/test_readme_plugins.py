"""The plugin example of docs/plugins.md, as a new user takes it: its files written out, installed with pip
into a folder of their own, and run through ``benchbarcode run`` in a fresh process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
BLOCK = re.compile(r"```(python|toml)\n# (my-plugin/\S+)(, added)?\n(.*?)```", re.S)


def example_files() -> dict[str, str]:
    """``{relative path: text}`` of the page's ``# my-plugin/...`` blocks (``, added`` appends)."""
    files: dict[str, str] = {}
    for _, path, added, body in BLOCK.findall(PAGE.read_text(encoding="utf-8")):
        files[path] = files.get(path, "") + "\n" + body if added else body
    return files


def test_the_plugin_example_is_small():
    files = example_files()
    assert set(files) == {"my-plugin/gcplugin/encoder.py", "my-plugin/gcplugin/task.py",
                          "my-plugin/pyproject.toml"}
    encoder_lines = [line for line in files["my-plugin/gcplugin/encoder.py"].splitlines() if line.strip()]
    entry_point = files["my-plugin/pyproject.toml"].split("[project.entry-points.")[1].splitlines()
    assert len(encoder_lines) + len(entry_point) <= 40


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    for path, text in example_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    site = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--no-build-isolation", "--target", str(site), str(root / "my-plugin")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return site


def benchbarcode(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "BENCHBARCODE_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "benchbarcode", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_plugin_example_runs_without_touching_benchbarcode(installed, tmp_path):
    listing = benchbarcode(installed, tmp_path, "encoders", "--json")
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["gc-windows"]["origin"] == "plugin gcplugin 0.1.0"
    assert rows["gc-windows"]["family"] == "composition"

    results = tmp_path / "results"
    proc = benchbarcode(installed, tmp_path, "run", "--encoder", "gc-windows", "--encoder-option", "windows=16",
                        "--data", "sim:1200", "--tasks", "genus-centroid,open-world",
                        "--results-dir", str(results), "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (results / "gc-windows").iterdir()
    task = json.loads((run_dir / "genus-centroid.json").read_text())
    encoder = task["encoder"]
    assert encoder["options"] == {"windows": 16} and encoder["embedding_dim"] == 16
    assert encoder["description"] == "GC fraction in equal windows along the barcode"
    assert 0.0 < task["main_value"] <= 1.0 and task["task"]["protocol"]["similarity"] == "cosine"
    assert json.loads((run_dir / "open-world.json").read_text())["encoder"] == encoder
