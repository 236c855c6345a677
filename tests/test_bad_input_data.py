"""Bad input, round two (issue 23): damaged data files, files without barcodes, a directory given
as a data file, and truncated model weights.

Each case is driven through the CLI entry point: exit code 2, exactly one line on stderr that
starts with ``benchbarcode: error:``, names the file and says what is wrong with it, and nothing
written (the results or output directory is not created, or stays empty).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from benchbarcode import cli

FASTA = "".join(f">p{i}|O|F|G{i % 3}|G{i % 3} s{i % 5}\n{'ACGT' * 20}\n" for i in range(200))
CSV_HEADER = "processid,order,family,genus,species,dna_bin,dna_barcode\n"
CSV = CSV_HEADER + "".join(f"p{i},O,F,G{i % 3},G{i % 3} s{i % 5},B{i},{'ACGT' * 20}\n" for i in range(200))


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _cut(data: bytes) -> bytes:
    """The first half of a file, as an interrupted download leaves it."""
    return data[:len(data) // 2]


def _bad_crc(data: bytes) -> bytes:
    """A whole gzip stream whose stored CRC-32 (the 8 bytes before the length) is wrong."""
    return data[:-8] + b"\0\0\0\0" + data[-4:]


# name -> (file name, its bytes, what the line must say)
BAD_FILES = {
    "truncated .fasta.gz": ("cut.fasta.gz", _cut(_gzip(FASTA)), "truncated gzip file"),
    "truncated .csv.gz": ("cut.csv.gz", _cut(_gzip(CSV)), "truncated gzip file"),
    "not gzip, named .gz": ("plain.fasta.gz", FASTA.encode(), "corrupt gzip file, or not gzip-compressed"),
    "corrupt .csv.gz": ("crc.csv.gz", _bad_crc(_gzip(CSV)), "corrupt gzip file"),
    "TSV with only a header": ("header.tsv", CSV_HEADER.replace(",", "\t").encode(),
                               "holds no barcodes: no records after the header line"),
    "CSV whose dna_barcode values are all empty": (
        "empty.csv", (CSV_HEADER + "".join(f"p{i},O,F,G,G s,B{i},\n" for i in range(5))).encode(),
        "holds no barcodes: 5 records read, all dropped (5 whose 'dna_barcode' was empty"),
}
COMMANDS = {  # the command line around a data source and an encoder; each writes under ``out``
    "data describe": lambda data, out, encoder="kmer": ["data", "describe", "--data", data],
    "run": lambda data, out, encoder="kmer": ["run", "--encoder", encoder, "--data", data, "--tasks", "open-world",
                                              "--results-dir", str(out), "--quiet"],
    "embed": lambda data, out, encoder="kmer": ["embed", "--encoder", encoder, "--data", data,
                                                "--out", str(out / "x.npz"), "--quiet"],
}


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


def _one_error_line(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("benchbarcode: error: "), err[0]
    for name in names:
        assert name in err[0], err[0]
    return err[0]


def _nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_data_file_is_one_line(tmp_path, capsys, case, command):
    name, content, says = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    assert cli.main(COMMANDS[command](str(path), tmp_path / "out")) == 2
    _one_error_line(capsys, str(path), says)
    _nothing_written(tmp_path / "out")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_directory_as_data_says_what_is_expected(tmp_path, capsys, command):
    directory = tmp_path / "bioscan"
    directory.mkdir()
    assert cli.main(COMMANDS[command](str(directory), tmp_path / "out")) == 2
    line = _one_error_line(capsys, str(directory), "is a directory", f"bioscan5m:{directory}")
    assert "no such file" not in line
    _nothing_written(tmp_path / "out")


# ----------------------------------------------------------------------------- truncated weights
def _truncated_copy(directory: Path, to: Path) -> Path:
    shutil.copytree(directory, to)
    weights = to / "model.safetensors"
    weights.write_bytes(_cut(weights.read_bytes()))
    return to


@pytest.fixture(scope="module")
def hf_directory(tmp_path_factory) -> Path:
    import hf_models

    return hf_models.tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture(scope="module")
def pretrained_directory(tmp_path_factory) -> Path:
    """A directory written by ``benchbarcode pretrain`` (two steps on tiny data)."""
    root = tmp_path_factory.mktemp("pretrained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHBARCODE_CACHE", str(root / "cache"))
        assert cli.main(["pretrain", "--encoder", "mae", "--steps", "2", "--batch-size", "8", "--data", "sim:300",
                         "--out", str(root / "mae"), "--quiet"]) == 0
    return root / "mae"


@pytest.mark.parametrize("command", ["run", "embed"])
def test_hf_directory_with_truncated_weights(tmp_path, capsys, hf_directory, command):
    broken = _truncated_copy(hf_directory, tmp_path / "hf-broken")
    assert cli.main(COMMANDS[command]("sim:300", tmp_path / "out", encoder=f"hf:{broken}")) == 2
    _one_error_line(capsys, str(broken / "model.safetensors"), "truncated safetensors file")
    _nothing_written(tmp_path / "out")


@pytest.mark.parametrize("recorded", [True, False], ids=["weights sha256 recorded", "written before it was"])
def test_pretrained_directory_with_truncated_weights(tmp_path, capsys, pretrained_directory, recorded):
    broken = _truncated_copy(pretrained_directory, tmp_path / "mae-broken")
    if not recorded:  # then transformers' own load fails, and that failure must name the damage
        info = json.loads((broken / "benchbarcode.json").read_text())
        del info["weights_sha256"]
        (broken / "benchbarcode.json").write_text(json.dumps(info))
    argv = ["run", "--encoder", "mae", "--checkpoint", str(broken), "--data", "sim:300", "--tasks", "open-world",
            "--results-dir", str(tmp_path / "out"), "--quiet"]
    assert cli.main(argv) == 2
    _one_error_line(capsys, str(broken / "model.safetensors"), "truncated safetensors file")
    _nothing_written(tmp_path / "out")
