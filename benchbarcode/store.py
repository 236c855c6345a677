"""The results store: where result files live, and what is already done.

Layout: ``DIR/<encoder>/<run-id>/<task>.json`` (a profile: ``.../<profile-id>/profile.json``),
its per-query outcomes beside it in ``<task>.queries.tsv.gz``,
``<encoder>`` being :func:`safe_name` of the encoder's name. The store is the only code that
builds these paths, writes and scans them, and answers the resume questions: which of a run's
results exist (:meth:`ResultStore.existing`) and whether a run of an encoder that would be
pretrained first is already finished (:meth:`ResultStore.finished_run`, one lookup by the
pretraining key each result records). Files written before results recorded that key are
upgraded on read: the key is the name of the pretraining directory their checkpoint path names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from benchbarcode import per_query as queries
from benchbarcode.contracts import QueryOutcomes
from benchbarcode.errors import UserError
from benchbarcode.fileio import write_bytes_atomic
from benchbarcode.results import read_result, write_result


def safe_name(text: str) -> str:
    """``text`` as one path component: characters other than letters, digits, ``-_.`` become
    ``-`` (``hf:org/model`` -> ``hf-org-model``)."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    while "--" in name:
        name = name.replace("--", "-")
    return name.strip("-.") or "encoder"


#: what a result file that fails validation tells the user, by who reads it
RERUN_HINT = "--overwrite recomputes it"
SKIP_HINT = "--skip-invalid leaves it out"


def _read(path: Path, hint: str) -> dict:
    """:func:`read_result`, its error saying how to get past the file (``hint``)."""
    try:
        return read_result(path)
    except UserError as exc:
        raise UserError(f"{exc}; {hint}") from None


def pretraining_key(result: dict) -> str | None:
    """The cached pretraining a result's encoder came from (None: not pretrained by ``run``)."""
    if result.get("pretraining_key"):
        return result["pretraining_key"]
    path = (result.get("encoder", {}).get("checkpoint") or {}).get("path")  # written before the key
    return Path(path).name if path else None


class ResultStore:
    """Result files under ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def run_dir(self, encoder: str, run_id: str) -> Path:
        return self.root / safe_name(encoder) / run_id

    def path(self, encoder: str, run_id: str, task: str) -> Path:
        return self.run_dir(encoder, run_id) / f"{task}.json"

    def write(self, result: dict, per_query: QueryOutcomes | None = None) -> Path:
        """Write ``result`` (a task's or a profile's) where it belongs, atomically; its path.
        ``per_query`` outcomes go to the file beside it first (:mod:`benchbarcode.per_query`),
        which the result then names with its SHA-256."""
        task = "profile" if result.get("kind") == "profile" else result["task"]["name"]
        path = self.path(result["encoder"]["name"], result["run_id"], task)
        if per_query is not None:
            data = queries.to_bytes(per_query)
            beside = path.with_name(task + queries.SUFFIX)
            write_bytes_atomic(beside, data)
            result = {**result, "per_query": queries.record(per_query, beside.name, data)}
        write_result(path, result)
        return path

    def existing(self, encoder: str, run_id: str, tasks: Iterable[str]) -> dict[str, tuple[Path, dict]]:
        """``{task: (path, result)}`` of the results of ``tasks`` this run already wrote."""
        found = {}
        for task in tasks:
            path = self.path(encoder, run_id, task)
            if path.is_file():
                found[task] = (path, _read(path, RERUN_HINT))
        return found

    def finished_run(self, encoder: str, key: str, data_hash: str, seed: int, limit: int | None,
                     tasks: Iterable[str]) -> tuple[Path, dict[str, tuple[Path, dict]]] | None:
        """A run of ``encoder`` from the pretraining ``key`` on this data, seed and limit that holds
        every result of ``tasks``: ``(run directory, {task: (path, result)})``, or None."""
        tasks = list(tasks)
        for run_dir in sorted((self.root / safe_name(encoder)).glob("*")):
            paths = {task: run_dir / f"{task}.json" for task in tasks}
            if not paths or not all(p.is_file() for p in paths.values()):
                continue
            first = _read(next(iter(paths.values())), RERUN_HINT)
            if (pretraining_key(first) == key and first["data"]["content_hash"] == data_hash
                    and first["seeds"].get("run") == seed and first["data"].get("limit") == limit):
                return run_dir, {task: (path, _read(path, RERUN_HINT)) for task, path in paths.items()}
        return None

    def scan(self, skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
        """``(results, problems)``: every result file, validated, in path order. A file that fails
        validation is a UserError naming it (and ``--skip-invalid``), or with ``skip_invalid`` left
        out and described in one line of ``problems``."""
        located, problems = self.scan_located(skip_invalid)
        return [result for _, result in located], problems

    def scan_located(self, skip_invalid: bool = False) -> tuple[list[tuple[Path, dict]], list[str]]:
        """:meth:`scan` with each result's path (its per-query outcomes lie beside it)."""
        if not self.root.is_dir():
            raise UserError(f"{self.root}: no such results directory")
        located, problems = [], []
        for path in sorted(p for p in self.root.glob("*/*/*.json") if not p.name.startswith(".")):
            try:
                located.append((path, read_result(path)))
            except UserError as exc:
                if not skip_invalid:
                    raise UserError(f"{exc}; {SKIP_HINT}") from None
                problems.append(str(exc))
        return located, problems


def load_results(directory: str | os.PathLike) -> list[dict]:
    """Every result under ``directory``, validated (the first invalid file is a UserError)."""
    return ResultStore(directory).scan()[0]
