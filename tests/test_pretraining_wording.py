"""Wherever an encoder's pretraining budget is shown (run's summary line, the leaderboard), it
says one of three things: this suite's numbers, ``none (not pretrained)`` for an encoder without
pretraining, or ``not stated (third-party weights)`` for weights trained elsewhere."""

from __future__ import annotations

import hf_models
import pytest
from conftest import pretrain_tiny_mae

from benchbarcode.cli import main
from benchbarcode.cli.common import budget_line
from benchbarcode.registry import get_encoder
from benchbarcode.results import build_result, write_result
from benchbarcode.summary import NOT_PRETRAINED, THIRD_PARTY_WEIGHTS, pretraining_origin

DATA = {"name": "sim:900:0", "source": "sim:900", "content_hash": "a" * 64, "records": 900,
        "split_origin": "derived", "split_seed": 0, "split_sizes": {"train": 500, "test": 100}}
TASK = {"name": "open-world", "version": "1", "description": "1-NN", "splits": ["train", "test"],
        "label_rank": "genus", "metrics": ["accuracy"], "main_score": "accuracy", "protocol": {"k": 1}}


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return hf_models.tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert")


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """A directory this suite pretrained (two steps of a one-layer mae)."""
    return pretrain_tiny_mae(tmp_path_factory.mktemp("pretrained") / "mae", steps=2)


def records(hf_dir, pretrained_dir) -> dict[str, tuple[dict, str]]:
    """The encoder records of each case, as the encoders themselves describe them: (record, origin)."""
    created = {"kmer": (get_encoder("kmer").create(k=3), "none"),
               "align": (get_encoder("align").create(), "none"),
               "random": (get_encoder("random").create(like="mae"), "none"),
               "cnn-init": (get_encoder("cnn-init").create(), "none"),
               "hf": (get_encoder(f"hf:{hf_dir}").create(), "third party"),
               "mae": (get_encoder("mae").create(checkpoint=str(pretrained_dir)), "this suite")}
    return {name: (encoder.meta.to_dict(), origin) for name, (encoder, origin) in created.items()}


def test_each_encoder_says_whose_pretraining_it_is(hf_dir, pretrained_dir):
    for name, (meta, origin) in records(hf_dir, pretrained_dir).items():
        assert pretraining_origin(meta["budget"]) == origin, name
        line = budget_line(meta)
        if origin == "none":
            assert line.endswith(f"; pretraining budget: {NOT_PRETRAINED}"), line
        elif origin == "third party":
            assert line.endswith("; pretraining budget: not stated (third-party weights)"), line
        else:
            assert line.endswith("; pretraining budget: 2 steps, 8 sequences, "
                                 f"{meta['budget']['flops']:.3g} FLOPs"), line
    old_hf = {"budget": {}}  # a Hugging Face result written before its loader marked the weights
    assert pretraining_origin(old_hf["budget"]) == "third party"


def test_the_leaderboard_says_the_same(hf_dir, pretrained_dir, tmp_path, capsys):
    results = tmp_path / "results"
    for meta, _ in records(hf_dir, pretrained_dir).values():
        result = build_result(run_id="r", task_meta=TASK, encoder_meta=meta, data_identity=DATA, device="cpu",
                              dtype="float32", batch_size=64, seeds={"run": 0, "split": 0},
                              outcome={"scores": {"accuracy": 0.5}, "scores_std": {}, "seeds": [0], "counts": {}},
                              timings_s={"pretrain": 0, "embed": 0, "evaluate": 0}, command=["benchbarcode", "run"])
        write_result(results / meta["name"].replace("/", "-").replace(":", "-") / "r" / "open-world.json", result)
    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    rows = {line.split("|")[2].strip(): line.split("|")[5].strip()
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "|---" not in line}
    cells = {name.split(" ")[0]: cell for name, cell in rows.items() if name != "encoder"}
    assert cells.pop(f"hf:{hf_dir}") == THIRD_PARTY_WEIGHTS
    assert cells.pop("mae").startswith("8 seq, ")  # this suite's: sequences and FLOPs
    assert cells == {"kmer": NOT_PRETRAINED, "align": NOT_PRETRAINED, "random": NOT_PRETRAINED,
                     "cnn-init": NOT_PRETRAINED}


def test_run_prints_it(hf_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))
    for encoder, said in (("kmer", NOT_PRETRAINED), (f"hf:{hf_dir}", THIRD_PARTY_WEIGHTS)):
        assert main(["run", "--encoder", encoder, "--data", "sim:1200", "--tasks", "open-world",
                     "--results-dir", str(tmp_path / "results")]) == 0
        assert f"; pretraining budget: {said}\n" in capsys.readouterr().out
