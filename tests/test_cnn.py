"""The supervised CNN baseline (`cnn`) and its control (`cnn-init`): the architecture against the
reference script's facts, the reference feature extractor, training on the train split alone,
the trained directory, and `run` training it once."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchbarcode import supervised
from benchbarcode.canonical import tensors_sha256
from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.registry import control_of, get_encoder
from benchbarcode.results import read_result
from benchbarcode.run import RunOptions, run_benchmark
from benchbarcode.spec import EncoderSpec, resolve_encoder

DATA = "sim:1200"


@pytest.fixture(scope="module")
def ds():
    return load_barcodes(DATA)


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def training_calls(monkeypatch):
    calls = []
    real = supervised.train

    def spy(trainer, sequences, labels, *a, **k):
        calls.append((trainer, list(sequences), list(labels)))
        return real(trainer, sequences, labels, *a, **k)

    monkeypatch.setattr(supervised, "train", spy)
    return calls


def test_architecture_matches_the_reference_shapes_and_parameter_count():
    import torch

    from benchbarcode.models.cnn import build, flat_dim, one_hot

    torch.manual_seed(0)
    model = build(7)
    assert flat_dim(660) == 1920
    names = [name for name, _ in model.named_children()]
    assert names == ["conv1", "bn1", "maxpool1", "conv2", "bn2", "maxpool2", "conv3", "bn3", "maxpool3",
                     "flatten", "bn4", "dense1", "dense2"]  # the reference's children, in its order
    assert [model.conv1.out_channels, model.conv2.out_channels, model.conv3.out_channels] == [64, 32, 16]
    assert model.conv1.kernel_size == (3, 3) and model.maxpool1.kernel_size == (3, 1)
    x = one_hot(["ACGT" * 200, "ACGTN"])
    assert x.shape == (2, 1, 660, 5)
    with torch.no_grad():
        assert model.flatten(model.maxpool3(model.conv3(model.maxpool2(model.conv2(model.maxpool1(
            model.conv1(x))))))).shape == (2, 1920)
        assert model(x).shape == (2, 7)
    body = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.dense2.parameters())
    assert body == 988_292 and model.dense2.in_features == 500
    assert get_encoder("cnn").default_parameters() == get_encoder("cnn-init").default_parameters() == body


def test_one_hot_is_acgtn_truncated_to_660_and_zero_padded():
    from benchbarcode.models.cnn import one_hot

    x = one_hot(["ACGTN" + "A" * 700, "GA"])[:, 0]
    assert x[0, :5].argmax(1).tolist() == [0, 1, 2, 3, 4] and x[0].sum() == 660  # cut at 660
    assert x[1, :2].argmax(1).tolist() == [2, 0] and x[1, 2:].abs().sum() == 0  # zeros after the end


def test_reference_features_drop_exactly_the_functional_relus_and_tanh():
    """features=reference is the reference genus script's `nn.Sequential(*children[:-1])`;
    features=trained is the forward's tanh(dense1), with the ReLUs after each convolution."""
    import torch
    from torch import nn

    from benchbarcode.models.cnn import build, one_hot

    torch.manual_seed(1)
    model = build(5)
    for bn in (model.bn1, model.bn2, model.bn3, model.bn4):  # batch norm that does something in eval
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = one_hot(["".join(np.random.default_rng(0).choice(list("ACGT"), 658)) for _ in range(3)])
    with torch.no_grad():
        reference = nn.Sequential(*list(model.children())[:-1])(x)
        h = x
        for conv, bn, pool in ((model.conv1, model.bn1, model.maxpool1), (model.conv2, model.bn2, model.maxpool2),
                               (model.conv3, model.bn3, model.maxpool3)):
            h = pool(bn(torch.relu(conv(h))))
        trained = torch.tanh(model.dense1(model.bn4(h.flatten(1))))
        torch.testing.assert_close(model.features(x, "reference"), reference, rtol=0, atol=0)
        torch.testing.assert_close(model.features(x, "trained"), trained, rtol=0, atol=0)
        torch.testing.assert_close(model(x), model.dense2(trained), rtol=0, atol=0)
        assert (reference - trained).abs().max() > 0.1 and reference.abs().max() > 1  # not bounded by tanh


def test_training_sees_only_the_train_split(tmp_path, ds, training_calls):
    """The label space is the train split's species: a species only in test or the unseen splits
    never appears, and every labelled train record (and nothing else) is a training example."""
    options = RunOptions(EncoderSpec("cnn", options={"epochs": 1}, device="cpu"), tasks=("open-world",),
                         results_dir=str(tmp_path / "r"), progress=False)
    report = run_benchmark(options, ds)
    [(_, sequences, labels)] = training_calls
    train = ds.split("train").dropna(subset=["species"])
    assert sorted(sequences) == sorted(train["sequence"]) and sorted(labels) == sorted(train["species"])
    directory = tmp_path / "cache" / "pretrained" / report.statuses[0].result["pretraining_key"]
    record = json.loads((directory / "benchbarcode.json").read_text())
    assert record["classes"] == sorted(set(train["species"]))
    elsewhere = set(ds.table["species"].dropna()) - set(train["species"])
    assert elsewhere and not elsewhere & set(record["classes"])
    budget = report.statuses[0].result["encoder"]["budget"]
    assert budget["supervision"] == "species labels of the train split" and budget["epochs"] == 1
    assert budget["train_sequences"] == len(train) and budget["sequences"] >= len(train) - 1
    assert budget["steps"] == -(-len(train) // 128) - (len(train) % 128 == 1) and budget["flops"] > 0


def _small_set():
    rng = np.random.default_rng(0)
    bases = {name: "".join(rng.choice(list("ACGT"), 600)) for name in ("a b", "c d", "e f")}
    sequences, labels = [], []
    for label, base in bases.items():
        for _ in range(12):
            seq = list(base)
            for i in rng.choice(600, 20, replace=False):
                seq[i] = "ACGT"[rng.integers(4)]
            sequences.append("".join(seq))
            labels.append(label)
    return sequences, labels


def test_trained_directory_round_trips_with_its_sha_checked(tmp_path, capsys):
    import torch

    from benchbarcode.encoders.cnn import TRAINER
    from benchbarcode.models.cnn import build, one_hot

    sequences, labels = _small_set()
    trainer = TRAINER.for_options({"epochs": 2})
    trainer(sequences, labels, tmp_path / "a", seed=3, device="cpu", progress=False)
    trainer(sequences, labels, tmp_path / "b", seed=3, device="cpu", progress=False)
    trainer(sequences, labels, tmp_path / "c", seed=4, device="cpu", progress=False)
    records = [json.loads((tmp_path / d / "benchbarcode.json").read_text()) for d in "abc"]
    assert records[0]["weights_sha256"] == records[1]["weights_sha256"] != records[2]["weights_sha256"]  # seeded
    assert records[0]["recipe"] == {"epochs": 2, "batch_size": 128, "lr": 1e-3, "max_len": 660}
    assert not list(tmp_path.glob(".*tmp"))  # the staging folders are gone

    encoder = get_encoder("cnn").create(checkpoint=str(tmp_path / "a"), device="cpu")
    _, state, identity = supervised.read_trained(tmp_path / "a")
    assert encoder.meta.checkpoint["tensors_sha256"] == identity == tensors_sha256(state)  # the tensors, not the file
    assert "sha256" not in encoder.meta.checkpoint
    model = build(3)
    model.load_state_dict(state)
    with torch.no_grad():
        expected = model.eval().features(one_hot(sequences[:5]), "trained").numpy()
    np.testing.assert_allclose(encoder.embed(sequences[:5], batch_size=2), expected, rtol=0, atol=1e-6)
    with pytest.raises(Exception, match="trained for 2 epochs"):
        get_encoder("cnn").create(checkpoint=str(tmp_path / "a"), epochs=5)

    weights = tmp_path / "a" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    code = main(["run", "--encoder", "cnn", "--checkpoint", str(tmp_path / "a"), "--data", DATA,
                 "--tasks", "open-world", "--results-dir", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "damaged" in err[0] and "model.safetensors" in err[0], err


def test_features_option_and_cnn_init(tmp_path):
    from benchbarcode.encoders.cnn import TRAINER

    sequences, labels = _small_set()
    TRAINER.for_options({"epochs": 1})(sequences, labels, tmp_path / "a", seed=0, device="cpu", progress=False)
    trained = get_encoder("cnn").create(checkpoint=str(tmp_path / "a"))
    reference = get_encoder("cnn").create(checkpoint=str(tmp_path / "a"), features="reference")
    assert reference.meta.options == {"features": "reference"}
    assert reference.meta.identity() != trained.meta.identity()
    assert not np.allclose(reference.embed(sequences[:4]), trained.embed(sequences[:4]))
    init = [get_encoder("cnn-init").create(seed=s).embed(sequences[:4]) for s in (0, 0, 1)]
    np.testing.assert_array_equal(init[0], init[1])
    assert not np.allclose(init[0], init[2])
    with pytest.raises(Exception, match="features=nope"):
        get_encoder("cnn-init").create(features="nope")


def test_training_key_follows_the_recipe_not_the_features(tmp_path):
    key = lambda **o: resolve_encoder(EncoderSpec("cnn", options=o)).pretraining_key("h", "cpu")  # noqa: E731
    assert key() == key(features="reference") != key(epochs=1)
    assert key().startswith("cnn-") and resolve_encoder(EncoderSpec("cnn")).pretrained_first
    assert not resolve_encoder(EncoderSpec("cnn", checkpoint=str(tmp_path))).pretrained_first
    assert resolve_encoder(EncoderSpec("cnn", options={"epochs": 1})).trainer.defaults.epochs == 1


def test_run_trains_once_and_with_control_writes_both(tmp_path, capsys, training_calls):
    results = tmp_path / "results"
    argv = ["run", "--encoder", "cnn", "--with-control", "--encoder-option", "epochs=1", "--data", DATA,
            "--tasks", "open-world", "--results-dir", str(results), "--device", "cpu", "--quiet"]
    assert main(argv) == 0 and len(training_calls) == 1
    [learned] = [read_result(p) for p in results.glob("cnn/*/open-world.json")]
    [control] = [read_result(p) for p in results.glob("cnn-init/*/open-world.json")]
    assert learned["encoder"]["options"] == {"epochs": 1} and learned["encoder"]["family"] == "supervised baseline"
    assert learned["encoder"]["budget"]["supervision"] == "species labels of the train split"
    assert learned["timings_s"]["pretrain"] > 0 and learned["pretraining_key"].startswith("cnn-")
    assert control["encoder"]["options"] == {"seed": 0} and control["encoder"]["budget"]["steps"] == 0
    assert control_of(learned["encoder"]) == ("cnn-init", {"features": None})
    assert main(argv + ["--overwrite"]) == 0 and len(training_calls) == 1  # cached: not trained again
    [again] = [read_result(p) for p in results.glob("cnn/*/open-world.json")]
    assert again["timings_s"]["pretrain"] == 0 and again["run_id"] == learned["run_id"]
    # the reference genus script's features: the same training, and a control with the same features
    assert main(argv + ["--encoder-option", "features=reference"]) == 0 and len(training_calls) == 1
    controls = {json.dumps(r["encoder"]["options"], sort_keys=True)
                for r in map(read_result, results.glob("cnn-init/*/open-world.json"))}
    assert controls == {'{"seed": 0}', '{"features": "reference", "seed": 0}'}
    capsys.readouterr()


def test_an_incomplete_training_directory_is_trained_again(tmp_path, ds, training_calls):
    options = RunOptions(EncoderSpec("cnn", options={"epochs": 1}, device="cpu"), tasks=("open-world",),
                         results_dir=str(tmp_path / "r"), progress=False)
    key = resolve_encoder(options.encoder).pretraining_key(ds.content_hash(), "cpu")
    stale = tmp_path / "cache" / "pretrained" / key
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"partial")  # no record: an interrupted write
    report = run_benchmark(options, ds)
    assert len(training_calls) == 1 and report.statuses[0].status == "done"
    assert supervised.read_trained(stale)[0]["recipe"]["epochs"] == 1
    report = run_benchmark(dataclasses.replace(options, overwrite=True), ds)
    assert len(training_calls) == 1


def test_interrupted_training_resumes_after_its_last_epoch_with_the_same_weights(tmp_path, monkeypatch):
    """Ctrl-C (or a killed process) during epoch 3 of 3: the rerun starts at epoch 3 from the state
    saved after epoch 2 and ends with the weights and loss history of an uninterrupted training."""
    from benchbarcode.encoders.cnn import TRAINER

    sequences, labels = _small_set()
    trainer = TRAINER.for_options({"epochs": 3})
    trainer(sequences, labels, tmp_path / "whole", seed=5, device="cpu", progress=False)

    real_save, saved = supervised.Partial.save, []

    def save_then_stop(self, *args):
        real_save(self, *args)
        saved.append(self.path)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(supervised.Partial, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        trainer(sequences, labels, tmp_path / "cut", seed=5, device="cpu", progress=False)
    assert not (tmp_path / "cut").exists() and (tmp_path / "cut.partial" / "state.pt").is_file()

    def count_saves(self, *args):
        saved.append(self.path)
        real_save(self, *args)

    saved.clear()
    monkeypatch.setattr(supervised.Partial, "save", count_saves)
    trainer(sequences, labels, tmp_path / "cut", seed=5, device="cpu", progress=False)
    assert saved == []  # only epoch 3 ran (a training from the start saves after epochs 1 and 2)
    whole, cut = (supervised.read_trained(tmp_path / d) for d in ("whole", "cut"))
    assert cut[2] == whole[2]  # the tensors' hash: the same weights
    assert cut[0]["loss_history"] == whole[0]["loss_history"] and cut[0]["budget"]["steps"] == whole[0]["budget"]["steps"]
    assert not (tmp_path / "cut.partial").exists()

    # a state left by another seed is not this training's: discarded, trained from the start
    monkeypatch.setattr(supervised.Partial, "save", save_then_stop)
    saved.clear()
    with pytest.raises(KeyboardInterrupt):
        trainer(sequences, labels, tmp_path / "other", seed=6, device="cpu", progress=False)
    saved.clear()
    monkeypatch.setattr(supervised.Partial, "save", count_saves)
    trainer(sequences, labels, tmp_path / "other", seed=5, device="cpu", progress=False)
    assert len(saved) == 2 and supervised.read_trained(tmp_path / "other")[2] == whole[2]
