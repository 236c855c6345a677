"""``benchbarcode profile``: what it measures, the result file, and the leaderboard's cost columns.

Timings are never asserted (they depend on the machine); counts, FLOPs, structure and errors are.
"""

from __future__ import annotations

import json

import pytest

from benchbarcode.cli import main
from benchbarcode.profile import (PEAK_RESET_UNSUPPORTED, ProfileOptions, build_encoder, cost_key, counted_flops,
                                  forward_flops, profile_encoder, synthetic_barcodes, write_profile)
from benchbarcode.errors import UserError
from benchbarcode.results import read_result, validate_result

FAST = dict(batch_sizes=(1, 4), warmup=0, repeats=1, min_seconds=0.0)


def test_synthetic_barcodes_are_seeded_acgt():
    a = synthetic_barcodes(3, 50, seed=1)
    assert a == synthetic_barcodes(3, 50, seed=1) and a != synthetic_barcodes(3, 50, seed=2)
    assert all(len(s) == 50 and set(s) <= set("ACGT") for s in a)


def test_derived_flops_match_a_hand_count_and_torchs_count():
    """The derived forward FLOPs of a BERT encoder equal the count by hand, and torch's counter
    agrees on the linear layers (it does not see CPU flash attention, so the ratio is that share)."""
    encoder = build_encoder(ProfileOptions("mae").validate(), "cpu")
    cfg = encoder.model.config
    h, f, layers, t = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, 109
    linear = layers * 2 * t * (4 * h * h + 2 * h * f)
    assert forward_flops(cfg, t) == linear + layers * 4 * t * t * h
    seqs = synthetic_barcodes(2, 658, seed=0)
    counted = counted_flops(lambda: encoder.embed(seqs, batch_size=2))
    assert counted >= 2 * linear * 0.99  # every projection and feed-forward is counted
    assert counted <= 2 * forward_flops(cfg, t) * 1.01


def test_profile_infer_result_is_valid_and_complete(tmp_path):
    result = profile_encoder(ProfileOptions("mae", **FAST, memory=False, command=["benchbarcode", "profile"]))
    validate_result(result)
    p = result["profile"]
    assert result["kind"] == "profile" and p["mode"] == "infer" and result["encoder"]["name"] == "mae"
    assert result["encoder"]["checkpoint"]["preset"] == "tiny"  # a stand-in of the preset's architecture
    assert p["tokens_per_sequence"] == 109  # 658 nt as 6-mers at stride 6
    assert [m["batch_size"] for m in p["measurements"]] == [1, 4]
    for m in p["measurements"]:
        assert m["sequences_per_s"] > 0 and m["nucleotides_per_s"] == pytest.approx(m["sequences_per_s"] * 658)
        assert m["tokens_per_s"] == pytest.approx(m["sequences_per_s"] * p["tokens_per_sequence"])
        assert m["flops_per_sequence"] > 0 and 0.5 < m["flops_counted_vs_derived"] <= 1.01
        assert 0 < m["utilisation"] and m["peak_mb"] is None  # memory off
    assert p["matmul"]["flop_per_s"] > 0 and p["cost_key"] == cost_key(result["encoder"])
    path = write_profile(tmp_path, result)
    assert path.name == "profile.json" and read_result(path) == json.loads(path.read_text())


def test_profile_cpu_peak_memory_grows_with_the_batch():
    """The child process's peak above its baseline: a batch of 32 needs more than a batch of 1."""
    if not open("/proc/self/status").read():  # pragma: no cover - non-Linux
        pytest.skip("no /proc")
    result = profile_encoder(ProfileOptions("mae", batch_sizes=(1, 32), warmup=0, repeats=1, min_seconds=0.0))
    m = {x["batch_size"]: x for x in result["profile"]["measurements"]}
    note = result["profile"].get("memory_note")
    if note == f"not measured: {PEAK_RESET_UNSUPPORTED}":  # the kernel's limit; any other note is a failure
        pytest.skip(note)
    assert note is None, note
    assert 0 <= m[1]["peak_mb"] < m[32]["peak_mb"] and m[32]["resident_mb"] > m[32]["peak_mb"]


def test_profile_train_counts_the_step_and_matches_the_budget_formula():
    mae = profile_encoder(ProfileOptions("mae", mode="train", **FAST, memory=False))
    mlm = profile_encoder(ProfileOptions("mlm", mode="train", **FAST, memory=False))
    for result in (mae, mlm):
        m = result["profile"]["measurements"][-1]
        assert m["flops_per_sequence_derived"] > 0 and 0.8 < m["flops_counted_vs_derived"] < 1.2
    # MAE's encoder sees half the tokens: its step costs fewer FLOPs than MLM's at the same encoder
    assert (mae["profile"]["measurements"][-1]["flops_per_sequence_derived"]
            < mlm["profile"]["measurements"][-1]["flops_per_sequence_derived"])


def test_profile_kmer_has_no_flops_and_a_hf_model(tmp_path):
    """kmer runs no torch (no FLOPs, no utilisation); an hf: model is counted by torch, with no
    derived figure for a config it does not know the shape of... here a BERT, so both."""
    from hf_models import tiny_bert

    kmer = profile_encoder(ProfileOptions("kmer", **FAST, memory=False))
    m = kmer["profile"]["measurements"][0]
    assert m["flops_per_sequence"] is None and m["utilisation"] is None and m["tokens_per_s"] > 0
    assert kmer["profile"]["matmul"] is None
    model = tiny_bert(tmp_path / "bert")
    hf = profile_encoder(ProfileOptions(f"hf:{model}", **FAST, memory=False))
    m = hf["profile"]["measurements"][-1]
    assert hf["encoder"]["name"] == f"hf:{model}" and m["flops_per_sequence"] > 0 and m["utilisation"] > 0
    assert hf["profile"]["tokens_per_sequence"] is None  # its own tokenizer: tokens not stated


def test_bfloat16_profile_records_its_dtype():
    result = profile_encoder(ProfileOptions("mae", dtype="bfloat16", **FAST, memory=False))
    assert result["dtype"] == "bfloat16" and result["encoder"]["dtype"] == "bfloat16"


def test_cost_key_ignores_weights_seed_and_preset_option():
    base = {"name": "random", "options": {"like": "mae", "seed": 0}, "k": 6, "layers": 2, "heads": 4,
            "hidden_size": 128, "max_length": 660, "embedding_dim": 128, "parameters": 10, "tokenizer": "k"}
    assert cost_key(base) == cost_key({**base, "options": {"like": "mae", "seed": 3, "preset": "tiny"},
                                       "checkpoint": {"sha256": "x"}})
    assert cost_key(base) != cost_key({**base, "options": {"like": "gpt"}})
    assert cost_key(base) != cost_key({**base, "layers": 4})


def test_cli_profile_writes_a_result_the_leaderboard_shows(tmp_path, capsys):
    """A profile beside run results fills the row's cost cells; other rows show '-'."""
    results = tmp_path / "results"
    code = main(["run", "--encoder", "kmer", "--encoder-option", "k=3", "--data", "sim:1500", "--tasks", "open-world",
                 "--results-dir", str(results), "--quiet", "--no-cache"])
    assert code == 0
    code = main(["run", "--encoder", "kmer", "--encoder-option", "k=4", "--data", "sim:1500", "--tasks", "open-world",
                 "--results-dir", str(results), "--quiet", "--no-cache"])
    assert code == 0
    capsys.readouterr()
    assert main(["profile", "--encoder", "kmer", "--encoder-option", "k=3", "--batch-sizes", "8,64",
                 "--repeats", "1", "--min-seconds", "0", "--warmup", "0", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "seq/s median" in out and "result:" in out
    profile_path = next(results.glob("kmer/profile-*/profile.json"))
    stored = read_result(profile_path)
    seq_s = {m["batch_size"]: m["sequences_per_s"] for m in stored["profile"]["measurements"]}
    assert main(["leaderboard", "--results-dir", str(results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tables"][0]["rows"]
    by_label = {r["encoder"]: r for r in rows}
    assert by_label["kmer (k=3)"]["embed sequences_per_s"] == seq_s[64]  # the runs' batch size (64)
    assert by_label["kmer (k=3)"]["embed batch_size"] == 64
    assert by_label["kmer (k=4)"]["embed sequences_per_s"] is None
    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    table = capsys.readouterr().out
    assert "embed seq/s" in table and f"{seq_s[64]:,.0f}" in table


def test_cli_profile_json_and_bad_input(tmp_path, capsys):
    assert main(["profile", "--encoder", "kmer", "--batch-sizes", "2", "--repeats", "1", "--min-seconds", "0",
                 "--warmup", "0", "--json", "--results-dir", ""]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "profile" and doc["profile"]["measurements"][0]["batch_size"] == 2
    cases = [
        (["--encoder", "kmer", "--mode", "train"], "not pretrained by benchbarcode"),
        (["--encoder", "mae", "--mode", "train", "--checkpoint", "x"], "--checkpoint applies to --mode infer"),
        (["--encoder", "kmer", "--dtype", "bfloat16"], "does not take option(s) dtype"),
        (["--encoder", "nosuch"], "unknown encoder"),
        (["--encoder", "kmer", "--repeats", "0"], "--repeats must be >= 1"),
        (["--encoder", "mae", "--compile"], "--compile applies to --mode train"),
        (["--encoder", "mae", "--mode", "train", "--compile", "--warmup", "0"], "--compile needs --warmup >= 1"),
    ]
    for argv, says in cases:
        assert main(["profile", *argv, "--results-dir", str(tmp_path / "r")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.json"))
    with pytest.raises(SystemExit) as exc:
        main(["profile", "--encoder", "kmer", "--batch-sizes", "0,4"])
    assert exc.value.code == 2
    assert "expected integers >= 1" in capsys.readouterr().err


def test_profile_result_validation_names_the_bad_field():
    result = profile_encoder(ProfileOptions("kmer", **FAST, memory=False))
    broken = json.loads(json.dumps(result))
    broken["profile"]["measurements"][1]["sequences_per_s"] = "fast"
    with pytest.raises(UserError, match="profile.measurements.1.sequences_per_s"):
        validate_result(broken)
    broken = json.loads(json.dumps(result))
    broken["kind"] = "other"
    with pytest.raises(UserError, match="field 'kind'"):
        validate_result(broken)
