"""BarcodeBERT-style masked language modelling (MLM) pretraining.

Objective (``MLMForPretraining``)
---------------------------------
Inputs are k-mer token ids ``[B, T]`` (``benchbarcode.tokenizers``: ``[MASK]`` =
0, ``[UNK]`` = 1, k-mer ``w`` -> ``2 + index(w)``) with an attention mask and a
bool ``mask`` of selected positions (``benchbarcode.models.masking.sample_mask``,
which never selects padding or ``[UNK]``).

1. Every selected position is replaced by ``MASK_ID`` (no 80/10/10 split, as
   in BarcodeBERT); the whole padded sequence runs through the encoder, a
   ``transformers.BertModel`` without pooler, with the attention mask and the
   default position ids ``0..T-1``.
2. The loss positions are gathered *before* the head, so the vocabulary
   projection is computed only where the loss needs it, into a fixed number
   of slots per row (``slot_loss``: the most positions ``sample_mask`` hides
   at ``mask_ratio``, or every position; only the loss positions count), so
   that the shapes are the same at every step:

   * ``loss_on="masked"`` (default): the selected positions;
   * ``loss_on="all"``: every valid non-``[UNK]`` position (attention 1 and id
     != ``UNK_ID``), masked or not, as in BarcodeBERT's BIOSCAN-5M
     configuration.

3. The head (dense -> GELU -> LayerNorm -> Linear, BERT's MLM head, untied)
   gives ``4**k`` logits; the label of a k-mer token is ``id - 2``; the loss is
   the mean cross-entropy over the loss positions. The last Linear is fused
   with the cross-entropy (``linear_cross_entropy``: logits a chunk of rows at
   a time, gradients computed in the same pass), as in the other objectives.

``forward`` returns ``{"loss", "n_predicted", "n_correct"}``: the mean loss
(a scalar tensor with grad; 0 when nothing is predicted) and two detached
int64 scalar tensors counting the predicted positions and the top-1 hits. The
batch keeps its full width (trailing padding is not trimmed) and nothing is
read back from the device, so ``torch.compile(fullgraph=True)`` takes the step whole.

Only ``.encoder`` is the artefact of pretraining: ``save_encoder(dir)`` writes
``config.json`` + ``model.safetensors`` that ``transformers.AutoModel.from_pretrained``
reopens as a ``BertModel``.

Shared pieces used by the other objectives also live here:
``EncoderConfigBuilder`` (the config conventions every encoder family shares; ``bert_encoder_config``
is BERT's), ``linear_cross_entropy`` /
``LinearCEHead`` (fused, chunked output projection + cross-entropy),
``PredictionHead``, ``PretrainingModule`` (``encoder_parameters`` /
``save_encoder``, and ``prepare_batch``, the start of every ``forward``).

Config conventions (``bert_encoder_config``)
--------------------------------------------
* ``vocab_size = 4**k + 2``; ``max_position_embeddings = n_tokens``.
* ``pad_token_id = None``: with BERT's default ``pad_token_id = 0`` the
  ``[MASK]`` embedding (id 0) would be frozen at zero. Padding is handled by
  the attention mask alone; padded slots carry ``UNK_ID``, but ``[UNK]`` also
  occurs inside sequences (k-mers holding an ``N``), so it gets a trainable
  embedding rather than a frozen ``padding_idx`` row.
* ``attn_implementation="sdpa"`` explicitly (it is also transformers 5's
  default): ``torch.nn.functional.scaled_dot_product_attention`` with a
  boolean padding mask built by ``transformers.masking_utils``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel

from benchbarcode.tokenizers import MASK_ID, UNK_ID

from .masking import _as_tensor, max_masked, sample_mask

__all__ = [
    "MLMForPretraining",
    "LinearCEHead",
    "PredictionHead",
    "linear_cross_entropy",
    "PretrainingModule",
    "bert_encoder_config",
    "EncoderConfigBuilder",
    "N_SPECIAL",
]

#: Number of special tokens before the k-mer ids ([MASK], [UNK]); label = id - N_SPECIAL.
N_SPECIAL = 2


@dataclass(frozen=True, eq=False)
class EncoderConfigBuilder:
    """Builds the config of a k-mer encoder of one transformers family.

    Calling it, ``builder(k, n_tokens, layers, heads, hidden, intermediate=None, hidden_dropout=0.1,
    attention_dropout=0.1, attn_implementation="sdpa", **extra)``, applies the conventions every
    family shares (``hidden`` a multiple of ``heads``; ``vocab_size = 4**k + 2``; ``n_tokens``
    positions; FFN width ``4 * hidden`` unless given; ``pad_token_id = None``; the attention
    implementation) and writes each shared knob under the field name(s) the family gives it in
    ``names``; ``fixed`` holds the family's own settings. ``extra`` goes to the config unchanged.
    """

    config_class: type
    #: shared knob (n_tokens, layers, heads, hidden, intermediate, hidden_dropout,
    #: attention_dropout) -> the config field(s) that take its value
    names: dict[str, tuple[str, ...]]
    fixed: dict[str, Any]

    def __call__(
        self,
        k: int,
        n_tokens: int,
        layers: int,
        heads: int,
        hidden: int,
        intermediate: int | None = None,
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        attn_implementation: str = "sdpa",
        **extra: Any,
    ):
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        knobs = {"n_tokens": n_tokens, "layers": layers, "heads": heads, "hidden": hidden,
                 "intermediate": intermediate if intermediate is not None else 4 * hidden,
                 "hidden_dropout": hidden_dropout, "attention_dropout": attention_dropout}
        fields = {field: knobs[knob] for knob, spelled in self.names.items() for field in spelled}
        return self.config_class(vocab_size=4**k + N_SPECIAL, **fields, **self.fixed, pad_token_id=None,
                                 attn_implementation=attn_implementation, **extra)


#: The ``BertConfig`` of a k-mer encoder (see the module docstring for the conventions).
bert_encoder_config = EncoderConfigBuilder(
    BertConfig,
    names={"n_tokens": ("max_position_embeddings",), "layers": ("num_hidden_layers",),
           "heads": ("num_attention_heads",), "hidden": ("hidden_size",), "intermediate": ("intermediate_size",),
           "hidden_dropout": ("hidden_dropout_prob",), "attention_dropout": ("attention_probs_dropout_prob",)},
    fixed={"hidden_act": "gelu", "type_vocab_size": 1},
)


def _rows_per_chunk(n_classes: int) -> int:
    """Rows per chunk so that one chunk of fp32 logits stays around 8 MiB."""
    return max(16, (1 << 21) // max(int(n_classes), 1))


def _linear_ce_chunks(x, weight, bias, labels, keep, chunk, need_gx, need_gw, need_gb):
    """Core of ``linear_cross_entropy``: summed CE, top-1 hits and (optionally) the gradients of the
    sum, over the rows that ``keep`` (bool ``[N]``; None: every row) holds."""
    n = x.shape[0]
    dt = torch.promote_types(x.dtype, weight.dtype)
    w = weight.to(dt)
    b = bias.to(dt) if bias is not None else None
    loss = torch.zeros((), dtype=torch.float32, device=x.device)
    n_correct = torch.zeros((), dtype=torch.long, device=x.device)
    gx = torch.empty_like(x) if need_gx else None
    gw = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_gw else None
    gb = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_gb else None
    need_grad = need_gx or need_gw or need_gb
    for start in range(0, n, chunk):
        xc = x[start : start + chunk].to(dt)
        lc = labels[start : start + chunk, None]
        z = (torch.addmm(b, xc, w.t()) if b is not None else xc @ w.t()).float()  # [c, C] logits
        m = z.amax(dim=1, keepdim=True)
        zl = z.gather(1, lc)
        hit = zl >= m
        z.sub_(m).exp_()
        ssum = z.sum(dim=1, keepdim=True)
        ce = ssum.log() + m - zl
        if keep is None:
            n_correct += hit.sum()
            loss += ce.sum()
        else:
            kc = keep[start : start + chunk, None]
            n_correct += (hit & kc).sum()
            loss += torch.where(kc, ce, 0.0).sum()
        if not need_grad:
            continue
        z.div_(ssum)  # softmax
        z.scatter_add_(1, lc, torch.full_like(zl, -1.0))  # d(sum CE)/d logits = softmax - onehot
        if keep is not None:
            z.mul_(kc)  # rows not kept add nothing
        if need_gb:
            gb += z.sum(dim=0)
        if need_gx:
            gx[start : start + chunk] = z.to(dt) @ w
        if need_gw:
            gw.addmm_(z.t(), xc.float())
    if gw is not None:
        gw = gw.to(weight.dtype)
    if gb is not None:
        gb = gb.to(bias.dtype)
    return loss, n_correct, gx, gw, gb


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, labels, keep, chunk):
        need_gx, need_gw, need_gb = ctx.needs_input_grad[:3]
        loss, n_correct, gx, gw, gb = _linear_ce_chunks(x, weight, bias, labels, keep, chunk,
                                                        need_gx, need_gw, need_gb)
        ctx.save_for_backward(gx, gw, gb)
        ctx.mark_non_differentiable(n_correct)
        return loss, n_correct

    @staticmethod
    def backward(ctx, g_loss, _g_correct):
        gx, gw, gb = ctx.saved_tensors
        return (
            None if gx is None else gx * g_loss,
            None if gw is None else gw * g_loss,
            None if gb is None else gb * g_loss,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    chunk_rows: int | None = None,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of ``x @ weight.T + bias`` against ``labels``, and the top-1 hits.

    Equal to ``F.cross_entropy(F.linear(x, weight, bias), labels, reduction="sum")``
    (softmax in float32), but the ``[N, n_classes]`` logits are produced a chunk
    of rows at a time (about 8 MiB each) and the gradients with respect to ``x``,
    ``weight`` and ``bias`` are computed in the same pass (softmax - one-hot), so
    no full logits / log-softmax / gradient tensors are ever materialised. On
    CPU that roughly halves the head + loss time for ``4**k = 4096`` classes, and
    memory no longer grows with ``N * 4**k`` (which matters for k = 8). The
    gradients are kept for ``backward`` (first-order autograd only; under
    ``torch.no_grad`` they are not computed).

    ``keep`` (bool ``[N]``): only these rows count, in the loss, the hits and the gradients (the
    others are slots of a fixed-size batch; their labels must still be valid class indices).

    Returns ``(loss_sum, n_correct)``: a float32 scalar with grad, and a detached
    int64 count of rows whose label logit equals the row maximum (top-1; an exact
    tie counts as correct).
    """
    labels = labels.to(device=x.device, dtype=torch.long)
    keep = None if keep is None else keep.to(device=x.device, dtype=torch.bool)
    chunk = int(chunk_rows) if chunk_rows else _rows_per_chunk(weight.shape[0])
    tracked = [t for t in (x, weight, bias) if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tracked):
        return _LinearCrossEntropy.apply(x, weight, bias, labels, keep, chunk)
    loss, n_correct, _, _, _ = _linear_ce_chunks(x, weight, bias, labels, keep, chunk, False, False, False)
    return loss, n_correct


class LinearCEHead(nn.Linear):
    """``nn.Linear`` to the k-mer classes whose ``forward(x, labels)`` returns the loss directly.

    ``head(x)`` gives logits (as ``nn.Linear``); ``head(x, labels)`` gives
    ``(loss_sum, n_correct)`` via ``linear_cross_entropy`` (no full logits).
    """

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, keep: torch.Tensor | None = None):
        if labels is None:
            return super().forward(x)
        return linear_cross_entropy(x, self.weight, self.bias, labels, keep=keep)


class PredictionHead(nn.Module):
    """BERT's MLM head: ``Linear(d, d) -> GELU -> LayerNorm -> Linear(d, n_classes)``.

    It is applied to already-gathered rows ``[N, d]`` (only the positions the loss
    needs). ``head(x)`` returns logits; ``head(x, labels)`` returns
    ``(loss_sum, n_correct)`` with the last projection fused into the loss
    (``LinearCEHead``).
    """

    def __init__(self, hidden: int, n_classes: int, layer_norm_eps: float = 1e-12, initializer_range: float = 0.02):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = nn.GELU()
        self.LayerNorm = nn.LayerNorm(hidden, eps=layer_norm_eps)
        self.decoder = LinearCEHead(hidden, n_classes)
        for lin in (self.dense, self.decoder):
            nn.init.normal_(lin.weight, std=initializer_range)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, keep: torch.Tensor | None = None):
        return self.decoder(self.LayerNorm(self.act(self.dense(x))), labels, keep)


def loss_dict(loss_sum: torch.Tensor, n_correct: torch.Tensor, n: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"loss": mean CE (0 when n == 0), "n_predicted", "n_correct"}`` (counts: detached int64 scalar
    tensors; nothing is read back to the host)."""
    n = n.detach().to(torch.long)
    return {"loss": loss_sum / n.clamp(min=1), "n_predicted": n, "n_correct": n_correct.detach()}


def loss_slots(sel: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss positions of each row, in ``width`` fixed slots (a static shape):
    ``(index [B, width], keep [B, width])``, the positions ``sel`` (bool ``[B, T]``) holds, in
    order, then slots that are not kept. ``width`` must be at least the most positions ``sel``
    holds in a row (asserted on the device, without reading it back)."""
    B, T = sel.shape
    if width >= T:
        return torch.arange(T, device=sel.device).expand(B, T), sel
    torch._assert_async(sel.sum(dim=1).max() <= width)
    index = torch.sort((~sel).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    return index, sel.gather(1, index)


def slot_loss(head: nn.Module, hidden: torch.Tensor, input_ids: torch.Tensor, sel: torch.Tensor,
              width: int) -> dict[str, torch.Tensor]:
    """Cross-entropy of ``head`` on the states ``hidden`` ``[B, T, D]`` at the positions ``sel``
    ``[B, T]``, the label of position ``t`` being ``input_ids[:, t]`` (a k-mer id); the states are
    gathered into ``width`` slots per row first (:func:`loss_slots`), so that the head runs on a
    fixed number of rows whatever the batch. Returns :func:`loss_dict`."""
    index, keep = loss_slots(sel, width)
    rows = hidden if index.shape[1] == hidden.shape[1] else hidden.gather(
        1, index[..., None].expand(-1, -1, hidden.shape[-1]))
    labels = (input_ids.gather(1, index) - N_SPECIAL).clamp(min=0)  # slots not kept: any valid class
    loss_sum, n_correct = head(rows.reshape(-1, rows.shape[-1]), labels.reshape(-1), keep.reshape(-1))
    return loss_dict(loss_sum, n_correct, keep.sum())


def padding_mask_4d(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, 1, T]`` bool (True: attend) from a ``[B, T]`` attention mask. transformers uses a 4-D
    mask as given; from a 2-D one its SDPA path first asks whether every token is valid
    (``padding_mask.all()``), which reads the device every forward."""
    return attention_mask.bool()[:, None, None, :]


class PretrainingModule(nn.Module):
    """Common API: ``from_sizes(...)``, ``.encoder``, ``encoder_parameters()``, ``save_encoder(dir)``.

    Subclasses set ``config_builder`` (``bert_encoder_config`` or ``gpt2_encoder_config``) and take
    the encoder config as their first constructor argument.
    """

    encoder: nn.Module
    config_builder: Any = None
    #: traits of the objective: it masks a fraction of the tokens (``--mask-ratio``), and its loss
    #: positions are a choice (``--loss-on masked|all``)
    masks: bool = False
    chooses_loss_positions: bool = False

    @classmethod
    def objective_options(cls, preset: Any) -> dict[str, Any]:
        """The constructor options this objective reads from a preset (beyond the sizes)."""
        return {}

    @classmethod
    def from_preset(cls, preset: Any, n_tokens: int) -> "PretrainingModule":
        """Build from a :class:`~benchbarcode.models.presets.Preset` (weights from torch's RNG)."""
        return cls.from_sizes(preset.k, n_tokens, preset.layers, preset.heads, preset.hidden,
                              preset.intermediate, hidden_dropout=preset.dropout,
                              attention_dropout=preset.dropout, **cls.objective_options(preset))

    def prepare_batch(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The start of every ``forward``: ``(input_ids, attention_mask, mask)`` as tensors on the
        module's device, at their full width (a static shape: trailing padding is not trimmed, since
        finding it would read the device every step; the attention mask keeps it out of the loss).

        An objective that ``masks`` draws ``mask`` with ``sample_mask`` at its ``mask_ratio`` when
        none is given and returns it as bool; any other objective ignores ``mask`` and returns None.
        """
        device = next(self.parameters()).device
        input_ids = _as_tensor(input_ids, device=device)
        attention_mask = _as_tensor(attention_mask, device=device)
        if not self.masks:
            return input_ids, attention_mask, None
        if mask is None:
            mask = sample_mask(input_ids, attention_mask, self.mask_ratio)
        return input_ids, attention_mask, _as_tensor(mask, device=device).bool()

    def loss_width(self, n_tokens: int) -> int:
        """Loss slots per row for ``n_tokens`` tokens (:func:`slot_loss`): every position when the
        loss is on all valid tokens, else the most that ``sample_mask`` hides at ``mask_ratio``."""
        if getattr(self, "loss_on", "all") == "all" or not self.masks:
            return n_tokens
        return max_masked(n_tokens, self.mask_ratio)

    def step_tokens(self, attention_mask: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """What one step's batch costs, as int64 device tensors (read back only when the budget is):
        tokens through the encoder and its longest row, and the same for a decoder (0 without one).
        Here the encoder sees every valid token."""
        valid = attention_mask.bool()
        rows = valid.sum(dim=1)
        zero = torch.zeros((), dtype=torch.long, device=valid.device)
        return {"encoder_tokens": rows.sum(), "encoder_len": rows.max(), "decoder_tokens": zero, "decoder_len": zero}

    @classmethod
    def from_sizes(
        cls,
        k: int,
        n_tokens: int,
        layers: int,
        heads: int,
        hidden: int,
        intermediate: int | None = None,
        *,
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        **objective_kwargs: Any,
    ) -> "PretrainingModule":
        """Build from sizes; ``objective_kwargs`` go to the constructor (see each subclass)."""
        cfg = cls.config_builder(
            k, n_tokens, layers, heads, hidden, intermediate,
            hidden_dropout=hidden_dropout, attention_dropout=attention_dropout,
        )
        return cls(cfg, **objective_kwargs)

    def encoder_parameters(self) -> int:
        """Number of parameters of the encoder alone (what is kept after pretraining)."""
        return sum(p.numel() for p in self.encoder.parameters())

    def save_encoder(self, directory: str | os.PathLike) -> None:
        """Write the encoder as ``config.json`` + ``model.safetensors`` (reopens with ``AutoModel``).

        ``transformers.AutoModel.from_pretrained(dir)`` builds a BERT encoder *with* its default
        pooler, which pretraining never uses; so that every weight it builds is loaded (no
        random, "newly initialized" pooler), a BERT encoder is saved with an identity pooler.
        """
        from benchbarcode.fileio import atomic_path, match_umask

        os.makedirs(directory, exist_ok=True)
        self.encoder.save_pretrained(directory)
        path = os.path.join(directory, "model.safetensors")
        match_umask(path)  # safetensors writes 0600: the weights are shared as the results are
        if getattr(self.encoder.config, "model_type", None) == "bert" and getattr(self.encoder, "pooler", None) is None:
            from safetensors.torch import load_file, save_file

            tensors = load_file(path)
            hidden, dtype = self.encoder.config.hidden_size, next(iter(tensors.values())).dtype
            tensors["pooler.dense.weight"] = torch.eye(hidden, dtype=dtype)
            tensors["pooler.dense.bias"] = torch.zeros(hidden, dtype=dtype)
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata={"format": "pt"})


class MLMForPretraining(PretrainingModule):
    """BarcodeBERT: masked-token prediction with a BERT encoder (see the module docstring).

    Parameters
    ----------
    encoder_config:
        ``BertConfig`` of the encoder (``vocab_size`` must be ``4**k + 2``).
    loss_on:
        ``"masked"`` (loss on the selected positions) or ``"all"`` (loss on every
        valid non-``[UNK]`` position).
    mask_ratio:
        Ratio used by ``forward`` when ``mask`` is not given.

    Attributes: ``encoder`` (``BertModel``, no pooler), ``head`` (``PredictionHead``).
    """

    config_builder = bert_encoder_config
    masks = True
    chooses_loss_positions = True

    @classmethod
    def objective_options(cls, preset: Any) -> dict[str, Any]:
        return {"mask_ratio": preset.mask_ratio, "loss_on": preset.loss_on}

    def __init__(self, encoder_config: BertConfig, loss_on: str = "masked", mask_ratio: float = 0.5):
        super().__init__()
        if loss_on not in ("masked", "all"):
            raise ValueError(f"loss_on must be 'masked' or 'all', got {loss_on!r}")
        self.loss_on = loss_on
        self.mask_ratio = mask_ratio
        self.n_classes = encoder_config.vocab_size - N_SPECIAL
        self.encoder = BertModel(encoder_config, add_pooling_layer=False)
        self.head = PredictionHead(
            encoder_config.hidden_size,
            self.n_classes,
            encoder_config.layer_norm_eps,
            encoder_config.initializer_range,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask``/``mask``: ``[B, T]``; returns ``{loss, n_predicted, n_correct}``."""
        input_ids, attention_mask, mask = self.prepare_batch(input_ids, attention_mask, mask)

        attn = attention_mask.bool()
        mask = mask & attn
        masked_ids = input_ids.masked_fill(mask, MASK_ID)
        hidden = self.encoder(input_ids=masked_ids, attention_mask=padding_mask_4d(attn)).last_hidden_state

        valid = attn & (input_ids != UNK_ID)
        sel = mask & valid if self.loss_on == "masked" else valid
        return slot_loss(self.head, hidden, input_ids, sel, self.loss_width(input_ids.shape[1]))
