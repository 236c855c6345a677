"""Weights this suite trained are identified by their tensors (name, dtype, shape, bytes), not by
their file: the same tensors written with other metadata or in another order keep their identity,
run id and embedding-cache key; any changed value changes them."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import pretrain_tiny_mae
from safetensors.torch import load_file, save_file

from benchbarcode.canonical import file_sha256, safetensors_sha256, tensors_sha256
from benchbarcode.checkpoints import META_FILE, WEIGHTS_FILE
from benchbarcode.embed import cache_key, cache_key_parts
from benchbarcode.leaderboard import row_key
from benchbarcode.registry import get_encoder


def _state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"encoder.weight": torch.randn(4, 3, generator=gen), "encoder.bias": torch.zeros(4),
            "embeddings.ids": torch.arange(6), "half": torch.ones(2, 2, dtype=torch.bfloat16),
            "scale": torch.tensor(2.0)}


def test_the_same_tensors_in_other_files_keep_their_hash(tmp_path):
    state = _state()
    save_file(state, str(tmp_path / "a.safetensors"), metadata={"format": "pt"})
    save_file(dict(reversed(state.items())), str(tmp_path / "b.safetensors"),
              metadata={"format": "pt", "transformers_version": "5.24.0"})
    assert file_sha256(tmp_path / "a.safetensors") != file_sha256(tmp_path / "b.safetensors")
    assert safetensors_sha256(tmp_path / "a.safetensors") == safetensors_sha256(tmp_path / "b.safetensors") \
        == tensors_sha256(state) == tensors_sha256(dict(reversed(state.items())))


@pytest.mark.parametrize("change", ["one value", "dtype, same bytes", "shape, same bytes", "name"])
def test_a_changed_value_dtype_shape_or_name_changes_it(change):
    state = _state()
    before = tensors_sha256(state)
    if change == "one value":
        state["encoder.weight"] = state["encoder.weight"].clone()
        state["encoder.weight"][2, 1] += 1e-6
    elif change == "dtype, same bytes":
        state["encoder.bias"] = state["encoder.bias"].view(torch.int32)
    elif change == "shape, same bytes":
        state["encoder.weight"] = state["encoder.weight"].reshape(3, 4)
    else:
        state["encoder.weights"] = state.pop("encoder.weight")
    assert tensors_sha256(state) != before


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """A directory written by pretraining (one step of a one-layer mae)."""
    return pretrain_tiny_mae(tmp_path_factory.mktemp("identity") / "mae", steps=1)


def _rewrite(directory, state: dict, metadata: dict) -> None:
    """Write ``state`` as the directory's weights, as another library version would, recording the
    new file's sha256 as pretraining does (so that it reads back as undamaged)."""
    save_file(state, str(directory / WEIGHTS_FILE), metadata=metadata)
    info = json.loads((directory / META_FILE).read_text())
    (directory / META_FILE).write_text(json.dumps({**info, "weights_sha256": file_sha256(directory / WEIGHTS_FILE)}))


def _meta(directory):
    return get_encoder("mae").create(checkpoint=str(directory)).meta


def test_in_house_weights_are_named_by_their_tensors(encoder_dir, tmp_path):
    import shutil

    copy = shutil.copytree(encoder_dir, tmp_path / "copy")
    state = load_file(str(copy / WEIGHTS_FILE))
    _rewrite(copy, dict(reversed(state.items())), {"format": "pt", "transformers_version": "5.24.0"})
    assert file_sha256(copy / WEIGHTS_FILE) != file_sha256(encoder_dir / WEIGHTS_FILE)
    original, rewritten = _meta(encoder_dir), _meta(copy)
    assert "sha256" not in original.checkpoint  # the field says what was hashed
    assert original.checkpoint["tensors_sha256"] == rewritten.checkpoint["tensors_sha256"] == tensors_sha256(state)
    assert original.identity() == rewritten.identity()  # the run id and the cache key hash it
    assert cache_key(cache_key_parts(original, "d" * 64, "test")) == cache_key(cache_key_parts(rewritten, "d" * 64, "test"))

    name = sorted(state)[0]
    changed = {**state, name: state[name].clone()}
    changed[name].view(-1)[0] += 1
    _rewrite(copy, changed, {"format": "pt"})
    assert _meta(copy).checkpoint["tensors_sha256"] != original.checkpoint["tensors_sha256"]
    assert _meta(copy).identity() != original.identity()


def test_a_board_row_holds_results_from_before_and_after_the_tensor_hash():
    """Weights made from the seed: their hash (either kind) is no part of the row, as before."""
    meta = {"name": "mae", "objective": "mae", "options": {"seed": 0}, "budget": {"steps": 10}}
    before = {**meta, "checkpoint": {"sha256": "a" * 64, "preset": "tiny", "seed": 0}}
    after = {**meta, "checkpoint": {"tensors_sha256": "b" * 64, "preset": "tiny", "seed": 0}}
    assert row_key(before, "d" * 64) == row_key(after, "d" * 64)
