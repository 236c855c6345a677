"""Every subcommand, driven through the CLI entry point with one mistake at a time.

For each: exit code 2, exactly one line on stderr naming the offending path, option or value,
nothing written (no result, cache or output file), and, where the mistake can be seen up front,
no data loaded first.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchbarcode import cli

SIM = "sim:300"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder with the inputs the mistakes need, the cache inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "empty.tsv").write_text("")
    with gzip.open(tmp_path / "full.tsv.gz", "wt") as fh:
        fh.write("processid\tnucleotides\tmarkercode\n" + "".join(f"P{i}\tACGT\tCOI-5P\n" for i in range(200)))
    (tmp_path / "truncated.tsv.gz").write_bytes((tmp_path / "full.tsv.gz").read_bytes()[:40])
    (tmp_path / "bad.fasta").write_text(">p1|O|F|G|G s\nACGTXACGT\n")
    (tmp_path / "labelled.fasta").write_text("".join(
        f">p{i}|O|F|G{i % 3}|G{i % 3} s{i % 5}\n{'ACGT' * 20}{'ACGT'[i % 4] * (i % 7)}\n" for i in range(60)))
    (tmp_path / "emptydir").mkdir()
    state = tmp_path / "badstate" / "checkpoint"
    state.mkdir(parents=True)
    (state / "state.json").write_text("{not json")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "benchbarcode.json").write_text("{truncated")
    return tmp_path


def _corrupt_checkpoint(root: Path) -> Path:
    """A pretrain directory whose model.safetensors is cut short."""
    from benchbarcode import checkpoints
    from benchbarcode.models import build_model
    from benchbarcode.models.presets import get_preset
    from benchbarcode.tokenizers import KmerTokenizer

    preset = get_preset("mae", "tiny").with_overrides(layers=1, hidden=32, heads=2, intermediate=64)
    directory = root / "corrupt"
    directory.mkdir()
    torch.manual_seed(0)
    checkpoints.write_encoder(directory, build_model("mae", preset),
                              {"objective": "mae", "tokenizer": KmerTokenizer(6).to_dict(), "budget": {}})
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return directory


# (arguments, what the line must name, whether the data may be loaded before the error)
CASES = {
    "data: no such file": (["data", "describe", "--data", "nosuch.tsv"], "nosuch.tsv", True),
    "data: empty file": (["data", "describe", "--data", "empty.tsv"], "empty.tsv", True),
    "data: truncated gzip": (["data", "describe", "--data", "truncated.tsv.gz"], "truncated.tsv.gz", True),
    "data: bad character": (["data", "describe", "--data", "bad.fasta"], "bad.fasta:1", True),
    "data: --max-length 0": (["data", "describe", "--data", SIM, "--max-length", "0"], "--max-length", False),
    "pretrain: --checkpoint-every 0": (["pretrain", "--encoder", "mae", "--out", "ck", "--checkpoint-every", "0"],
                                       "--checkpoint-every", False),
    "data: bad sim size": (["data", "describe", "--data", "sim:abc"], "sim:abc", True),
    "data: no subcommand": (["data"], "a command is required", False),
    "export: parquet": (["data", "export", "--data", SIM, "--out", "x.parquet"], "x.parquet", False),
    "export: under a file": (["data", "export", "--data", SIM, "--out", "afile/x.csv"], "afile", False),
    "encoders: unknown flag": (["encoders", "--bogus"], "--bogus", False),
    "tasks: unknown flag": (["tasks", "--bogus"], "--bogus", False),
    "pretrain: --out a file": (["pretrain", "--encoder", "mae", "--out", "afile", "--data", SIM], "afile", False),
    "pretrain: --steps 0": (["pretrain", "--encoder", "mae", "--out", "o", "--steps", "0"], "--steps", False),
    "pretrain: nothing to resume": (["pretrain", "--encoder", "mae", "--out", "emptydir", "--resume"], "--resume", False),
    "pretrain: bad state": (["pretrain", "--encoder", "mae", "--out", "badstate", "--resume"], "state.json", False),
    "pretrain: damaged encoder": (["pretrain", "--encoder", "mae", "--out", "damaged"], "benchbarcode.json", False),
    "pretrain: not pretrainable": (["pretrain", "--encoder", "kmer", "--out", "o"], "kmer", False),
    "pretrain: --mask-ratio 2": (["pretrain", "--encoder", "mae", "--out", "o", "--mask-ratio", "2"], "--mask-ratio", False),
    "pretrain: gpt --loss-on": (["pretrain", "--encoder", "gpt", "--out", "o", "--loss-on", "all"], "--loss-on", False),
    "run: --results-dir a file": (["run", "--encoder", "kmer", "--results-dir", "afile"], "--results-dir afile", False),
    "run: no such checkpoint": (["run", "--encoder", "mae", "--checkpoint", "nosuchdir"], "nosuchdir", True),
    "run: k=abc": (["run", "--encoder", "kmer", "--encoder-option", "k=abc"], "k=abc", False),
    "run: k=true": (["run", "--encoder", "kmer", "--encoder-option", "k=true"], "k=true", False),
    "run: seed=x": (["run", "--encoder", "random", "--encoder-option", "seed=x"], "seed=x", False),
    "run: k=9": (["run", "--encoder", "kmer", "--encoder-option", "k=9"], "9", True),
    "run: pooling=bogus": (["run", "--encoder", "random", "--encoder-option", "pooling=bogus"], "pooling=bogus", True),
    "run: pooling=3": (["run", "--encoder", "random", "--encoder-option", "pooling=3"], "pooling=3", True),
    "run: like=foo": (["run", "--encoder", "random", "--encoder-option", "like=foo"], "like='foo'", True),
    "run: option not taken": (["run", "--encoder", "kmer", "--encoder-option", "kk=4"], "kk", False),
    "run: unknown task": (["run", "--encoder", "kmer", "--tasks", "nosuchtask"], "nosuchtask", False),
    "run: empty --tasks": (["run", "--encoder", "kmer", "--tasks", ""], "--tasks", False),
    "run: --limit 1": (["run", "--encoder", "kmer", "--limit", "1"], "--limit", False),
    "run: --batch-size 0": (["run", "--encoder", "kmer", "--batch-size", "0"], "--batch-size", False),
    "run: --seeds a,b": (["run", "--encoder", "kmer", "--seeds", "a,b"], "--seeds", False),
    "run: unknown encoder": (["run", "--encoder", "foo"], "'foo'", False),
    "run: no control": (["run", "--encoder", "kmer", "--with-control"], "--with-control", False),
    "run: remote code flag": (["run", "--encoder", "kmer", "--trust-remote-code"], "trust_remote_code", False),
    "run: --steps 0": (["run", "--encoder", "mae", "--steps", "0"], "--steps", False),
    "embed: not npz": (["embed", "--encoder", "kmer", "--out", "x.txt"], "x.txt", False),
    "embed: under a file": (["embed", "--encoder", "kmer", "--out", "afile/x.npz"], "afile", False),
    "embed: unknown split": (["embed", "--encoder", "kmer", "--split", "nosuch", "--out", "x.npz"], "nosuch", False),
    "embed: empty split": (["embed", "--encoder", "kmer", "--split", "pretrain", "--out", "x.npz",
                            "--data", "labelled.fasta"], "--split pretrain", True),
    "leaderboard: no results": (["leaderboard", "--results-dir", "emptydir"], "emptydir", False),
    "leaderboard: --out under a file": (["leaderboard", "--out", "afile/b.md"], "afile", False),
    "cache: bad --what": (["cache", "clear", "--what", "bogus"], "bogus", False),
    "cache: no subcommand": (["cache"], "a command is required", False),
}
if Path("/proc/self").is_dir():  # a place no one can write, root included (permission bits say yes)
    CASES |= {
        "run: unwritable --results-dir": (["run", "--encoder", "kmer", "--results-dir", "/proc/bb"], "/proc", False),
        "embed: unwritable --out": (["embed", "--encoder", "kmer", "--out", "/proc/bb.npz"], "/proc", False),
        "export: unwritable --out": (["data", "export", "--data", SIM, "--out", "/proc/bb.csv"], "/proc", False),
        "pretrain: unwritable --out": (["pretrain", "--encoder", "mae", "--out", "/proc/bb"], "/proc", False),
        "leaderboard: unwritable --out": (["leaderboard", "--results-dir", "results", "--out", "/proc/bb.md"],
                                          "/proc", False),
    }
if not torch.cuda.is_available():
    CASES["run: --device cuda without a GPU"] = (["run", "--encoder", "kmer", "--device", "cuda",
                                                  "--data", SIM], "cuda", True)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_mistake_one_line(case, place, capsys, monkeypatch):
    argv, names, may_load = CASES[case]
    if "--data" not in argv and argv[0] in ("run", "embed", "pretrain"):
        argv = [*argv, "--data", SIM]
    if not may_load:
        monkeypatch.setattr(cli.common, "load_data", lambda args: pytest.fail("loaded data before checking the input"))
    before = _files(place)
    parse_error = argv in (["data"], ["cache"]) or "--bogus" in argv or "bogus" in argv or "--max-length" in argv or "--checkpoint-every" in argv
    if parse_error:
        with pytest.raises(SystemExit) as excinfo:
            cli.main(argv)
        assert excinfo.value.code == 2
    else:
        code = cli.main(argv)
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert names in err[0], err[0]
    assert _files(place) == before, sorted(_files(place) - before)


@pytest.mark.parametrize("recorded", [True, False], ids=["weights sha256 recorded", "written before it was"])
def test_corrupt_checkpoint_weights(place, capsys, recorded):
    directory = _corrupt_checkpoint(place)
    if not recorded:  # the load itself must then name the damage
        info = json.loads((directory / "benchbarcode.json").read_text())
        del info["weights_sha256"]
        (directory / "benchbarcode.json").write_text(json.dumps(info))
    before = _files(place)
    for encoder in ("mae", "gpt"):
        assert cli.main(["run", "--encoder", encoder, "--checkpoint", str(directory), "--data", SIM,
                         "--tasks", "open-world"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert str(directory) in line and ("damaged: its sha256" if recorded else "does not load") in line
    assert _files(place) == before


def test_the_disk_refusing_midway_is_one_line(place, capsys, monkeypatch):
    """An OSError after the up-front checks (disk full, a folder removed): one line naming the
    file, exit 2, no traceback."""
    from benchbarcode import store as store_module

    def full(path, result):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(store_module, "write_result", full)
    assert cli.main(["run", "--encoder", "kmer", "--data", SIM, "--tasks", "open-world", "--quiet"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "open-world.json" in line and "No space left on device" in line


def test_a_failing_task_says_why_and_claims_no_results(place, capsys):
    """Too little data for a task: the line says why, and no results path is printed."""
    assert cli.main(["run", "--encoder", "kmer", "--data", "sim:50", "--tasks", "unseen-species"]) == 2
    captured = capsys.readouterr()
    assert "results:" not in captured.out and "leaderboard" not in captured.out
    (row,) = [line for line in captured.out.splitlines() if line.startswith("| unseen-species")]
    assert "skipped: task unseen-species" in row


def test_quiet_still_says_where_results_went(place, capsys):
    assert cli.main(["run", "--encoder", "kmer", "--data", SIM, "--tasks", "open-world", "--quiet",
                     "--encoder-option", "k=3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("results: ") and Path(out[0][9:]).is_dir()


def test_embed_every_record_and_cache_commands(place, capsys):
    assert cli.main(["embed", "--encoder", "kmer", "--encoder-option", "k=3", "--data", "labelled.fasta",
                     "--out", "all.npz", "--quiet"]) == 0
    from benchbarcode.embed import read_embeddings_npz

    arrays = read_embeddings_npz(place / "all.npz")
    assert arrays["embeddings"].shape == (60, 64) and set(arrays["split"]) >= {"train"}
    assert cli.main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == str(place / "cache") and info["parts"]["embeddings"]["entries"] == 1
    assert cli.main(["cache", "clear"]) == 0
    # one entry: its array and its record
    assert "removed 2 files" in capsys.readouterr().out and not (place / "cache" / "embeddings").exists()


def test_resuming_says_from_which_step(place, capsys, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="benchbarcode")
    from benchbarcode.data import load_barcodes
    from benchbarcode.models.presets import get_preset
    from benchbarcode.pretrain import PretrainJob, pretrain

    preset = get_preset("mae", "tiny").with_overrides(layers=1, hidden=32, heads=2, intermediate=64, batch_size=8,
                                                      steps=4, warmup_steps=1)
    corpus = load_barcodes(SIM).pretraining_sequences()

    def stop(step):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainJob("mae", preset, corpus, place / "run", progress=False, checkpoint_every=1), on_step=stop)
    pretrain(PretrainJob("mae", preset, corpus, place / "run", progress=False, resume=True))
    assert "from step 2 of 4" in caplog.text


def test_names_and_help_never_import_torch_or_scikit_learn():
    """Listing encoders and tasks (what every argument check and help text needs) stays light:
    torch and scikit-learn cost seconds to import and load only when a task or encoder works."""
    code = ("import sys; from benchbarcode.registry import list_encoders, list_tasks; "
            "list_encoders(plugins=False); list_tasks(); "
            "heavy = sorted(m for m in ('torch', 'sklearn', 'transformers', 'umap') if m in sys.modules); "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
