"""The Hugging Face adapter (``hf:MODEL`` and the presets) on tiny models built locally, offline.

Each preset runs against a tiny stand-in of its model family (tests/hf_models.py) through
``--checkpoint DIR``, the way a user runs a preset on a local copy.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import types
from pathlib import Path

import hf_models
import numpy as np
import pytest
import torch

from benchbarcode.cli import main
from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.registry import get_encoder, list_encoders
from benchbarcode.results import read_result

DATA = "sim:1200"
SEQS = ["ACGTACGGTTAACCGT" * 40, "ACGTNNACGT" * 10, "GATTACA" * 30, "ACGTTGCA"]


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHBARCODE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: build(root / f"tiny-{kind}") for kind, build in hf_models.BUILDERS.items()}


@pytest.fixture(scope="module")
def sequences() -> list[str]:
    return load_barcodes(DATA).split("test_unseen")["sequence"].tolist()[:40]


def run(tmp_path, *args) -> int:
    return main(["run", "--data", DATA, "--tasks", "open-world", "--results-dir", str(tmp_path / "results"),
                 "--quiet", *args])


def only_result(tmp_path) -> dict:
    (path,) = (tmp_path / "results").glob("*/*/open-world.json")
    return read_result(path)


def mean_over(hidden: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
    w = keep.to(hidden.dtype)[..., None]
    return ((hidden * w).sum(1) / w.sum(1).clamp(min=1)).numpy()


# ----------------------------------------------------------------------------- hf:DIR, native BERT
def test_hf_directory_runs_end_to_end_and_equals_a_direct_forward(tmp_path, models, sequences):
    """The acceptance path: hf:./dir offline, and the vectors are transformers' own forward,
    averaged over the tokens that are neither padding nor special."""
    from transformers import AutoModel, AutoTokenizer

    assert run(tmp_path, "--encoder", f"hf:{models['bert']}") == 0
    result = only_result(tmp_path)
    enc = result["encoder"]
    assert enc["name"] == f"hf:{models['bert']}" and enc["family"] == "hf"
    assert enc["loader"]["model_class"].endswith("BertModel") and enc["loader"]["remote_code"] is False
    assert enc["loader"]["hidden_state"] == "last_hidden_state"
    assert len(enc["checkpoint"]["sha256"]) == 64 and enc["dtype"] == result["dtype"] == "float32"
    assert enc["embedding_dim"] == 32 and enc["parameters"] > 0

    tokenizer, model = AutoTokenizer.from_pretrained(models["bert"]), AutoModel.from_pretrained(models["bert"])
    got = get_encoder(f"hf:{models['bert']}").create().embed(sequences, batch_size=7)
    with torch.inference_mode():
        for seq, vec in zip(sequences[:5], got):
            ids = torch.tensor([tokenizer(seq)["input_ids"]])
            keep = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
            want = mean_over(model(input_ids=ids).last_hidden_state, keep)[0]
            np.testing.assert_allclose(vec, want, atol=1e-5)


def test_vectors_do_not_depend_on_batching_case_or_unknown_bases(models):
    enc = get_encoder(f"hf:{models['bert']}").create()
    batched = enc.embed(SEQS, batch_size=4)
    alone = np.stack([enc.embed([s])[0] for s in SEQS])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    np.testing.assert_allclose(enc.embed([s.lower() for s in SEQS]), batched, atol=1e-6)  # upper-cased
    # N is [UNK] for a BPE over ACGT: left out of the mean, like the other special tokens
    assert 0 in enc.meta.loader["special_tokens_excluded"] and enc.meta.loader["uppercase"] is True


# ----------------------------------------------------------------------------- presets on stand-ins
def test_causal_model_through_the_hyenadna_preset(tmp_path, models):
    assert run(tmp_path, "--encoder", "hyenadna", "--checkpoint", str(models["gpt2"])) == 0
    enc = only_result(tmp_path)["encoder"]
    assert (enc["name"], enc["family"], enc["objective"]) == ("hyenadna", "HyenaDNA", "causal")
    assert enc["checkpoint"]["model"] == "LongSafari/hyenadna-tiny-1k-seqlen-d256-hf"
    assert enc["checkpoint"]["path"] == str(models["gpt2"].resolve())
    assert enc["loader"]["context_tokens"] == 1024


def test_masked_lm_class_through_the_nt_preset(tmp_path, models):
    """NT's hub code declares only AutoModelForMaskedLM: the vector comes from hidden_states[-1]."""
    assert run(tmp_path, "--encoder", "nt", "--checkpoint", str(models["esm"])) == 0
    enc = only_result(tmp_path)["encoder"]
    assert enc["loader"]["auto_class"] == "AutoModelForMaskedLM"
    assert enc["loader"]["hidden_state"] == "hidden_states[-1] (requested with output_hidden_states)"
    e = get_encoder("nt").create(checkpoint=str(models["esm"]))
    np.testing.assert_allclose(e.embed(SEQS, batch_size=3), np.stack([e.embed([s])[0] for s in SEQS]), atol=1e-5)


def test_remote_code_needs_the_flag(tmp_path, models, capsys):
    assert run(tmp_path, "--encoder", "dnabert2", "--checkpoint", str(models["mosaic"])) == 2
    err = capsys.readouterr().err.strip()
    assert "--trust-remote-code" in err and "modeling_tinymosaic.py" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_dnabert2_preset_handles_the_traps(tmp_path, models):
    from transformers import AutoModel, AutoTokenizer

    # the traps are real in this transformers: meta-device initialisation fails ...
    with pytest.raises(RuntimeError, match="meta"):
        AutoModel.from_pretrained(models["mosaic"], trust_remote_code=True)
    assert run(tmp_path, "--encoder", "dnabert2", "--checkpoint", str(models["mosaic"]),
               "--trust-remote-code") == 0
    enc = only_result(tmp_path)["encoder"]
    loader = enc["loader"]
    assert loader["init"] == "eager (declared fix)" and loader["fixes"] == ["no-triton", "eager-init"]
    assert loader["config"] == "passed explicitly" and loader["remote_code"] is True
    assert loader["hidden_state"] == "output[0]" and loader["tokenizer_calls"] == "batched"
    assert loader["weights"]["ignored_first"] == ["cls.bias", "cls.weight"]  # the MLM head
    assert loader["weights"]["unused_missing"] == ["pooler.bias", "pooler.weight"]

    # ... and without the attention mask, the model guesses padding from pad_token_id 0 ([UNK]),
    # not the tokenizer's [PAD] = 3: the adapter always passes the mask
    encoder = get_encoder("dnabert2").create(checkpoint=str(models["mosaic"]), trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(models["mosaic"])
    assert tokenizer.pad_token_id == 3 and encoder.model.config.pad_token_id == 0
    short, long_ = "ACGTTGCA" * 3, "ACGTACGGTTAACCGT" * 20
    alone = encoder.embed([short])[0]
    np.testing.assert_allclose(encoder.embed([short, long_], batch_size=2)[0], alone, atol=1e-5)
    ids = tokenizer([short, long_], padding=True, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        unmasked = encoder.model(input_ids=ids)[0][:1]
    keep = ~torch.isin(ids[:1], torch.tensor(tokenizer.all_special_ids))
    assert np.abs(mean_over(unmasked, keep)[0] - alone).max() > 1e-3


def test_meta_device_failure_falls_back_to_eager_init(models):
    encoder = get_encoder(f"hf:{models['mosaic']}").create(trust_remote_code=True)
    assert encoder.meta.loader["init"].startswith("eager (meta-device initialisation failed")
    preset = get_encoder("dnabert2").create(checkpoint=str(models["mosaic"]), trust_remote_code=True)
    np.testing.assert_allclose(encoder.embed(SEQS), preset.embed(SEQS), atol=1e-6)


def test_triton_is_hidden_by_the_preset_fix(tmp_path, monkeypatch):
    """With triton importable, the remote code takes its (failing) Triton path unless the preset's
    no-triton fix hides the module while the code is imported."""
    monkeypatch.setitem(sys.modules, "triton", types.ModuleType("triton"))
    fixed = hf_models.tiny_mosaic(tmp_path / "fixed", variant="fixed")
    encoder = get_encoder("dnabert2").create(checkpoint=str(fixed), trust_remote_code=True)
    assert encoder.embed(SEQS[:2]).shape == (2, 32)
    assert sys.modules["triton"] is not None  # restored afterwards
    plain = hf_models.tiny_mosaic(tmp_path / "plain", variant="plain")
    with pytest.raises(UserError, match="fails on a probe batch.*Triton"):
        get_encoder(f"hf:{plain}").create(trust_remote_code=True)


def test_barcodebert_style_remote_tokenizer_and_outputs(tmp_path, models, sequences):
    """A tokenizer that takes one sequence and returns 1-D ids, a forward without a mask, an
    output without last_hidden_state: as the hub's BarcodeBERT."""
    from transformers import AutoModel, AutoTokenizer

    assert run(tmp_path, "--encoder", "barcodebert", "--checkpoint", str(models["barcodebert"]),
               "--trust-remote-code") == 0
    loader = only_result(tmp_path)["encoder"]["loader"]
    assert loader["tokenizer_calls"] == "one sequence at a time"
    assert loader["attention_mask"].startswith("not taken by the model")
    assert loader["hidden_state"] == "hidden_states[-1]"

    encoder = get_encoder("barcodebert").create(checkpoint=str(models["barcodebert"]), trust_remote_code=True)
    got = encoder.embed(sequences[:6], batch_size=4)
    tokenizer = AutoTokenizer.from_pretrained(models["barcodebert"], trust_remote_code=True)
    model = AutoModel.from_pretrained(models["barcodebert"], trust_remote_code=True).eval()
    with torch.inference_mode():
        for seq, vec in zip(sequences[:6], got):
            ids = tokenizer(seq, return_tensors="pt")["input_ids"].unsqueeze(0)
            keep = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
            np.testing.assert_allclose(vec, mean_over(model(ids).hidden_states[-1], keep)[0], atol=1e-5)


# ----------------------------------------------------------------------------- policies and options
def test_long_sequences_truncated_or_chunked_as_recorded(models):
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(models["bert"]), AutoModel.from_pretrained(models["bert"])
    seq = SEQS[0]
    ids = tokenizer(seq)["input_ids"]
    content = ids[1:-1]
    assert len(ids) > 16
    truncate = get_encoder(f"hf:{models['bert']}").create(context=16)
    chunk = get_encoder(f"hf:{models['bert']}").create(context=16, long_sequences="chunk")
    assert truncate.meta.loader["long_sequences"] == "truncate" and truncate.meta.loader["context_tokens"] == 16
    assert chunk.meta.loader["long_sequences"] == "chunk"
    with torch.inference_mode():
        first = torch.tensor([[ids[0], *content[:14], ids[-1]]])
        np.testing.assert_allclose(truncate.embed([seq])[0],
                                   mean_over(model(input_ids=first).last_hidden_state,
                                             torch.tensor([[False] + [True] * 14 + [False]]))[0], atol=1e-5)
        total, count = 0.0, 0
        for i in range(0, len(content), 14):
            window = torch.tensor([[ids[0], *content[i:i + 14], ids[-1]]])
            states = model(input_ids=window).last_hidden_state[0, 1:-1]
            total, count = total + states.sum(0), count + states.shape[0]
        np.testing.assert_allclose(chunk.embed([seq])[0], (total / count).numpy(), atol=1e-5)
    assert truncate.meta.identity() != chunk.meta.identity()  # a policy is part of the cache key


def test_bfloat16_inference(models):
    fp32 = get_encoder(f"hf:{models['bert']}").create().embed(SEQS)
    enc = get_encoder(f"hf:{models['bert']}").create(dtype="bfloat16")
    assert enc.meta.dtype == "bfloat16" and next(enc.model.parameters()).dtype == torch.bfloat16
    bf16 = enc.embed(SEQS)
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert bf16.dtype == np.float32 and cos.min() > 0.99


@pytest.mark.parametrize("options,match", [
    ({"long_sequences": "average"}, "long_sequences 'average'"),
    ({"fixes": "no-triton,bogus"}, "fixes 'bogus'"),
    ({"context": 2}, "context must be an integer"),
    ({"auto_class": "AutoModelForCausalLM", "trust_remote_code": True}, "declares only"),
    ({"revision": "main"}, "has no revisions"),
])
def test_bad_options_are_one_line_errors(models, options, match):
    target = models["mosaic"] if "trust_remote_code" in options else models["bert"]
    with pytest.raises(UserError, match=match):
        get_encoder(f"hf:{target}").create(**options)


def test_missing_weights_are_an_error_not_random(tmp_path, models):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(models["bert"], broken)
    weights = load_file(str(broken / "model.safetensors"))
    del weights["encoder.layer.0.attention.self.query.weight"]
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"lacks 1 weight\(s\).*query.weight"):
        get_encoder(f"hf:{broken}").create()


def test_a_pickled_payload_in_pytorch_model_bin_is_refused_unexecuted(tmp_path, models):
    """Weights in pytorch_model.bin are read with torch.load(weights_only=True): a file that
    would run code when unpickled is refused, and the code does not run."""
    evil = tmp_path / "evil"
    shutil.copytree(models["mosaic"], evil)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    payload = {"bert.word_embeddings.weight": Payload()}
    pickle.loads(pickle.dumps(payload, protocol=2))
    assert marker.exists()  # the payload is live
    marker.unlink()
    with open(evil / "pytorch_model.bin", "wb") as fh:
        pickle.dump(payload, fh, protocol=2)
    with pytest.raises(UserError, match=r"pytorch_model.bin: refused: it needs"):
        get_encoder("dnabert2").create(checkpoint=str(evil), trust_remote_code=True)
    assert not marker.exists()


# ----------------------------------------------------------------------------- the hub path, offline
def _hub_snapshot(bert_dir: Path, repo: str, commit: str) -> None:
    """Lay out ``bert_dir`` as the Hugging Face cache holds a downloaded hub model."""
    from huggingface_hub import constants

    org, name = repo.split("/")
    root = Path(constants.HF_HUB_CACHE) / f"models--{org}--{name}"
    shutil.copytree(bert_dir, root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)


def test_hub_id_from_the_cache_records_the_resolved_commit(tmp_path, models):
    commit = "0123456789abcdef0123456789abcdef01234567"
    _hub_snapshot(models["bert"], "benchbarcode-tests/tiny-bert", commit)
    assert run(tmp_path, "--encoder", "hf:benchbarcode-tests/tiny-bert") == 0
    result = only_result(tmp_path)
    assert result["encoder"]["checkpoint"] == {"model": "benchbarcode-tests/tiny-bert", "revision": None,
                                               "commit": commit}
    assert (tmp_path / "results" / "hf-benchbarcode-tests-tiny-bert").is_dir()
    pinned = get_encoder("hf:benchbarcode-tests/tiny-bert").create(revision=commit)
    assert pinned.meta.checkpoint["revision"] == pinned.meta.checkpoint["commit"] == commit


def test_preset_offline_without_a_copy_says_how_to_get_it(tmp_path, capsys):
    for command in (["run", "--encoder", "dnabert2", "--data", DATA, "--results-dir", str(tmp_path / "r")],
                    ["embed", "--encoder", "dnabert2", "--data", DATA, "--split", "test",
                     "--out", str(tmp_path / "e.npz")]):
        assert main([*command, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "hf download zhihan1996/DNABERT-2-117M" in err and "HF_HUB_OFFLINE" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "e.npz").exists()


def test_no_such_directory_and_options_an_encoder_does_not_take(tmp_path, capsys):
    assert run(tmp_path, "--encoder", f"hf:{tmp_path / 'nope'}") == 2
    assert "no such directory" in capsys.readouterr().err
    assert run(tmp_path, "--encoder", "kmer", "--trust-remote-code") == 2
    assert "does not take option(s) trust_remote_code" in capsys.readouterr().err
    assert run(tmp_path, "--encoder", "kmer:6") == 2
    assert "takes no ':VALUE'" in capsys.readouterr().err


def test_presets_listed_with_their_origin(capsys):
    names = {e.name: e for e in list_encoders()}
    for preset, model in (("dnabert2", "zhihan1996/DNABERT-2-117M"), ("dnabert-s", "zhihan1996/DNABERT-S"),
                          ("nt", "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species"),
                          ("hyenadna", "LongSafari/hyenadna-tiny-1k-seqlen-d256-hf"),
                          ("barcodebert", "bioscan-ml/BarcodeBERT")):
        assert names[preset].origin == f"preset of hf:{model}"
    assert names["hf"].argument == "model" and names["kmer"].origin == "built-in"
    assert main(["encoders", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["hf:MODEL"]["origin"] == "built-in" and rows["dnabert2"]["origin"].startswith("preset of hf:")


def test_without_a_network_the_cache_is_read_at_once(tmp_path, models, monkeypatch):
    """HF_HUB_OFFLINE unset but the hub unreachable: a cached model loads from the cache and an
    uncached one fails at once with the how-to line (no 30 s of retried requests)."""
    from huggingface_hub import constants

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    _hub_snapshot(models["bert"], "benchbarcode-tests/unreachable", commit)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.benchbarcode.invalid")
    encoder = get_encoder("hf:benchbarcode-tests/unreachable").create()
    assert encoder.meta.checkpoint["commit"] == commit and encoder.embed(SEQS[:1]).shape == (1, 32)
    with pytest.raises(UserError, match=r"hub\.benchbarcode\.invalid does not resolve\): download it once"):
        get_encoder("hf:benchbarcode-tests/not-cached").create()
