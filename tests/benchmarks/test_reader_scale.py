"""Reading and cleaning BIOSCAN-5M's metadata at its real size (pytest-benchmark).

    python -m pytest tests/benchmarks/test_reader_scale.py -o addopts="" --benchmark-only

A file of BIOSCAN-5M's shape is written once (``BENCHBARCODE_BENCH_BIOSCAN=PATH`` keeps it; by
default a temporary directory): 5,150,850 rows, all 23 columns of the real metadata CSV, the real
split sizes, species names on the labelled splits only (about 9 % of rows), BINs, and barcodes
drawn from the simulator's (``sim``) with 1 % point mutations, so that most rows are distinct.
``load_barcodes(PATH)`` (read, clean, check splits) then runs in a child process; ``extra_info``:
wall seconds, the child's peak resident memory, rows and file size. The issue's goal: <= 90 s
and <= 6 GB on 2 cores.

``test_generate_twin`` times writing the ``sim-large`` twin (benchbarcode.data.twin) at its full
size, 5,150,850 records, in a child process with every CPU this process may use; ``extra_info``:
seconds, peak resident memory of the parent and of the largest worker, file size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SMOKE = os.environ.get("BENCHBARCODE_BENCH_SMOKE") == "1"
SPLITS = {"pretrain": 4_677_756, "train": 289_203, "val": 14_757, "test": 39_373, "key_unseen": 36_465,
          "val_unseen": 8_819, "test_unseen": 7_887, "other_heldout": 76_590}
COLUMNS = ["processid", "sampleid", "taxon", "phylum", "class", "order", "family", "subfamily", "genus",
           "species", "dna_bin", "dna_barcode", "country", "province_state", "coord-lat", "coord-lon",
           "image_measurement_value", "area_fraction", "scale_factor", "inferred_ranks", "split",
           "index_bioscan_1M_insect", "chunk"]

TWIN_CHILD = r"""
import json, resource, sys, time
from benchbarcode.data.twin import write_twin
started = time.perf_counter()
write_twin(sys.argv[1], int(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}))
"""

CHILD = r"""
import json, sys, time
started = time.perf_counter()
from benchbarcode.data import load_barcodes
ds = load_barcodes(sys.argv[1])
seconds = time.perf_counter() - started
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "records": len(ds.table),
                  "splits": {k: int(v) for k, v in ds.table["split"].value_counts().items()}}))
"""


def split_sizes(scale: float) -> dict[str, int]:
    """Rows per split of the file :func:`write_shaped_file` writes at ``scale``."""
    return {s: max(1, int(n * scale)) for s, n in SPLITS.items()}


def write_shaped_file(path: Path, scale: float = 1.0, chunk: int = 500_000, seed: int = 0) -> int:
    """Write a BIOSCAN-5M-shaped metadata CSV (see the module docstring); returns its rows."""
    from benchbarcode.data.simulator import simulate

    rng = np.random.default_rng(seed)
    pool = simulate(20_000, seed)
    pool = pool[pool["species"].notna()].reset_index(drop=True)
    codes = np.frombuffer("".join(s.ljust(660, "N")[:660] for s in pool["sequence"]).encode(),
                          dtype=np.uint8).reshape(len(pool), 660)
    lengths = pool["sequence"].str.len().clip(upper=660).to_numpy()
    sizes = split_sizes(scale)
    labels = np.repeat(list(sizes), list(sizes.values()))
    rng.shuffle(labels)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    written = 0
    for start in range(0, len(labels), chunk):
        split = labels[start:start + chunk]
        n = len(split)
        pick = rng.integers(0, len(pool), n)
        seq = codes[pick].copy()
        hit = rng.random(seq.shape) < 0.01
        seq[hit] = bases[rng.integers(0, 4, int(hit.sum()))]
        seq_len = lengths[pick]
        barcodes = [row[:k].tobytes().decode() for row, k in zip(seq, seq_len)]
        row = pool.iloc[pick]
        labelled = split != "pretrain"
        frame = pd.DataFrame({
            "processid": [f"BIOUG{start + i:08d}-Z01" for i in range(n)],
            "sampleid": [f"BIOUG{start + i:08d}" for i in range(n)],
            "taxon": row["genus"].to_numpy(), "phylum": "Arthropoda", "class": "Insecta",
            "order": row["order"].to_numpy(), "family": row["family"].to_numpy(), "subfamily": "",
            "genus": np.where(labelled | (rng.random(n) < 0.3), row["genus"].to_numpy(), ""),
            "species": np.where(labelled, row["species"].to_numpy(), ""),
            "dna_bin": row["bin"].fillna("").to_numpy(), "dna_barcode": barcodes,
            "country": "Canada", "province_state": "Ontario", "coord-lat": "43.5", "coord-lon": "-80.2",
            "image_measurement_value": rng.integers(1000, 90000, n), "area_fraction": "0.12",
            "scale_factor": "1.0", "inferred_ranks": 4, "split": split,
            "index_bioscan_1M_insect": "", "chunk": rng.integers(1, 200, n)}, columns=COLUMNS)
        frame.to_csv(path, mode="a" if start else "w", header=not start, index=False)
        written += n
    return written


def test_read_and_clean_bioscan5m_shaped_metadata(benchmark):
    keep = os.environ.get("BENCHBARCODE_BENCH_BIOSCAN")
    folder = Path(keep).parent if keep else Path(tempfile.mkdtemp())
    path = Path(keep) if keep else folder / "BIOSCAN_5M_Insect_Dataset_metadata.csv"
    scale = 0.001 if SMOKE else 1.0
    if not path.is_file():
        write_shaped_file(path, scale=scale)
    proc = benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", CHILD, str(path)],),
                              kwargs={"capture_output": True, "text": True, "timeout": 3600},
                              rounds=1, iterations=1)
    file_mb = path.stat().st_size // 2**20
    if not keep:
        path.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    benchmark.extra_info.update({**row, "file_mb": file_mb})
    expected = split_sizes(scale)  # every row is clean (ACGT barcodes, known splits): none dropped
    assert row["splits"] == expected, f"read {row['splits']}, wrote {expected} (a kept file of another scale?)"
    assert row["records"] == sum(expected.values())


def test_generate_twin(benchmark, tmp_path):
    from benchbarcode.data.twin import FULL_RECORDS, MIN_RECORDS

    path = tmp_path / "twin.csv"
    size = MIN_RECORDS * 2 if SMOKE else FULL_RECORDS
    proc = benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", TWIN_CHILD, str(path), str(size)],),
                              kwargs={"capture_output": True, "text": True, "timeout": 3600},
                              rounds=1, iterations=1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    # the twin's documented split sizes: BIOSCAN-5M's at full size, each scaled by size / FULL_RECORDS
    # (rounded; pretrain takes the rest) below it
    expected = {s: round(n * size / FULL_RECORDS) for s, n in SPLITS.items() if s != "pretrain"}
    expected["pretrain"] = size - sum(expected.values())
    written = pd.read_csv(path, usecols=["split"])["split"].value_counts()
    assert {s: int(n) for s, n in written.items()} == expected
    benchmark.extra_info.update({**row, "records": size, "file_mb": path.stat().st_size // 2**20,
                                 "cpus": len(os.sched_getaffinity(0))})
