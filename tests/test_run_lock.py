"""Concurrent runs on one cache: the lock (``fileio.exclusive``) makes the second wait for, then
reuse, the first's pretraining and embeddings; a dead holder's lock is released by the OS."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchbarcode.fileio import exclusive

TESTS = Path(__file__).resolve().parent
WAITING = "waiting for another run"


def _produce_once(lock: Path, product: Path, made: list, inside: threading.Event | None = None,
                  hold: threading.Event | None = None) -> str:
    """What every caller of the lock does: look, lock, look again, and only then make it."""
    if product.is_file():
        return product.read_text()
    with exclusive(lock, f"writing {product.name}"):
        if inside is not None:
            inside.set()
        if product.is_file():  # another holder made it meanwhile
            return product.read_text()
        if hold is not None:
            hold.wait(10)  # until the second caller is known to be waiting (or, without a lock, gone past)
        made.append(threading.current_thread().name)
        product.write_text(threading.current_thread().name)
        return product.read_text()


class _Seen(logging.Handler):
    """Sets ``event`` at the first record saying that a caller waits."""

    def __init__(self):
        super().__init__()
        self.event, self.messages = threading.Event(), []

    def emit(self, record):
        self.messages.append(record.getMessage())
        if WAITING in record.getMessage():
            self.event.set()


def test_the_second_holder_waits_and_reuses_the_first_ones_product(tmp_path):
    lock, product = tmp_path / "thing.lock", tmp_path / "thing"
    seen, made, got = _Seen(), [], {}
    logger = logging.getLogger("benchbarcode")
    logger.addHandler(seen)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        inside = threading.Event()
        first = threading.Thread(target=lambda: got.setdefault(
            "first", _produce_once(lock, product, made, inside, seen.event)), name="first")
        first.start()
        assert inside.wait(10)  # the first holds the lock before the second comes
        second = threading.Thread(target=lambda: got.setdefault("second", _produce_once(lock, product, made)),
                                  name="second")
        second.start()
        first.join(20)
        second.join(20)
    finally:
        logger.removeHandler(seen)
        logger.setLevel(previous)
    assert made == ["first"]  # made once
    assert got == {"first": "first", "second": "first"}  # the second read the first's product
    waits = [m for m in seen.messages if WAITING in m]
    assert len(waits) == 1 and str(lock) in waits[0] and "writing thing" in waits[0]


def _held(lock: Path) -> bool:
    """Whether some open file holds ``lock`` (tried without waiting)."""
    import fcntl

    if not lock.exists():
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


HOLDER = """
import sys, time
from benchbarcode.fileio import exclusive
with exclusive(sys.argv[1], "nothing"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_lock_dies_with_its_holder(tmp_path, sig):
    """Ctrl-C or a crash while holding the lock leaves no stale lock: the next run gets it at once
    (the empty lock file itself stays). The holder gets SIGINT as from a terminal, whatever pytest
    inherited (a pytest started in the background ignores it, and so would its children)."""
    lock = tmp_path / "key.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _held(lock)
        holder.send_signal(sig)
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert not _held(lock) and lock.is_file()


# ----------------------------------------------------------------------------- two runs at once
CHILD = """
import json, logging, sys, time
from pathlib import Path

root, name = Path(sys.argv[1]), sys.argv[2]
logging.basicConfig(filename=root / f"log-{name}.txt", level=logging.INFO, format="%(message)s")

from benchbarcode.models import presets
presets.PRESETS = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
    steps=3, layers=1, hidden=32, heads=2, intermediate=64, batch_size=8, warmup_steps=1)} for o in presets.PRESETS}

def note(text):
    with open(root / "work.txt", "a") as fh:
        fh.write(f"{text} {name}\\n")

# slow enough that, without the locks, the other run would start the same work meanwhile
import benchbarcode.pretrain as pretrain_module
real_pretrain = pretrain_module.pretrain
def pretrain(job):
    note("pretrain")
    time.sleep(3)
    return real_pretrain(job)
pretrain_module.pretrain = pretrain

from benchbarcode.encoders.inhouse import TransformerEncoder
real_embed = TransformerEncoder.embed
def embed(self, sequences, *args, **kwargs):
    note(f"embed:{len(sequences)}")
    time.sleep(4)  # the other run loads the encoder meanwhile (its first transformers import: seconds)
    return real_embed(self, sequences, *args, **kwargs)
TransformerEncoder.embed = embed

from benchbarcode.data import load_barcodes
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec

ds = load_barcodes("sim:1200")
(root / f"ready-{name}").touch()
while not all((root / f"ready-{n}").exists() for n in ("a", "b")):  # start together
    time.sleep(0.02)
report = run_benchmark(RunOptions(encoder=EncoderSpec("mae", preset="unit", device="cpu"), tasks=("open-world",),
                                  results_dir=str(root / "results"), progress=False), ds)
(root / f"report-{name}.json").write_text(json.dumps(
    {"run_id": report.run_id, "pretrain_s": report.timings_s["pretrain"],
     "results": {s.task: s.result for s in report.statuses}}))
"""


@pytest.mark.slow
def test_two_runs_on_one_cache_pretrain_and_embed_once(tmp_path):
    env = {**os.environ, "BENCHBARCODE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), name], env=env,
                                 stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    errors = [child.communicate(timeout=600)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], errors
    work = (tmp_path / "work.txt").read_text().splitlines()  # "<what> <process>", one line each
    pretrained = [line for line in work if line.startswith("pretrain ")]
    embedded = [line for line in work if line.startswith("embed:")]
    assert len(pretrained) == 1, work  # one process pretrained; the other waited and loaded it
    assert len(embedded) == 2, work  # open-world's two splits (train, test_unseen), each embedded once
    reports = [json.loads((tmp_path / f"report-{n}.json").read_text()) for n in ("a", "b")]
    assert sorted(r["pretrain_s"] > 0 for r in reports) == [False, True]
    assert reports[0]["run_id"] == reports[1]["run_id"]
    scores = [r["results"]["open-world"]["scores"] for r in reports]
    assert scores[0] == scores[1]
    waits = [line for n in ("a", "b") for line in (tmp_path / f"log-{n}.txt").read_text().splitlines()
             if WAITING in line]
    key = reports[0]["results"]["open-world"]["pretraining_key"]
    assert any(str(tmp_path / "cache" / "pretrained" / f"{key}.lock") in line for line in waits), waits
    assert len([d for d in (tmp_path / "cache" / "pretrained").iterdir() if d.is_dir()]) == 1
