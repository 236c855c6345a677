"""One path through the code: each command resolves its encoder once; a broken plugin breaks only
itself; no function in the core grows past a screen; plugins need only the public module."""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import install_plugin

from benchbarcode import registry
from benchbarcode.cli import main
from benchbarcode.models import presets

ROOT = Path(__file__).resolve().parents[1]
DATA = "sim:1200"
LONGEST = 60  # lines, def to last line


@pytest.fixture
def lookups(monkeypatch):
    """Every registry lookup of an encoder name, counted."""
    counted: Counter = Counter()
    real = registry.ENCODERS.get

    def get(name):
        counted[name] += 1
        return real(name)

    monkeypatch.setattr(registry.ENCODERS, "get", get)
    return counted


@pytest.fixture
def unit_preset(monkeypatch):
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        steps=2, layers=1, hidden=32, heads=2, intermediate=64, batch_size=8, warmup_steps=1)}
        for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)


def test_run_with_control_over_two_seeds_looks_each_encoder_up_once(tmp_path, monkeypatch, lookups, unit_preset):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    assert main(["run", "--encoder", "mae", "--preset", "unit", "--with-control", "--seeds", "0,1", "--data", DATA,
                 "--tasks", "open-world", "--results-dir", str(tmp_path / "results"), "--device", "cpu",
                 "--quiet"]) == 0
    assert len(list((tmp_path / "results" / "random").iterdir())) == 2  # the control ran at both seeds
    assert dict(lookups) == {"mae": 1, "random": 1}


def test_embed_looks_its_encoder_up_once(tmp_path, monkeypatch, lookups):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    assert main(["embed", "--encoder", "random", "--encoder-option", "like=gpt", "--data", DATA,
                 "--split", "test_unseen", "--out", str(tmp_path / "e.npz"), "--quiet"]) == 0
    assert dict(lookups) == {"random": 1}


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_profile_looks_its_encoder_up_once(tmp_path, lookups, mode):
    assert main(["profile", "--encoder", "mae", "--mode", mode, "--batch-sizes", "1", "--repeats", "1",
                 "--min-seconds", "0", "--warmup", "0", "--no-memory", "--device", "cpu",
                 "--results-dir", str(tmp_path), "--quiet"]) == 0
    assert dict(lookups) == {"mae": 1}


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """An installed plugin whose module raises on import."""
    install_plugin(tmp_path, monkeypatch, "bbbroken_demo", "raise RuntimeError('the plugin module is broken')\n",
                   "benchbarcode.encoders", "broken = bbbroken_demo:Encoder")
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    yield
    sys.modules.pop("bbbroken_demo", None)


def test_a_plugin_that_fails_to_import_breaks_only_itself(tmp_path, capsys, broken_plugin):
    assert main(["encoders"]) == 0
    out = capsys.readouterr().out
    assert "| kmer " in out and "| mae " in out
    assert "plugin (broken)" in next(line for line in out.splitlines() if line.startswith("| broken "))
    assert main(["encoders", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["broken"]["origin"] == "plugin (broken)" and "kmer" in rows
    assert rows["broken"]["description"] == ("broken: encoder plugin 'broken' (bbbroken_demo:Encoder) failed to "
                                             "load: RuntimeError: the plugin module is broken")
    assert main(["run", "--encoder", "kmer", "--data", DATA, "--tasks", "open-world",
                 "--results-dir", str(tmp_path / "results"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", "--encoder", "broken", "--data", DATA, "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encoder plugin 'broken'" in err and "the plugin module is broken" in err
    assert not (tmp_path / "results" / "broken").exists()


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


@pytest.mark.parametrize("folder", ["benchbarcode", "encoders", "tasks"])
def test_no_function_in_the_package_is_longer_than_a_screen(folder):
    assert _long_functions(ROOT / folder) == []


def test_the_length_check_can_fail(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST))
    (tmp_path / "long.py").write_text(f"def f():\n{body}\n")
    assert _long_functions(tmp_path) == [f"{tmp_path.name}/long.py:1 f ({LONGEST + 1} lines)"]


def test_the_documented_plugins_import_only_the_public_module():
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = [b for b in page.split("```python")[1:] if "# my-plugin/" in b.split("\n", 2)[1]]
    imports = {line.strip() for b in blocks for line in b.split("```")[0].splitlines()
               if line.strip().startswith(("from benchbarcode", "import benchbarcode"))}
    assert imports and all(line.startswith("from benchbarcode.api import") for line in imports), imports


def test_the_layers_say_what_they_are():
    import benchbarcode
    import benchbarcode.encoders
    import benchbarcode.models
    import benchbarcode.tasks

    for module, role in ((benchbarcode.models, "architectures"), (benchbarcode.encoders, "adapters"),
                         (benchbarcode.tasks, "evaluation"), (benchbarcode, "core")):
        assert role in (module.__doc__ or ""), module.__name__
    assert "## Layout" in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
