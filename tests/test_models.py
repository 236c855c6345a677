"""Tests for benchbarcode.models: masking, the three pretraining objectives, saving, pooling,
the shared config builder and batch preamble, and the untrained in-house encoder."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import transformers

from benchbarcode.errors import UserError
from benchbarcode.models import (
    CausalForPretraining,
    LinearCEHead,
    MAEForPretraining,
    MLMForPretraining,
    bert_encoder_config,
    encode,
    gpt2_encoder_config,
    last_token,
    light_decoder_sizes,
    linear_cross_entropy,
    masked_mean,
    sample_mask,
    transformer_sizes,
)
from benchbarcode.registry import get_encoder
from benchbarcode.tokenizers import MASK_ID, UNK_ID, KmerTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny problems

K = 3
MAX_LEN = 90  # T = 30 tokens
SIZES = dict(k=K, n_tokens=MAX_LEN // K, layers=2, heads=2, hidden=32, intermediate=64)


def _random_batch(n=8, seed=0, k=K, max_len=MAX_LEN, with_n=True):
    rng = np.random.default_rng(seed)
    seqs = []
    for i in range(n):
        length = int(rng.integers(max_len // 2, max_len + 1))
        s = "".join(rng.choice(list("ACGT"), size=length))
        if with_n and i % 3 == 0:  # an ambiguous base -> [UNK] k-mer(s) inside the sequence
            j = int(rng.integers(0, length - 1))
            s = s[:j] + "N" + s[j + 1 :]
        seqs.append(s)
    ids, am = KmerTokenizer(k=k, max_len=max_len)(seqs)
    return torch.from_numpy(ids), torch.from_numpy(am)


def _motif_batch(n=16, seed=0, k=K, max_len=MAX_LEN, n_motifs=4):
    """Structured sequences: each repeats one of ``n_motifs`` motifs of 2 k-mers, with a random phase
    and a random length (so rows are padded)."""
    rng = np.random.default_rng(seed)
    motifs = ["".join(rng.choice(list("ACGT"), size=2 * k)) for _ in range(n_motifs)]
    seqs = []
    for _ in range(n):
        motif = motifs[int(rng.integers(n_motifs))]
        phase = int(rng.integers(2)) * k
        length = int(rng.integers(max_len * 2 // 3, max_len + 1))
        seqs.append((motif * (max_len // len(motif) + 2))[phase : phase + length])
    ids, am = KmerTokenizer(k=k, max_len=max_len)(seqs)
    return torch.from_numpy(ids), torch.from_numpy(am)


def _expected_count(n, ratio):
    m = int(torch.round(torch.tensor(n * ratio, dtype=torch.float64)))
    if ratio > 0 and n >= 1:
        m = max(m, 1)
    return min(m, n)


# ---------------------------------------------------------------------------- masking
@pytest.mark.parametrize("ratio", [0.0, 0.15, 0.5, 0.8, 1.0])
def test_sample_mask_counts_and_validity(ratio):
    ids, am = _random_batch(n=12, seed=1)
    g = torch.Generator().manual_seed(0)
    m = sample_mask(ids, am, ratio=ratio, generator=g)
    assert m.dtype == torch.bool and m.shape == ids.shape
    maskable = am.bool() & (ids != UNK_ID)
    assert not (m & ~maskable).any(), "selected padding or [UNK]"
    assert (ids == UNK_ID)[am.bool()].any(), "the fixture should contain in-sequence [UNK]"
    for b in range(ids.shape[0]):
        assert int(m[b].sum()) == _expected_count(int(maskable[b].sum()), ratio)


def test_sample_mask_at_least_one_and_empty_rows():
    ids = torch.tensor([[5, 6, UNK_ID, UNK_ID], [UNK_ID, UNK_ID, UNK_ID, UNK_ID], [7, 8, 9, 10]])
    am = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    m = sample_mask(ids, am, ratio=0.1, generator=torch.Generator().manual_seed(3))
    assert m.sum(1).tolist() == [1, 0, 0]
    assert not m[0, 2:].any()


def test_sample_mask_deterministic_and_numpy():
    ids, am = _random_batch(n=6, seed=2)
    a = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(42))
    b = sample_mask(ids.numpy(), am.numpy(), 0.5, torch.Generator().manual_seed(42))
    c = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_mask_is_uniform():
    ids = torch.full((4000, 6), 5)
    am = torch.ones_like(ids)
    am[:, 5] = 0
    m = sample_mask(ids, am, 0.4, torch.Generator().manual_seed(0))  # 2 of 5 per row
    freq = m.float().mean(0)
    assert torch.allclose(freq[:5], torch.full((5,), 0.4), atol=0.03)
    assert freq[5] == 0


# ---------------------------------------------------------------------------- fused head + loss
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_linear_cross_entropy_matches_reference(with_bias, chunk_rows):
    torch.manual_seed(0)
    n, d, c = 50, 16, 64
    x = torch.randn(n, d, requires_grad=True)
    w = (0.5 * torch.randn(c, d)).requires_grad_()
    b = torch.randn(c, requires_grad=True) if with_bias else None
    labels = torch.randint(0, c, (n,))
    logits = torch.nn.functional.linear(x, w, b)
    ref = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
    ref_correct = int((logits.argmax(1) == labels).sum())
    (3.0 * ref).backward()
    ref_grads = [t.grad.clone() for t in (x, w, b) if t is not None]
    for t in (x, w, b):
        if t is not None:
            t.grad = None

    loss, n_correct = linear_cross_entropy(x, w, b, labels, chunk_rows=chunk_rows)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-4)
    assert int(n_correct) == ref_correct and not n_correct.requires_grad
    (3.0 * loss).backward()
    for got, want in zip([t.grad for t in (x, w, b) if t is not None], ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    with torch.no_grad():
        loss2, n2 = linear_cross_entropy(x, w, b, labels, chunk_rows=chunk_rows)
    torch.testing.assert_close(loss2, ref.detach(), rtol=1e-5, atol=1e-4)
    assert int(n2) == ref_correct


def test_linear_cross_entropy_empty_and_head_logits():
    head = LinearCEHead(8, 5)
    x = torch.randn(0, 8, requires_grad=True)
    loss, n_correct = head(x, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and int(n_correct) == 0
    loss.backward()
    assert torch.equal(head.weight.grad, torch.zeros_like(head.weight))
    y = torch.randn(3, 8)
    torch.testing.assert_close(head(y), torch.nn.functional.linear(y, head.weight, head.bias))


# ---------------------------------------------------------------------------- MAE
def _capture_embeddings_calls(module):
    calls = []

    def hook(mod, args, kwargs):
        calls.append({k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()})
        if args:
            calls[-1]["args"] = args

    return calls, module.register_forward_pre_hook(hook, with_kwargs=True)


def _capture_rows(module):
    rows = []
    handle = module.register_forward_pre_hook(lambda mod, args: rows.append(args[0].shape))
    return rows, handle


def _packed_positions(ids, visible, width):
    """Where MAE packs a row's visible tokens: its k-mers, then its [UNK]s, each in order, in ``width`` slots."""
    kmers = torch.nonzero(visible & (ids != UNK_ID)).flatten()
    unks = torch.nonzero(visible & (ids == UNK_ID)).flatten()
    return torch.cat([kmers, unks])[:width]


def test_mae_encoder_sees_only_visible_tokens_at_original_positions():
    torch.manual_seed(0)
    model = MAEForPretraining.from_sizes(**SIZES, light=True)
    ids, am = _random_batch(n=8, seed=3)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(1))
    enc_calls, h1 = _capture_embeddings_calls(model.encoder.embeddings)
    head_rows, h2 = _capture_rows(model.head)
    out = model(ids, am, mask)
    h1.remove()
    h2.remove()

    assert len(enc_calls) == 1
    enc_ids, pos = enc_calls[0]["input_ids"], enc_calls[0]["position_ids"]
    visible = am.bool() & ~mask
    T = ids.shape[1]
    width = model.visible_width(T)  # static: the most k-mers sample_mask leaves visible in a row
    assert width == T - T // 2 and int((visible & (ids != UNK_ID)).sum(1).max()) <= width
    assert enc_ids.shape == (ids.shape[0], width)
    assert not (enc_ids == MASK_ID).any()
    assert pos.shape == enc_ids.shape
    for b in range(ids.shape[0]):
        orig = _packed_positions(ids[b], visible[b], width)  # original positions
        n = len(orig)
        assert torch.equal(pos[b, :n], orig)
        assert torch.equal(enc_ids[b, :n], ids[b, orig])
        assert (enc_ids[b, n:] == UNK_ID).all()
    # the loss slots: a fixed number per row (the most sample_mask hides), only the hidden ones count
    assert head_rows == [torch.Size([ids.shape[0] * (T // 2), model.head.in_features])]
    assert int(out["n_predicted"]) == int(mask.sum())
    assert 0 <= int(out["n_correct"]) <= int(out["n_predicted"])
    assert math.isfinite(out["loss"].item())
    out["loss"].backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    assert model.decoder.embeddings.word_embeddings.weight.grad[MASK_ID].abs().sum() > 0


def test_mae_packed_encoder_equals_encoder_on_visible_subset():
    """Packing + original position ids = running the full-length encoder with attention on visible tokens."""
    torch.manual_seed(0)
    model = MAEForPretraining.from_sizes(**SIZES).eval()
    ids, am = _random_batch(n=6, seed=4)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(2))
    visible = am.bool() & ~mask
    captured = {}

    def keep_output(module, args, output):
        captured["h"] = output.last_hidden_state  # returns None: output unchanged

    h = model.encoder.register_forward_hook(keep_output)
    with torch.no_grad():
        model(ids, am, mask)
        h.remove()
        ref = model.encoder(input_ids=ids, attention_mask=visible.long()).last_hidden_state
    packed = captured["h"]
    for b in range(ids.shape[0]):
        orig = _packed_positions(ids[b], visible[b], packed.shape[1])
        assert len(orig) == int(visible[b].sum())  # nothing visible was left out here
        torch.testing.assert_close(packed[b, : len(orig)], ref[b, orig], atol=1e-5, rtol=1e-5)


def test_mae_decoder_input_layout():
    torch.manual_seed(0)
    model = MAEForPretraining.from_sizes(**SIZES, light=True).eval()
    ids, am = _random_batch(n=4, seed=5)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(0))
    calls, h = _capture_embeddings_calls(model.decoder.embeddings)
    enc_out = {}

    def keep_output(module, args, output):
        enc_out["h"] = output.last_hidden_state

    h2 = model.encoder.register_forward_hook(keep_output)
    with torch.no_grad():
        model(ids, am, mask)
    h.remove()
    h2.remove()
    emb = calls[0]["inputs_embeds"]
    T = ids.shape[1]  # the full width, padding included (a static shape)
    assert emb.shape == (ids.shape[0], T, model.decoder.config.hidden_size)
    mask_token = model.decoder.embeddings.word_embeddings.weight[MASK_ID]
    assert torch.equal(emb[mask], mask_token.expand(int(mask.sum()), -1))
    visible = am.bool() & ~mask
    assert not torch.isclose(emb[visible], mask_token).all(dim=-1).any()
    with torch.no_grad():
        projected = model.proj(enc_out["h"])
    for b in range(ids.shape[0]):
        orig = _packed_positions(ids[b], visible[b], projected.shape[1])  # packed order
        torch.testing.assert_close(emb[b, orig], projected[b, : len(orig)])


def test_mae_shapes_and_light_factory():
    assert light_decoder_sizes(256, 4) == {
        "decoder_layers": 1, "decoder_hidden": 128, "decoder_heads": 2, "decoder_intermediate": 512,
    }
    assert light_decoder_sizes(64, 4)["decoder_heads"] == 1  # head dim kept >= 32
    paper = MAEForPretraining.from_sizes(**SIZES)
    assert isinstance(paper.proj, torch.nn.Identity)
    assert paper.decoder.config.num_hidden_layers == SIZES["layers"]
    light = MAEForPretraining.from_sizes(**SIZES, light=True)
    assert isinstance(light.proj, torch.nn.Linear)
    assert light.decoder.config.hidden_size == SIZES["hidden"] // 2
    assert light.decoder.config.num_hidden_layers == 1
    assert light.encoder_parameters() == paper.encoder_parameters()
    assert light.encoder.pooler is None
    assert light.encoder.config.pad_token_id is None


def test_mae_loss_on_all_predicts_visible_tokens_too():
    """loss_on="all": the head also sees the visible positions, and their labels are their own ids."""
    torch.manual_seed(0)
    model = MAEForPretraining.from_sizes(**SIZES, light=True, loss_on="all")
    ids, am = _random_batch(n=8, seed=4)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(2))
    enc_calls, h1 = _capture_embeddings_calls(model.encoder.embeddings)
    head_rows, h2 = _capture_rows(model.head)
    out = model(ids, am, mask)
    h1.remove()
    h2.remove()
    assert not (enc_calls[0]["input_ids"] == MASK_ID).any()  # the encoder still never sees [MASK]
    valid = am.bool() & (ids != UNK_ID)
    assert head_rows == [torch.Size([ids.numel(), model.head.in_features])]  # every slot; the valid ones count
    assert int(out["n_predicted"]) == int(valid.sum()) > int((mask & valid).sum())
    out["loss"].backward()
    with pytest.raises(ValueError, match="loss_on"):
        MAEForPretraining.from_sizes(**SIZES, loss_on="visible")


def test_mae_nothing_maskable_gives_zero_loss_with_grad():
    """Rows of [UNK] and padding only: nothing hidden, nothing predicted; the [UNK]s that fit are seen."""
    model = MAEForPretraining.from_sizes(**SIZES, light=True)
    ids, am = _random_batch(n=3, seed=6)
    ids = torch.full_like(ids, UNK_ID)
    out = model(ids, am, sample_mask(ids, am, 0.5))
    assert int(out["n_predicted"]) == 0 and out["loss"].item() == 0.0
    out["loss"].backward()


def test_mae_refuses_a_mask_that_hides_less_than_its_ratio():
    """The packed width holds the k-mers sample_mask leaves visible at the model's ratio; a mask
    hiding fewer would not fit, and is refused rather than cut."""
    model = MAEForPretraining.from_sizes(**SIZES, light=True, mask_ratio=0.5)
    ids, am = _random_batch(n=3, seed=6)
    with pytest.raises(RuntimeError):
        model(ids, am, sample_mask(ids, am, 0.2))


# ---------------------------------------------------------------------------- MLM / causal
@pytest.mark.parametrize("loss_on", ["masked", "all"])
def test_mlm_head_only_on_needed_positions(loss_on):
    torch.manual_seed(0)
    model = MLMForPretraining.from_sizes(**SIZES, loss_on=loss_on)
    ids, am = _random_batch(n=8, seed=7)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(0))
    enc_calls, h1 = _capture_embeddings_calls(model.encoder.embeddings)
    rows, h2 = _capture_rows(model.head)
    out = model(ids, am, mask)
    h1.remove()
    h2.remove()
    enc_ids = enc_calls[0]["input_ids"]
    T = ids.shape[1]
    assert enc_ids.shape == ids.shape  # the full width (a static shape)
    assert torch.equal(enc_ids == MASK_ID, mask)
    assert torch.equal(enc_ids[~mask], ids[~mask])
    valid = am.bool() & (ids != UNK_ID)
    expected = int(mask.sum()) if loss_on == "masked" else int(valid.sum())
    slots = T // 2 if loss_on == "masked" else T  # per row: the most sample_mask hides, or every position
    assert rows == [torch.Size([ids.shape[0] * slots, SIZES["hidden"]])]
    assert int(out["n_predicted"]) == expected
    assert math.isfinite(out["loss"].item())
    out["loss"].backward()


def test_causal_head_only_on_needed_positions():
    torch.manual_seed(0)
    model = CausalForPretraining.from_sizes(**SIZES)
    assert isinstance(model.encoder, transformers.GPT2Model)
    ids, am = _random_batch(n=8, seed=8)
    rows, h = _capture_rows(model.head)
    out = model(ids, am)
    h.remove()
    attn = am.bool()
    expected = int((attn[:, :-1] & attn[:, 1:] & (ids[:, 1:] != UNK_ID)).sum())
    assert rows == [torch.Size([ids.shape[0] * (ids.shape[1] - 1), SIZES["hidden"]])]  # every slot
    assert int(out["n_predicted"]) == expected
    assert math.isfinite(out["loss"].item())
    out["loss"].backward()


def test_causal_padding_does_not_change_valid_positions():
    torch.manual_seed(0)
    model = CausalForPretraining.from_sizes(**SIZES).eval()
    ids, am = _random_batch(n=4, seed=9, with_n=False)
    with torch.no_grad():
        full = model.encoder(input_ids=ids, attention_mask=am).last_hidden_state
        for b in range(ids.shape[0]):
            n = int(am[b].sum())
            alone = model.encoder(input_ids=ids[b : b + 1, :n]).last_hidden_state
            torch.testing.assert_close(full[b, :n], alone[0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- learning
LEARN_SIZES = dict(SIZES, hidden=64, intermediate=128, hidden_dropout=0.0, attention_dropout=0.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: MLMForPretraining.from_sizes(**LEARN_SIZES),
        lambda: MAEForPretraining.from_sizes(**LEARN_SIZES, light=True),
        lambda: CausalForPretraining.from_sizes(**LEARN_SIZES),
    ],
    ids=["mlm", "mae", "causal"],
)
def test_loss_falls_on_structured_data(build):
    torch.manual_seed(0)
    model = build()
    ids, am = _motif_batch(n=16, seed=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        mask = sample_mask(ids, am, 0.5, g)
        loss = model(ids, am, mask)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert math.isfinite(last)
    assert last < 0.6 * first, (first, last)


# ---------------------------------------------------------------------------- saving / pooling
@pytest.mark.parametrize(
    "cls,kwargs,expected,pooling",
    [
        (MLMForPretraining, {}, transformers.BertModel, "mean"),
        (MAEForPretraining, {"light": True}, transformers.BertModel, "mean"),
        (CausalForPretraining, {}, transformers.GPT2Model, "last"),
    ],
)
def test_save_encoder_roundtrip(tmp_path, cls, kwargs, expected, pooling):
    torch.manual_seed(0)
    model = cls.from_sizes(**SIZES, **kwargs)
    ids, am = _random_batch(n=5, seed=11)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # move the weights off their init
    model(ids, am, sample_mask(ids, am, 0.5))["loss"].backward()
    opt.step()

    model.save_encoder(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    loaded = transformers.AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is expected
    mine = model.encoder.state_dict()
    theirs = loaded.state_dict()
    for key, value in mine.items():
        assert torch.equal(value, theirs[key]), key
    # AutoModel builds BertModel with its default pooler: it is saved as an identity, so every
    # weight is loaded (deterministic) and nothing else may differ.
    extra = {k for k in theirs if k not in mine}
    assert extra == ({"pooler.dense.weight", "pooler.dense.bias"} if expected is transformers.BertModel else set())
    if extra:
        torch.testing.assert_close(theirs["pooler.dense.weight"], torch.eye(SIZES["hidden"]))
        assert not theirs["pooler.dense.bias"].any()

    model.eval()
    loaded.eval()
    for p in ("mean", "last"):
        a = encode(model.encoder, ids, am, pooling=p)
        b = encode(loaded, ids.numpy(), am.numpy(), pooling=p)
        assert a.shape == (5, SIZES["hidden"])
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert model.encoder_parameters() == sum(p.numel() for p in model.encoder.parameters())


def test_masked_mean_ignores_padding():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    out = masked_mean(hidden, am)
    torch.testing.assert_close(out[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(out[1], hidden[1].mean(0))
    assert torch.equal(out[2], torch.zeros(4))
    noisy = hidden.clone()
    noisy[am == 0] = 1e6
    torch.testing.assert_close(masked_mean(noisy, am), out)


def test_last_token():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    am = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert last_token(hidden, am).flatten().tolist() == [1.0, 7.0]


def test_encode_ignores_padding_content():
    torch.manual_seed(0)
    model = MLMForPretraining.from_sizes(**SIZES).eval()
    ids, am = _random_batch(n=4, seed=12)
    other = ids.clone()
    other[am == 0] = 7  # different ids under attention 0
    torch.testing.assert_close(encode(model.encoder, ids, am), encode(model.encoder, other, am), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        encode(model.encoder, ids, am, pooling="cls")


# ----------------------------------------------------------------------------- shared pieces
def test_config_builders_write_the_shared_conventions_in_each_familys_names():
    bert = bert_encoder_config(3, 30, 2, 4, 32, hidden_dropout=0.2, attention_dropout=0.3)
    gpt = gpt2_encoder_config(3, 30, 2, 4, 32, 48, hidden_dropout=0.2, attention_dropout=0.3)
    assert transformer_sizes(bert) == {"layers": 2, "heads": 4, "hidden": 32, "ffn": 128}  # 4 x hidden
    assert transformer_sizes(gpt) == {"layers": 2, "heads": 4, "hidden": 32, "ffn": 48}
    for cfg, positions in ((bert, bert.max_position_embeddings), (gpt, gpt.n_positions)):
        assert (cfg.vocab_size, positions, cfg.pad_token_id) == (4**3 + 2, 30, None)
        assert cfg._attn_implementation == "sdpa"
    assert (bert.hidden_dropout_prob, bert.attention_probs_dropout_prob, bert.hidden_act) == (0.2, 0.3, "gelu")
    assert (gpt.resid_pdrop, gpt.embd_pdrop, gpt.attn_pdrop) == (0.2, 0.2, 0.3)
    assert (gpt.activation_function, gpt.use_cache, gpt.bos_token_id, gpt.eos_token_id) == ("gelu", False, None, None)
    for builder in (bert_encoder_config, gpt2_encoder_config):
        with pytest.raises(ValueError, match="multiple of heads"):
            builder(3, 30, 2, 3, 32)


@pytest.mark.parametrize("cls", [MAEForPretraining, MLMForPretraining, CausalForPretraining])
def test_prepare_batch_moves_keeps_the_width_and_draws_the_mask_only_for_masking_objectives(cls):
    torch.manual_seed(0)
    model = cls.from_sizes(**SIZES)
    ids, am = _random_batch(n=4, seed=3)
    wide = torch.cat([ids, torch.full((4, 5), UNK_ID)], 1), torch.cat([am, torch.zeros(4, 5, dtype=am.dtype)], 1)
    got_ids, got_am, mask = model.prepare_batch(wide[0].numpy(), wide[1].numpy())
    # the columns no row attends stay: a static shape (finding them would read the device)
    assert torch.equal(got_ids, wide[0]) and torch.equal(got_am, wide[1])
    if cls.masks:
        assert mask.dtype == torch.bool and mask.shape == got_ids.shape
    else:
        assert mask is None


@pytest.mark.parametrize("name", ["mae", "mlm", "gpt"])
def test_inhouse_initial_preset_is_the_random_control_of_the_same_seed(name):
    entry = get_encoder(name)
    params = inspect.signature(entry.factory).parameters
    assert {"checkpoint", "initial_preset", "initial_seed"} <= set(params) and "objective" not in params
    untrained = entry.create(initial_preset="tiny", initial_seed=3)
    control = get_encoder("random").create(like=name, preset="tiny", seed=3)
    mine, theirs = untrained.model.state_dict(), control.model.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert untrained.meta.checkpoint == {"preset": "tiny", "seed": 3, "weights": "random initialisation"}
    assert untrained.meta.budget == {"steps": 0, "flops": 0.0}
    assert untrained.meta.objective == entry.meta.objective
    with pytest.raises(UserError, match="not both"):
        entry.create(checkpoint="somewhere", initial_preset="tiny")


def test_mae_a_full_row_with_unk_keeps_its_kmers_and_the_unks_that_fit():
    """[UNK]s are never hidden, so a full row holding some has more visible tokens than the packed
    width: its k-mers all go in, then as many [UNK]s as fit (the others were never predicted)."""
    torch.manual_seed(0)
    model = MAEForPretraining.from_sizes(**SIZES, light=True)
    T = SIZES["n_tokens"]
    ids = torch.randint(2, 4**K + 2, (1, T))
    ids[0, [3, 9, 20, 27]] = UNK_ID
    am = torch.ones_like(ids)
    mask = sample_mask(ids, am, 0.5, torch.Generator().manual_seed(0))
    calls, h = _capture_embeddings_calls(model.encoder.embeddings)
    model(ids, am, mask)
    h.remove()
    width = model.visible_width(T)
    kmers = torch.nonzero(~mask[0] & (ids[0] != UNK_ID)).flatten()
    assert len(kmers) + 4 > width >= len(kmers)  # more visible tokens than slots
    seen = calls[0]["position_ids"][0]
    assert torch.equal(seen[: len(kmers)], kmers)
    assert torch.equal(seen[len(kmers):], torch.tensor([3, 9, 20, 27])[: width - len(kmers)])


def test_linear_cross_entropy_keep_counts_only_the_kept_rows():
    torch.manual_seed(0)
    x = torch.randn(40, 8, requires_grad=True)
    w = torch.randn(6, 8, requires_grad=True)
    labels = torch.randint(0, 6, (40,))
    keep = torch.rand(40) < 0.6
    loss, hits = linear_cross_entropy(x, w, None, labels, chunk_rows=16, keep=keep)
    loss.backward()
    xr = x.detach()[keep].requires_grad_()
    wr = w.detach().clone().requires_grad_()
    logits = xr @ wr.t()
    ref = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-4)
    assert int(hits) == int((logits.argmax(1) == labels[keep]).sum())
    torch.testing.assert_close(w.grad, wr.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x.grad[keep], xr.grad, rtol=1e-4, atol=1e-5)
    assert (x.grad[~keep] == 0).all()
