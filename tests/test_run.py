"""`benchbarcode run` / `embed` / `tasks`: results with provenance, resume, cache, pretraining cache."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchbarcode import run as run_module
from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.embed import read_embeddings_npz
from benchbarcode.errors import UserError
from benchbarcode.models import presets
from benchbarcode.registry import get_task
from benchbarcode.results import read_result
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec

DATA = "sim:1200"


@pytest.fixture(scope="module")
def ds():
    return load_barcodes(DATA)


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


def opts(tmp_path, encoder="kmer", encoder_options=None, preset="tiny", seed=0, **kw) -> RunOptions:
    spec = EncoderSpec(encoder, options={"k": 4} if encoder_options is None else encoder_options, preset=preset,
                       seed=seed, device="cpu")
    base = dict(encoder=spec, tasks=("open-world", "unseen-species"), results_dir=str(tmp_path / "results"),
                progress=False)
    return RunOptions(**{**base, **kw})


def test_run_writes_valid_results_with_provenance(tmp_path, ds):
    report = run_benchmark(opts(tmp_path, command=["benchbarcode", "run"]), ds)
    assert [o.status for o in report.statuses] == ["done", "done"]
    path = tmp_path / "results" / "kmer" / report.run_id / "open-world.json"
    result = read_result(path)
    assert result["task"]["name"] == "open-world" and result["main_score"] == "accuracy"
    assert result["data"]["content_hash"] == ds.content_hash()
    assert result["data"]["split_sizes"]["test_unseen"] > 0
    assert result["encoder"]["name"] == "kmer" and result["encoder"]["budget"] == {"steps": 0, "flops": 0.0}
    assert result["seeds"]["run"] == 0 and result["seeds"]["split"] == 0
    assert set(result["timings_s"]) == {"pretrain", "embed", "evaluate"}
    assert result["cache"] == {"train": "miss", "test_unseen": "miss"}
    assert result["environment"]["versions"]["torch"]
    assert result["command"] == ["benchbarcode", "run"]


def test_second_run_skips_existing_results_and_hits_the_cache(tmp_path, ds):
    first = run_benchmark(opts(tmp_path), ds)
    again = run_benchmark(opts(tmp_path), ds)
    assert [o.status for o in again.statuses] == ["existing", "existing"]
    assert again.run_id == first.run_id
    redo = run_benchmark(opts(tmp_path, overwrite=True), ds)
    assert [o.status for o in redo.statuses] == ["done", "done"]
    assert set(redo.statuses[0].result["cache"].values()) == {"hit"}
    assert redo.statuses[0].result["scores"] == first.statuses[0].result["scores"]


def test_run_id_changes_with_seed_limit_and_encoder_options(tmp_path, ds):
    ids = {run_benchmark(opts(tmp_path, **kw), ds).run_id
           for kw in ({}, {"seed": 1}, {"limit": 100}, {"encoder_options": {"k": 3}})}
    assert len(ids) == 4


def test_interrupted_run_resumes(tmp_path, ds, monkeypatch):
    task_class = type(get_task("unseen-species"))

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(task_class, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(opts(tmp_path), ds)
    written = list((tmp_path / "results").rglob("*.json"))
    assert [p.name for p in written] == ["open-world.json"]  # the finished task survived
    assert not list((tmp_path / "results").rglob("*.tmp"))  # no partial file
    monkeypatch.undo()
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    report = run_benchmark(opts(tmp_path), ds)
    assert [o.status for o in report.statuses] == ["existing", "done"]
    assert report.statuses[1].result["cache"]["test_unseen"] == "hit"  # embedded before the interrupt


def test_corrupt_cache_file_is_recomputed_not_trusted(tmp_path, ds):
    first = run_benchmark(opts(tmp_path, tasks=["open-world"]), ds)
    files = sorted((tmp_path / "cache" / "embeddings").rglob("*.npy"))
    assert len(files) == 2
    for f in files:
        f.write_bytes(f.read_bytes()[:100])  # truncated
    again = run_benchmark(opts(tmp_path, tasks=["open-world"], overwrite=True), ds)
    result = again.statuses[0].result
    assert set(result["cache"].values()) == {"miss"}
    assert result["scores"] == first.statuses[0].result["scores"]


def test_limit_subsamples_each_split_deterministically(tmp_path, ds):
    a = run_benchmark(opts(tmp_path, limit=150, tasks=["open-world"]), ds).statuses[0].result
    assert a["counts"]["queries"] + a["counts"].get("dropped_missing_test_unseen", 0) <= 150
    # the keys (train, 508 records) are the split larger than the limit: only they can show it applied
    assert a["counts"]["keys"] + a["counts"]["dropped_missing_train"] == 150
    assert a["data"]["limit"] == 150
    table = run_module.evaluation_split(ds, "train", 150, 0)
    assert len(table) == 150 and table.equals(run_module.evaluation_split(ds, "train", 150, 0))


def test_in_house_encoder_is_pretrained_once_and_budget_recorded(tmp_path, ds, monkeypatch):
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        steps=3, layers=1, hidden=32, heads=2, intermediate=64, batch_size=8, warmup_steps=1)}
        for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)
    calls = []
    import benchbarcode.pretrain as pretrain_module

    real = pretrain_module.pretrain

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(pretrain_module, "pretrain", spy)
    o = opts(tmp_path, encoder="mae", encoder_options={}, preset="unit", tasks=["open-world"])
    first = run_benchmark(o, ds)
    result = first.statuses[0].result
    assert result["encoder"]["budget"]["steps"] == 3
    assert result["timings_s"]["pretrain"] > 0
    pretrained = [d for d in (tmp_path / "cache" / "pretrained").iterdir() if d.is_dir()]  # beside: <key>.lock
    assert len(pretrained) == 1 and (pretrained[0] / "benchbarcode.json").is_file()
    second = run_benchmark(dataclasses.replace(o, overwrite=True), ds)
    assert second.statuses[0].result["timings_s"]["pretrain"] == 0  # reused, not retrained
    assert second.run_id == first.run_id and len(calls) == 1  # pretrained once


def test_open_world_equals_independent_1nn_on_embed_outputs(tmp_path, ds):
    report = run_benchmark(opts(tmp_path, tasks=["open-world"], encoder_options={"k": 6}), ds)
    files = {}
    for split in ("train", "test_unseen"):
        files[split] = tmp_path / f"{split}.npz"
        assert main(["embed", "--encoder", "kmer", "--data", DATA, "--split", split,
                     "--out", str(files[split]), "--quiet"]) == 0
    keys, queries = read_embeddings_npz(files["train"]), read_embeddings_npz(files["test_unseen"])
    kg, qg = keys["genus"], queries["genus"]
    k = keys["embeddings"][kg != ""]
    q = queries["embeddings"][qg != ""]
    k = k / np.linalg.norm(k, axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    predicted = kg[kg != ""][np.argmax(q @ k.T, axis=1)]
    expected = float(np.mean(predicted == qg[qg != ""]))
    assert report.statuses[0].result["scores"]["accuracy"] == pytest.approx(expected, abs=1e-12)


def test_task_that_cannot_run_is_skipped_with_its_reason(tmp_path, ds, monkeypatch):
    task_class = type(get_task("unseen-species"))

    def refuse(self, *a, **k):
        raise UserError("task unseen-species: split 'key_unseen' has fewer than 2 species")

    monkeypatch.setattr(task_class, "evaluate", refuse)
    report = run_benchmark(opts(tmp_path), ds)
    assert [o.status for o in report.statuses] == ["done", "skipped"]
    assert "fewer than 2 species" in report.statuses[1].reason
    assert not (report.directory / "unseen-species.json").exists()


def test_cli_run_prints_table_and_bad_input_exits_2(tmp_path, capsys):
    code = main(["run", "--encoder", "kmer", "--encoder-option", "k=4", "--data", DATA,
                 "--tasks", "open-world", "--results-dir", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0 and "open-world" in out and "accuracy" in out and "results:" in out
    for argv, message in (
        (["run", "--encoder", "nope"], "unknown encoder"),
        (["run", "--encoder", "kmer", "--tasks", "open-wrld"], "unknown task"),
        (["run", "--encoder", "kmer", "--encoder-option", "x"], "KEY=VALUE"),
        (["run", "--encoder", "kmer", "--encoder-option", "zz=1", "--tasks", "open-world"], "zz"),
        (["embed", "--encoder", "kmer", "--split", "train", "--out", str(tmp_path / "e.txt")], ".npz"),
    ):
        extra = ["--data", DATA] + (["--results-dir", str(tmp_path / "bad")] if argv[0] == "run" else [])
        assert main(argv + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "e.txt").exists()


def test_cli_tasks_json_lists_every_task(capsys):
    assert main(["tasks", "--json"]) == 0
    names = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert {"closed-world", "open-world", "unseen-species", "clustering", "bin-reconstruction"} <= names


def test_seeds_with_control_print_the_paired_difference(tmp_path, monkeypatch, capsys):
    """`run --seeds 0,1 --with-control`: each seed and its control (the declared random
    initialisation, same preset and seed) are runs of their own; the table pairs them."""
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        steps=2, layers=1, hidden=32, heads=2, intermediate=64, batch_size=8, warmup_steps=1)}
        for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)
    results = tmp_path / "results"
    assert main(["run", "--encoder", "gpt", "--preset", "unit", "--seeds", "0,1", "--with-control",
                 "--data", DATA, "--tasks", "open-world,closed-world", "--results-dir", str(results),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "encoder - control [95 % t-interval, paired seeds]" in out
    assert f"benchbarcode leaderboard --results-dir {results}" in out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in lines[1:]] == ["closed-world", "open-world", "harmonic mean"]
    controls = [read_result(p) for p in sorted(results.glob("random/*/open-world.json"))]
    assert [c["seeds"]["run"] for c in controls] == [0, 1]
    assert all(c["encoder"]["options"] == {"like": "gpt", "preset": "unit", "seed": c["seeds"]["run"]}
               and c["encoder"]["hidden_size"] == 32 for c in controls)  # the GPT-2 of the same shape
    learned = sorted(results.glob("gpt/*/open-world.json"))
    assert len(learned) == 2 and read_result(learned[0])["encoder"]["budget"]["steps"] == 2
    assert main(["run", "--encoder", "kmer", "--with-control", "--data", DATA, "--results-dir", str(results)]) == 2
    assert "declares no control" in capsys.readouterr().err


def test_existing_results_are_not_pretrained_for_again(tmp_path, ds, monkeypatch):
    """Every requested result exists but the pretraining cache is gone: nothing is pretrained."""
    fast = {o: {**presets.PRESETS[o], "unit": presets.get_preset(o, "tiny").with_overrides(
        steps=2, layers=1, hidden=32, heads=2, intermediate=64, batch_size=8, warmup_steps=1)}
        for o in presets.PRESETS}
    monkeypatch.setattr(presets, "PRESETS", fast)
    o = opts(tmp_path, encoder="mae", encoder_options={}, preset="unit", tasks=["open-world"])
    first = run_benchmark(o, ds)
    (pretrained,) = [d for d in (tmp_path / "cache" / "pretrained").iterdir() if d.is_dir()]
    assert first.statuses[0].result["pretraining_key"] == pretrained.name  # what the store finds it by
    import shutil

    shutil.rmtree(tmp_path / "cache")
    import benchbarcode.pretrain as pretrain_module

    monkeypatch.setattr(pretrain_module, "pretrain", lambda *a, **k: pytest.fail("pretrained again"))
    again = run_benchmark(o, ds)
    assert [x.status for x in again.statuses] == ["existing"] and again.run_id == first.run_id
    assert again.statuses[0].result == first.statuses[0].result


def test_scores_that_differ_print_differently():
    """Clustering and bin-reconstruction AMIs of 0.78494 and 0.78486 printed as one number read
    as a copy: the run's table shows as many decimals as it takes to tell them apart."""
    from types import SimpleNamespace

    from benchbarcode.cli.run import score_table
    from benchbarcode.summary import distinct_digits

    assert distinct_digits([0.78494, 0.78486]) == 5 and distinct_digits([0.7, 0.7, 0.9]) == 4
    assert distinct_digits([0.5, None]) == 4 and distinct_digits([1 / 3, 1 / 3 + 1e-12], most=8) == 8

    def status(task, value):
        result = {"main_value": value, "main_score": "ami_agglomerative", "scores_std": {}, "scores": {}}
        return SimpleNamespace(task=task, result=result, status="done", reason=None)

    text = score_table(SimpleNamespace(statuses=[status("clustering", 0.78494), status("bin-reconstruction", 0.78486)]))
    assert "0.78494" in text and "0.78486" in text
