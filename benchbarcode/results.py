"""The result file: one JSON object per (encoder, run, task), built, validated, written, read.

The file format only; where files live and what is already done is :mod:`benchbarcode.store`.
Validation is one table of required fields (:data:`REQUIRED`) checked by hand; no schema library.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


from benchbarcode import __version__
from benchbarcode.canonical import digest, plain
from benchbarcode.contracts import TaskOutcome
from benchbarcode.errors import UserError, located
from benchbarcode.fileio import write_text_atomic

# 2: "unscored" results (main_value null, with the reason); 3: profile results; 4: sampling intervals
# and per-query outcomes (files of schema <= 3 have neither: reports say "interval: not recorded")
SCHEMA_VERSION = 4
_PACKAGES = ("torch", "transformers", "numpy", "scikit-learn", "pandas", "scipy",
             "umap-learn", "pynndescent", "numba")  # the clustering scores move with the last three

# (dotted field, type): "int", "number" (finite), "str", "object", "list"; "a|b" allows either,
# a trailing "?" allows null. Every value of "scores" and "scores_std" must be a finite number.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("schema_version", "int"), ("benchbarcode_version", "str"), ("date", "str"), ("run_id", "str"),
    ("command", "list"), ("environment", "object"), ("device", "str"), ("dtype", "str"),
    ("batch_size", "int"),
    ("encoder", "object"), ("encoder.name", "str"), ("encoder.family", "str"),
    ("encoder.objective", "str"), ("encoder.parameters", "int?"), ("encoder.embedding_dim", "int"),
    ("encoder.pooling", "str?"), ("encoder.checkpoint", "object"), ("encoder.budget", "object"),
    ("data", "object"), ("data.name", "str"), ("data.source", "str"), ("data.content_hash", "str"),
    ("data.records", "int"), ("data.split_origin", "str"), ("data.split_seed", "int?"),
    ("data.split_sizes", "object"),
    ("task", "object"), ("task.name", "str"), ("task.version", "int|str"), ("task.metrics", "list"),
    ("task.main_score", "str"),
    ("seeds", "object"), ("scores", "object"), ("scores_std", "object"), ("counts", "object"),
    ("main_score", "str"), ("main_value", "number?"),
    ("timings_s", "object"), ("timings_s.pretrain", "number"), ("timings_s.embed", "number"),
    ("timings_s.evaluate", "number"), ("cache", "object"),
)
# Optional fields, checked when present (files written before them lack them).
OPTIONAL: tuple[tuple[str, str], ...] = (("pretraining_key", "str"), ("intervals", "object"),
                                          ("per_query", "object"), ("per_query.file", "str"),
                                          ("per_query.sha256", "str"), ("per_query.rows", "int"),
                                          ("per_query.columns", "list"), ("per_query.main", "list"),
                                          ("per_query.kind", "str"))
# each entry of "intervals" (one metric)
REQUIRED_INTERVAL: tuple[tuple[str, str], ...] = (("low", "number"), ("high", "number"), ("n", "int"),
                                                  ("method", "str"))
# A profile result (``kind: "profile"``, :mod:`benchbarcode.profile`): the same provenance fields,
# the encoder record, and what was measured instead of a task and scores.
REQUIRED_PROFILE: tuple[tuple[str, str], ...] = (
    ("schema_version", "int"), ("kind", "str"), ("benchbarcode_version", "str"), ("date", "str"),
    ("run_id", "str"), ("command", "list"), ("environment", "object"), ("device", "str"), ("dtype", "str"),
    ("encoder", "object"), ("encoder.name", "str"), ("encoder.family", "str"), ("encoder.objective", "str"),
    ("encoder.parameters", "int?"), ("encoder.embedding_dim", "int?"),
    ("profile", "object"), ("profile.mode", "str"), ("profile.machine", "str"), ("profile.length_nt", "int"),
    ("profile.cost_key", "str"), ("profile.measurements", "list"),
)
# each measurement (one batch size)
REQUIRED_MEASUREMENT: tuple[tuple[str, str], ...] = (
    ("batch_size", "int"), ("repeats", "int"), ("seconds_median", "number"), ("sequences_per_s", "number"),
    ("nucleotides_per_s", "number"), ("tokens_per_s", "number?"), ("peak_mb", "number?"),
    ("flops_per_sequence", "number?"), ("utilisation", "number?"),
)
_EXPECTED = {"int": "an integer", "number": "a number", "str": "a string", "object": "an object",
             "list": "a list"}


def environment() -> dict:
    """Package versions, Python, platform, CPU count and threads of this process (UMAP's and
    BLAS's results move in the last digits with the number of threads)."""
    versions: dict[str, str | None] = {"benchbarcode": __version__}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    torch = sys.modules.get("torch")  # threads as the run used them; never imported just for this
    threads = {"torch": torch.get_num_threads() if torch is not None else None,
               **{name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    return {"versions": versions, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "threads": threads}


def build_result(*, run_id: str, task_meta: dict, encoder_meta: dict, data_identity: dict, device: str,
                 dtype: str, batch_size: int, seeds: dict, outcome: TaskOutcome, timings_s: dict,
                 cache: dict | None = None, command: list[str] | None = None,
                 pretraining_key: str | None = None) -> dict:
    """The validated result of one task; ``outcome`` is what the task returned.

    ``seeds`` (e.g. the split seed) is recorded with the task's own seeds under ``seeds["task"]``;
    an outcome's ``protocol`` restates entries of the task's ``method_keys`` (e.g. the distance an
    alignment search used) in the recorded protocol; its extras (e.g. a probe's ``selected``
    hyper-parameters) are kept under their names. ``pretraining_key`` names the cached pretraining
    the encoder came from (:mod:`benchbarcode.store` finds finished runs by it).
    """
    outcome = TaskOutcome.of(outcome, task_meta.get("name", "?"))
    restated = dict(outcome.protocol)
    stray = sorted(set(restated) - set(task_meta.get("method_keys") or ()))
    if stray:
        raise ValueError(f"task {task_meta.get('name')!r}: outcome protocol entry {stray[0]!r} is not "
                         "one of the task's method_keys")
    if restated:
        task_meta = {**task_meta, "protocol": {**task_meta.get("protocol", {}), **restated}}
    main = task_meta.get("main_score")
    scores, unscored = dict(outcome.scores), outcome.unscored
    if unscored is None and main not in scores:
        raise UserError(f"task {task_meta.get('name')!r}: main score {main!r} is not one of its "
                        f"scores ({', '.join(scores)})")
    result = {
        "schema_version": SCHEMA_VERSION,
        "benchbarcode_version": __version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": run_id,
        "command": list(command) if command is not None else [],
        "environment": environment(),
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "encoder": encoder_meta,
        "data": data_identity,
        "task": task_meta,
        "seeds": {**seeds, "task": list(outcome.seeds)},
        "scores": scores,
        "scores_std": dict(outcome.scores_std),
        "counts": dict(outcome.counts),
        "intervals": {k: dict(v) for k, v in outcome.intervals.items()},
        "main_score": main,
        "main_value": None if unscored is not None else scores[main],
        "timings_s": timings_s,
        "cache": cache if cache is not None else {},
        **({"unscored": str(unscored)} if unscored is not None else {}),
        **({"pretraining_key": pretraining_key} if pretraining_key is not None else {}),
    }
    clash = sorted(set(outcome.extras) & set(result))
    if clash:
        raise ValueError(f"task {task_meta.get('name')!r}: outcome key {clash[0]!r} clashes with a result field")
    result = plain({**result, **outcome.extras})
    validate_result(result, where=f"result of task {task_meta.get('name')!r}")
    return result


def build_profile_result(*, run_id: str, encoder_meta: dict, device: str, dtype: str, profile: dict,
                         command: list[str] | None = None) -> dict:
    """The validated result of ``benchbarcode profile`` (see :mod:`benchbarcode.profile`)."""
    result = plain({
        "schema_version": SCHEMA_VERSION, "kind": "profile", "benchbarcode_version": __version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run_id": run_id,
        "command": list(command) if command is not None else [], "environment": environment(),
        "device": device, "dtype": dtype, "encoder": encoder_meta, "profile": profile,
    })
    validate_result(result, where=f"profile of encoder {encoder_meta.get('name')!r}")
    return result


def task_variant(result: dict, method_keys: set[str] | None = None) -> tuple:
    """What must agree for two results to be compared (share a leaderboard table, or go through
    ``benchbarcode compare``): the task's version and protocol, less the entries the compared method
    decides (``TaskMeta.method_keys``, e.g. cosine vs alignment; by default the result's own)."""
    task = result["task"]
    keys = set(task.get("method_keys") or ()) if method_keys is None else method_keys
    protocol = {k: v for k, v in task.get("protocol", {}).items() if k not in keys}
    return str(task["version"]), digest(protocol, 16)


def is_profile(result: dict) -> bool:
    """Whether ``result`` is a profile (not a task result)."""
    return result.get("kind") == "profile"


def _type_ok(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        return value is None or _type_ok(value, kind[:-1])
    if "|" in kind:
        return any(_type_ok(value, k) for k in kind.split("|"))
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    return isinstance(value, {"str": str, "object": dict, "list": list}[kind])


def _describe(kind: str) -> str:
    words = " or ".join(_EXPECTED[k] for k in kind.rstrip("?").split("|"))
    return words + (" or null" if kind.endswith("?") else "")


def _get(result: dict, dotted: str) -> tuple[bool, Any]:
    value: Any = result
    for name in dotted.split("."):
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def _non_finite(value: Any, dotted: str) -> str | None:
    """The dotted name of the first NaN or infinity in ``value`` (JSON has neither), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return dotted
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        found = _non_finite(item, f"{dotted}.{name}" if dotted else str(name))
        if found:
            return found
    return None


def _check_fields(record: dict, table: tuple, where: str, prefix: str = "") -> None:
    for dotted, kind in table:
        present, value = _get(record, dotted)
        if not present:
            raise located(where, None, f"field {prefix + dotted!r}: missing")
        if not _type_ok(value, kind):
            raise located(where, None, f"field {prefix + dotted!r}: expected {_describe(kind)}")


def validate_result(result: dict, where: str = "result") -> None:
    """Raise a UserError naming ``where`` and the first bad field of ``result``."""
    if not isinstance(result, dict):
        raise located(where, None, "expected a JSON object")
    schema = result.get("schema_version")
    if _type_ok(schema, "int") and schema > SCHEMA_VERSION:
        raise located(where, None, f"written by a newer benchbarcode (result schema {schema}, "
                                   f"this version reads <= {SCHEMA_VERSION}); upgrade benchbarcode")
    kind = result.get("kind", "task")
    if kind not in ("task", "profile"):
        raise located(where, None, f"field 'kind': expected task or profile, not {kind!r}")
    _check_fields(result, REQUIRED if kind == "task" else REQUIRED_PROFILE, where)
    _check_fields(result, tuple(f for f in OPTIONAL if _get(result, f[0])[0]), where)
    bad = _non_finite(result, "")
    if bad:
        raise located(where, None, f"field {bad!r}: expected a finite number, not NaN or infinity")
    if schema < 1:
        raise located(where, None, f"field 'schema_version': expected 1..{SCHEMA_VERSION}, not {schema}")
    if kind == "profile":
        for i, measurement in enumerate(result["profile"]["measurements"]):
            if not isinstance(measurement, dict):
                raise located(where, None, f"field 'profile.measurements.{i}': expected an object")
            _check_fields(measurement, REQUIRED_MEASUREMENT, where, prefix=f"profile.measurements.{i}.")
        return
    for group in ("scores", "scores_std"):
        for name, value in result[group].items():
            if not _type_ok(value, "number"):
                raise located(where, None, f"field '{group}.{name}': expected a number")
    for name, interval in result.get("intervals", {}).items():
        if name not in result["scores"]:
            raise located(where, None, f"field 'intervals.{name}': not one of the scores")
        if not isinstance(interval, dict):
            raise located(where, None, f"field 'intervals.{name}': expected an object")
        _check_fields(interval, REQUIRED_INTERVAL, where, prefix=f"intervals.{name}.")
    main = result["main_score"]
    if "unscored" in result:  # a task that says why it gives no number (e.g. too few records)
        if not isinstance(result["unscored"], str) or result["main_value"] is not None:
            raise located(where, None, "field 'unscored': expected a reason (a string) and main_value null")
        return
    if result["main_value"] is None:
        raise located(where, None, "field 'main_value': null without an 'unscored' reason")
    if main not in result["scores"]:
        raise located(where, None, f"field 'main_score': {main!r} is not one of the scores "
                                   f"({', '.join(result['scores']) or 'none'})")
    if result["main_value"] != result["scores"][main]:
        raise located(where, None, f"field 'main_value': {result['main_value']} differs from "
                                   f"scores.{main} ({result['scores'][main]})")


def write_result(path: str | os.PathLike, result: dict) -> None:
    """Validate ``result``, then write it to ``path`` atomically as JSON."""
    result = plain(result)
    validate_result(result, where=str(path))
    write_text_atomic(path, json.dumps(result, indent=2, allow_nan=False) + "\n")


def read_result(path: str | os.PathLike) -> dict:
    """Read and validate the result at ``path``; any problem is a UserError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise located(path, None, f"cannot read result ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as exc:
        raise located(path, exc.lineno, f"invalid JSON ({exc.msg} column {exc.colno})") from None
    validate_result(result, where=str(path))
    return result
