"""Result files: build, write, read back, and reject what a reader cannot trust."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from benchbarcode import __version__, results
from benchbarcode.errors import UserError
from benchbarcode.registry import get_encoder
from benchbarcode.store import load_results
from benchbarcode.results import (SCHEMA_VERSION, build_result, environment, read_result,
                                  validate_result, write_result)

TASK = {"name": "species-knn", "version": 1, "description": "1-NN species on unseen records",
        "splits": ["train", "test"], "label_rank": "species", "metrics": ["accuracy", "macro_f1"],
        "main_score": "accuracy", "protocol": {"k": 1, "metric": "cosine"}}
DATA = {"name": "sim:200:0", "source": "sim:200", "content_hash": "c" * 64, "records": 200,
        "split_origin": "derived", "split_seed": 0, "split_sizes": {"train": 120, "test": 80}}
OUTCOME = {"scores": {"accuracy": np.float64(0.75), "macro_f1": 0.5},
           "scores_std": {"accuracy": 0.01, "macro_f1": 0.02}, "seeds": [0, 1, 2],
           "counts": {"train": np.int64(120), "test": 80, "classes": 12}}


def _result(**changes) -> dict:
    args = dict(run_id="run-1", task_meta=TASK, encoder_meta=get_encoder("kmer").create(k=4).meta.to_dict(),
                data_identity=DATA, device="cpu", dtype="float32", batch_size=64, seeds={"split": 0},
                outcome=OUTCOME, timings_s={"pretrain": 0, "embed": 1.5, "evaluate": 0.25},
                cache={"train": "hit", "test": "miss"}, command=["benchbarcode", "run"])
    args.update(changes)
    return build_result(**args)


def test_build_result_fields():
    r = _result()
    assert r["schema_version"] == SCHEMA_VERSION and r["benchbarcode_version"] == __version__
    assert r["main_score"] == "accuracy" and r["main_value"] == 0.75
    assert r["scores"] == {"accuracy": 0.75, "macro_f1": 0.5}
    assert type(r["scores"]["accuracy"]) is float and type(r["counts"]["train"]) is int
    assert r["seeds"] == {"split": 0, "task": [0, 1, 2]}
    assert r["encoder"]["name"] == "kmer" and r["encoder"]["budget"] == {"steps": 0, "flops": 0.0}
    assert r["data"] == DATA and r["task"] == TASK
    assert r["date"].endswith("+00:00") and r["command"] == ["benchbarcode", "run"]
    assert r["cache"] == {"train": "hit", "test": "miss"}
    assert _result(cache=None, command=None)["cache"] == {}


def test_extra_outcome_keys_kept():
    r = _result(outcome={**OUTCOME, "selected": {"lr": (0.1, 0.01)}})
    assert r["selected"] == {"lr": [0.1, 0.01]}
    with pytest.raises(ValueError, match="'run_id' clashes"):
        _result(outcome={**OUTCOME, "run_id": "x"})


def test_task_meta_object_from_registry():
    from benchbarcode.registry import TaskMeta

    meta = TaskMeta(name="t", version="1", description="d", splits=("train", "test"), label_rank="species",
                    metrics=("accuracy",), main_score="accuracy", protocol={"k": 1})
    r = _result(task_meta=meta.to_dict(), outcome={**OUTCOME, "scores": {"accuracy": 0.5}})
    assert r["task"]["splits"] == ["train", "test"] and r["main_value"] == 0.5


def test_environment():
    env = environment()
    assert set(env["versions"]) == {"benchbarcode", "torch", "transformers", "numpy", "scikit-learn",
                                    "pandas", "scipy", "umap-learn", "pynndescent", "numba", "python"}
    assert env["versions"]["umap-learn"] and set(env["threads"]) == {"torch", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    assert env["versions"]["numpy"] == np.__version__
    assert isinstance(env["platform"], str) and env["cpu_count"] >= 1


def test_write_read_round_trip(tmp_path):
    r = _result()
    path = tmp_path / "kmer" / "run-1" / "species-knn.json"
    write_result(path, r)
    assert read_result(path) == r
    assert [p.name for p in path.parent.iterdir()] == ["species-knn.json"]  # no temp file left
    assert json.loads(path.read_text())["main_value"] == 0.75


def test_newer_schema_rejected(tmp_path):
    r = _result()
    r["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    expected = (f"{path}: written by a newer benchbarcode (result schema {SCHEMA_VERSION + 1}, "
                f"this version reads <= {SCHEMA_VERSION}); upgrade benchbarcode")
    with pytest.raises(UserError) as info:
        read_result(path)
    assert str(info.value) == expected
    r["scores"] = "fields a newer schema may change are not checked first"
    path.write_text(json.dumps(r))
    with pytest.raises(UserError, match="newer benchbarcode"):
        read_result(path)


@pytest.mark.parametrize("field", [name for name, _ in results.REQUIRED])
def test_each_missing_field_is_named(tmp_path, field):
    r = _result()
    *parents, last = field.split(".")
    holder = r
    for name in parents:
        holder = holder[name]
    del holder[last]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    with pytest.raises(UserError) as info:
        read_result(path)
    assert str(info.value) == f"{path}: field {field!r}: missing"


@pytest.mark.parametrize("field, value, expected", [
    ("batch_size", "64", "an integer"),
    ("batch_size", True, "an integer"),
    ("run_id", 1, "a string"),
    ("encoder.budget", None, "an object"),
    ("data.split_seed", "0", "an integer or null"),
    ("task.version", 1.5, "an integer or a string"),
    ("timings_s.embed", "fast", "a number"),
    ("command", "benchbarcode run", "a list"),
])
def test_mistyped_field_is_named(field, value, expected):
    r = _result()
    *parents, last = field.split(".")
    holder = r
    for name in parents:
        holder = holder[name]
    holder[last] = value
    with pytest.raises(UserError) as info:
        validate_result(r, where="x.json")
    assert str(info.value) == f"x.json: field {field!r}: expected {expected}"


def test_nullable_fields_accept_null():
    r = _result()
    r["data"]["split_seed"] = None
    validate_result(r)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_score_rejected(value, tmp_path):
    with pytest.raises(UserError, match=r"field 'scores.macro_f1': expected a finite number"):
        _result(outcome={**OUTCOME, "scores": {"accuracy": 0.7, "macro_f1": value}})
    r = _result()
    r["scores_std"]["accuracy"] = value
    with pytest.raises(UserError, match=r"field 'scores_std.accuracy'"):
        write_result(tmp_path / "r.json", r)
    assert not any(tmp_path.iterdir())
    path = tmp_path / "nan.json"  # Python's json writes NaN; a reader must still refuse it
    path.write_text(json.dumps(_result()).replace('"macro_f1": 0.5', f'"macro_f1": {json.dumps(value)}'))
    with pytest.raises(UserError, match=r"nan.json: field 'scores.macro_f1'"):
        read_result(path)


def test_non_number_score_rejected():
    r = _result()
    r["scores"]["macro_f1"] = "0.5"
    with pytest.raises(UserError, match=r"^result: field 'scores.macro_f1': expected a number$"):
        validate_result(r)


def test_non_finite_anywhere_rejected():
    r = _result()
    r["counts"]["ratio"] = math.nan
    with pytest.raises(UserError, match=r"field 'counts.ratio'"):
        validate_result(r)


def test_main_score_must_be_a_score():
    with pytest.raises(UserError, match=r"task 'species-knn': main score 'recall' is not one of its "
                                        r"scores \(accuracy, macro_f1\)"):
        _result(task_meta={**TASK, "main_score": "recall"})
    r = _result()
    r["main_score"] = "recall"
    with pytest.raises(UserError, match=r"field 'main_score': 'recall' is not one of the scores"):
        validate_result(r)
    r = _result()
    r["main_value"] = 0.1
    with pytest.raises(UserError, match=r"field 'main_value'"):
        validate_result(r)


def test_schema_version_too_low():
    r = _result()
    r["schema_version"] = 0
    with pytest.raises(UserError, match="schema_version"):
        validate_result(r)


def test_bad_json_names_the_line(tmp_path):
    path = tmp_path / "r.json"
    text = json.dumps(_result(), indent=2).splitlines()
    text[5] = text[5] + " oops"
    path.write_text("\n".join(text))
    with pytest.raises(UserError) as info:
        read_result(path)
    assert str(info.value).startswith(f"{path}:6: invalid JSON (")
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a JSON object"):
        read_result(path)
    with pytest.raises(UserError, match="cannot read"):
        read_result(tmp_path / "absent.json")


def test_load_results_layout(tmp_path):
    written = {}
    for enc, run, task in [("kmer", "run-2", "b"), ("kmer", "run-1", "a"), ("mae", "run-1", "a")]:
        r = _result(run_id=run, task_meta={**TASK, "name": task})
        write_result(tmp_path / enc / run / f"{task}.json", r)
        written[(enc, run, task)] = r
    (tmp_path / "README.json").write_text("{}")  # outside the layout: ignored
    (tmp_path / "kmer" / "run-1" / "notes.txt").write_text("x")
    (tmp_path / "kmer" / "run-1" / ".a.json.x.tmp").write_text("{")  # an unfinished atomic write
    loaded = load_results(tmp_path)
    assert loaded == [written[("kmer", "run-1", "a")], written[("kmer", "run-2", "b")],
                      written[("mae", "run-1", "a")]]


def test_load_results_bad_file_named(tmp_path):
    write_result(tmp_path / "kmer" / "r" / "a.json", _result())
    bad = tmp_path / "kmer" / "r" / "b.json"
    bad.write_text("{\n}")
    with pytest.raises(UserError, match=rf"^{bad}: field 'schema_version': missing; --skip-invalid leaves it out$"):
        load_results(tmp_path)
    with pytest.raises(UserError, match="no such results directory"):
        load_results(tmp_path / "absent")


def test_write_validates_first(tmp_path):
    r = copy.deepcopy(_result())
    del r["scores"]
    with pytest.raises(UserError, match="field 'scores': missing"):
        write_result(tmp_path / "r.json", r)
    assert not any(tmp_path.iterdir())
