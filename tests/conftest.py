from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest

# No test may reach a model hub: every test runs offline, with Hugging Face caches of its own
# (set before anything imports huggingface_hub / transformers, which read them at import).
_HF_HOME = Path(tempfile.mkdtemp(prefix="benchbarcode-tests-hf-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_HF_HOME)
os.environ["HF_MODULES_CACHE"] = str(_HF_HOME / "modules")
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("TRANSFORMERS_CACHE", None)
# No test uses the user's benchbarcode cache either: a cache of this process's own (tests that need
# another set BENCHBARCODE_CACHE themselves). Two xdist workers never share one.
os.environ["BENCHBARCODE_CACHE"] = tempfile.mkdtemp(prefix="benchbarcode-tests-cache-")
# Under pytest-xdist (pyproject's addopts: -n 2) each worker is one process per core: one OpenMP
# thread each, and so for the processes the tests start (torchrun, the CLI), unless set already.
# Set before torch is imported, which reads it then.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_BOLD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bold_insects_coi5p.tsv.gz"


@pytest.fixture(scope="module")
def bench_threads():
    """tests/benchmarks: torch's thread count for the module, ``BENCHBARCODE_BENCH_THREADS`` when
    set (a benchmark records ``torch.get_num_threads()``), restored afterwards."""
    import torch

    n = os.environ.get("BENCHBARCODE_BENCH_THREADS")
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny problems, then the previous count again (not the
    whole session's: later modules keep the default)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def bold_path() -> Path:
    """The shared real BOLD data; tests that need it skip on machines without it."""
    if not SHARED_BOLD.is_file():
        pytest.skip("shared BOLD data (../shared/data/bold_insects_coi5p.tsv.gz) not present")
    return SHARED_BOLD


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (gzip when the name ends in .gz)."""
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def install_plugin(tmp_path: Path, monkeypatch, module: str, source: str, group: str, entries: str) -> None:
    """Make ``module`` (``source``) an installed distribution declaring ``entries`` (lines of
    ``name = module:object``) in entry-point ``group``, and let the registry of ``group`` look again."""
    from benchbarcode import registry

    (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{entries}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    which = registry.ENCODERS if group == registry.ENCODERS.group else registry.TASKS
    which.all(plugins=False)  # the built-ins, before the entries are set aside (restored after the test)
    monkeypatch.setattr(which, "_plugins_loaded", False)
    monkeypatch.setattr(which, "_entries", dict(which._entries))
    monkeypatch.setattr(which, "_broken", {})


def pretrain_tiny_mae(out: Path, steps: int) -> Path:
    """A directory this suite pretrained: ``steps`` steps of a one-layer mae on four barcodes."""
    from benchbarcode.models.presets import get_preset
    from benchbarcode.pretrain import PretrainJob, pretrain

    preset = get_preset("mae", "tiny").with_overrides(steps=steps, layers=1, hidden=32, heads=2, intermediate=64,
                                                      batch_size=4, warmup_steps=1)
    pretrain(PretrainJob("mae", preset, ["ACGT" * 40, "TTGACCA" * 20, "GATTACA" * 21, "CCGGTA" * 30], out,
                         progress=False))
    return out
