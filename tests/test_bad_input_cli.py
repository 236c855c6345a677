"""Bad input, round two (issue 23), through the CLI entry point: each mistake exits 2 with one line
on stderr (``benchbarcode: error: ...``) that names the flag, item or file and what to do, and
nothing is written. Where the mistake can be seen in the arguments, it is said before any data is
loaded and, for argument errors, before torch is imported (a fresh process).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from benchbarcode import cli

SIM = "sim:300"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder holding the cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def no_data(monkeypatch):
    """Loading the data fails the test: the mistake must be said before."""
    monkeypatch.setattr(cli.common, "load_data", lambda args: pytest.fail("loaded data before checking the input"))


class Validated(Exception):
    """Raised where the data would be loaded: every check passed."""


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("benchbarcode: error: "), err[0]
    for word in words:
        assert word in err[0], err[0]
    return err[0]


def _refused(place: Path, capsys, argv: list[str], *words: str) -> str:
    """``argv`` exits 2 with one line holding ``words`` and writes nothing."""
    before = _files(place)
    assert cli.main(argv) == 2
    line = _one_error(capsys, *words)
    assert _files(place) == before, sorted(_files(place) - before)
    return line


# ----------------------------------------------------------------------------- 1. seeds
RUN = ["run", "--encoder", "kmer", "--data", SIM, "--tasks", "open-world", "--quiet"]
#: one short command of each kind that takes --seed and --device
COMMANDS = [
    RUN,
    ["embed", "--encoder", "kmer", "--data", SIM, "--out", "x.npz"],
    ["pretrain", "--encoder", "mae", "--data", SIM, "--out", "o"],
    ["profile", "--encoder", "kmer", "--batch-sizes", "1", "--repeats", "1", "--min-seconds", "0", "--no-memory"],
]
SEEDS = {
    "empty item": ("0,,1", ("--seeds '0,,1'", "item 2 is empty")),
    "only a comma": (",", ("--seeds ','", "item 1 is empty")),
    "nothing": ("", ("--seeds ''", "item 1 is empty")),
    "negative": ("-1", ("--seeds -1", "seed -1 is negative", ">= 0")),
    "negative among others": ("0,-2", ("--seeds 0,-2", "seed -2 is negative")),
    "not an integer": ("0,x", ("--seeds '0,x'", "item 2 ('x') is not an integer")),
    "a float": ("0,1.5", ("--seeds '0,1.5'", "item 2 ('1.5') is not an integer")),
    "repeated": ("0,1,0", ("--seeds 0,1,0", "seed 0 is given twice")),
}


@pytest.mark.parametrize("argv", [["--split-seed", "-1"], ["--data", "sim:300:-1"]], ids=["split", "simulator"])
def test_negative_data_seeds(argv, place, capsys):
    line = _refused(place, capsys, [*RUN, *argv], "-1")
    assert "is negative" in line or "SEED >= 0" in line


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_seeds_name_the_bad_item(case, place, capsys, no_data):
    text, words = SEEDS[case]
    _refused(place, capsys, [*RUN, f"--seeds={text}"], *words)


@pytest.mark.parametrize("command", COMMANDS, ids=["run", "embed", "pretrain", "profile"])
def test_negative_seed(command, place, capsys, no_data):
    _refused(place, capsys, [*command, "--seed", "-1"], "--seed -1 is negative", ">= 0")


# ----------------------------------------------------------------------------- 2. pretrain --out
PRETRAIN = ["pretrain", "--encoder", "mae", "--data", SIM]


def test_pretrain_refuses_a_folder_of_someone_elses(place, capsys, no_data):
    folder = place / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    (folder / "config.json").write_text('{"mine": true}\n')
    _refused(place, capsys, [*PRETRAIN, "--out", "mine"], "--out mine", "not empty",
             "not a pretraining directory", "notes.txt")
    _refused(place, capsys, [*PRETRAIN, "--out", "mine", "--resume"], "not a pretraining directory")
    line = _refused(place, capsys, [*PRETRAIN, "--out", "mine", "--overwrite"], "not a pretraining directory",
                    "--overwrite", "nothing was deleted")
    assert "pass --overwrite" not in line
    assert (folder / "config.json").read_text() == '{"mine": true}\n'


def test_pretrain_still_takes_an_empty_or_its_own_folder(place, capsys, monkeypatch):
    """The refusal above spares what pretraining may write into: an empty folder, one with the
    leftover of an interrupted checkpoint, and (with --overwrite) a finished encoder; the users'
    folder is refused in the same run, so the test fails where no refusal exists."""
    def reached(args):
        raise Validated

    monkeypatch.setattr(cli.common, "load_data", reached)
    for name, holds, extra in (("empty", [], []), ("leftover", [".checkpoint.tmp/"], []),
                               ("encoder", ["benchbarcode.json", "config.json"], ["--overwrite"])):
        out = place / name
        out.mkdir()
        for entry in holds:
            (out / entry).mkdir() if entry.endswith("/") else (out / entry).write_text("{}")
        with pytest.raises(Validated):
            cli.main([*PRETRAIN, "--out", name, *extra])
    assert (place / "encoder" / "config.json").exists()  # nothing deleted before the work
    (place / "mine").mkdir()
    (place / "mine" / "notes.txt").write_text("keep me\n")
    assert cli.main([*PRETRAIN, "--out", "mine"]) == 2
    _one_error(capsys, "not a pretraining directory")


# ----------------------------------------------------------------------------- 3. run that can score nothing
def test_align_on_embedding_tasks_says_which_tasks_can_score_it(place, capsys, no_data):
    _refused(place, capsys, ["run", "--encoder", "align", "--tasks", "closed-world", "--data", SIM],
             "--encoder align", "not an embedding", "closed-world", "tasks that can: open-world")


def _empty_test_unseen(place: Path) -> str:
    """A BIOSCAN-5M-style table whose test_unseen split is empty (open-world needs it)."""
    rows = ["processid\torder\tfamily\tgenus\tspecies\tdna_bin\tdna_barcode\tsplit"]
    for i in range(40):
        sequence = "".join("ACGT"[(i * 7 + j * j) % 4] for j in range(120))
        rows.append(f"P{i}\tO\tF\tG{i % 2}\tG{i % 2} s{i % 4}\tBOLD:{i % 4}\t{sequence}\t"
                    f"{'train' if i < 30 else 'pretrain'}")
    (place / "splits.tsv").write_text("\n".join(rows) + "\n")
    return "splits.tsv"


@pytest.mark.parametrize("cache", [False, True], ids=["no cache", "cache"])
def test_a_run_that_scores_nothing_says_why(cache, place, capsys):
    data = _empty_test_unseen(place)
    argv = ["run", "--encoder", "kmer", "--data", data, "--tasks", "open-world", "--quiet"]
    assert cli.main(argv + ([] if cache else ["--no-cache"])) == 2
    _one_error(capsys, "no task was scored", "open-world: empty split(s): test_unseen")
    assert not (place / "results").exists()


# ----------------------------------------------------------------------------- 4, 5. invalid result files
def test_a_corrupt_result_says_overwrite_recomputes_it(place, capsys):
    argv = ["run", "--encoder", "kmer", "--data", SIM, "--tasks", "open-world", "--quiet"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    (path,) = place.glob("results/kmer/*/open-world.json")
    path.write_text("{not json")
    _refused(place, capsys, argv, f"{path.relative_to(place)}:1: invalid JSON", "--overwrite recomputes it")
    assert path.read_text() == "{not json"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert json.loads(path.read_text())["task"]["name"] == "open-world"


def test_leaderboard_on_an_invalid_file_names_skip_invalid(place, capsys):
    bad = place / "results" / "kmer" / "run" / "open-world.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    _refused(place, capsys, ["leaderboard", "--results-dir", "results", "--out", "board.md"],
             f"{bad.relative_to(place)}:1: invalid JSON", "--skip-invalid leaves it out")


# ----------------------------------------------------------------------------- 6. --device cuda
@pytest.mark.parametrize("command", COMMANDS, ids=["run", "embed", "pretrain", "profile"])
def test_cuda_without_a_gpu_suggests_the_cpu(command, place, capsys, no_data, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _refused(place, capsys, [*command, "--device", "cuda"], "--device cuda", "no CUDA device",
             "--device cpu", "--device auto")


# ----------------------------------------------------------------------------- 7. before torch
EARLY = {
    "pretrain --steps 0": (["pretrain", "--encoder", "mae", "--out", "o", "--steps", "0"], "--steps"),
    "pretrain --batch-size -1": (["pretrain", "--encoder", "mae", "--out", "o", "--batch-size", "-1"],
                                 "--batch-size"),
    "pretrain --preset bogus": (["pretrain", "--encoder", "mae", "--out", "o", "--preset", "bogus"], "'bogus'"),
    "pretrain --seed -1": (["pretrain", "--encoder", "mae", "--out", "o", "--seed", "-1"], "--seed -1"),
    "run --checkpoint": (["run", "--encoder", "mae", "--checkpoint", "nosuch"], "--checkpoint nosuch"),
    "embed --checkpoint": (["embed", "--encoder", "mae", "--checkpoint", "nosuch", "--out", "x.npz"],
                           "--checkpoint nosuch"),
    "profile --checkpoint": (["profile", "--encoder", "mae", "--checkpoint", "nosuch"], "--checkpoint nosuch"),
}
_IMPORTS = ("import json, sys; from benchbarcode.cli import main; rc = main(json.loads(sys.argv[1])); "
            "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules)")


@pytest.mark.parametrize("case", sorted(EARLY))
def test_argument_errors_come_before_torch_is_imported(case, tmp_path):
    argv, word = EARLY[case]
    if argv[0] in ("run", "embed", "pretrain"):
        argv = [*argv, "--data", SIM]
    env = {**os.environ, "BENCHBARCODE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", _IMPORTS, json.dumps(argv)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"], (done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    assert line.startswith("benchbarcode: error: ") and word in line, line
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- 8. file modes
def _write_everything(place: Path, capsys) -> None:
    """Results, the embedding cache, a leaderboard, an export, embeddings, trained weights and
    pretrained encoders (a BERT one, whose weights are written again, and a GPT-2 one)."""
    import torch

    from benchbarcode import checkpoints
    from benchbarcode.models import build_model
    from benchbarcode.models.presets import get_preset
    from benchbarcode.supervised import write_trained
    from benchbarcode.tokenizers import KmerTokenizer

    assert cli.main(["run", "--encoder", "kmer", "--data", SIM, "--tasks", "open-world", "--quiet"]) == 0
    assert cli.main(["leaderboard", "--results-dir", "results", "--out", "board.md"]) == 0
    assert cli.main(["data", "export", "--data", SIM, "--out", "data.csv"]) == 0
    assert cli.main(["embed", "--encoder", "kmer", "--data", SIM, "--split", "test", "--out", "x.npz",
                     "--quiet"]) == 0
    write_trained(place / "trained", torch.nn.Linear(2, 2), {"model": "linear"})
    for objective in ("mae", "causal"):
        preset = get_preset(objective, "tiny").with_overrides(layers=1, hidden=32, heads=2, intermediate=64)
        model = build_model(objective, preset)
        checkpoints.save_resumable(place / f"{objective}-unfinished", model, torch.optim.SGD(model.parameters()),
                                   {"step": 0})
        checkpoints.write_encoder(place / objective, model,
                                  {"objective": objective, "tokenizer": KmerTokenizer(6).to_dict(), "budget": {}})
    capsys.readouterr()


def test_written_files_take_the_mode_the_umask_gives(tmp_path, monkeypatch, capsys):
    for umask in (0o022, 0o077):
        place = tmp_path / f"umask-{umask:03o}"
        place.mkdir()
        monkeypatch.chdir(place)
        monkeypatch.setenv("BENCHBARCODE_CACHE", str(place / "cache"))
        previous = os.umask(umask)
        try:
            _write_everything(place, capsys)
        finally:
            os.umask(previous)
        written = sorted(place.rglob("*"))
        assert {"results", "cache", "board.md", "data.csv", "x.npz", "trained", "mae", "causal",
                "model.safetensors", "mae-unfinished", "checkpoint"} <= {p.name for p in written}
        assert any(p.suffix == ".npy" for p in written)  # the embedding cache
        modes = {str(p.relative_to(place)): stat.S_IMODE(p.stat().st_mode) for p in written}
        expected = {str(p.relative_to(place)): (0o777 if p.is_dir() else 0o666) & ~umask for p in written}
        assert modes == expected
