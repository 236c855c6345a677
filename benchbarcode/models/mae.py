"""BarcodeMAE-style masked autoencoder (MAE) pretraining.

Objective (``MAEForPretraining``)
---------------------------------
Inputs: k-mer ids ``[B, T]`` (``[MASK]`` = 0, ``[UNK]`` = 1, k-mer -> ``2 + index``),
attention mask ``[B, T]`` and bool ``mask`` ``[B, T]`` of hidden positions
(``benchbarcode.models.masking.sample_mask``). Positions that are padding or
``[UNK]`` are never treated as hidden (they have no label); they stay visible
to the encoder if they have attention 1.

1. **Encoder on the visible tokens only.** ``visible = attention & ~mask``.
   In each row the visible tokens are packed to the left (a stable sort:
   its k-mers first, then its ``[UNK]`` tokens, each in their order) and run
   through ``.encoder`` (a ``transformers.BertModel`` without pooler) with
   their *original* position ids (``position_ids=`` the index each token had
   in the full sequence). The packed input has a **fixed width**
   ``W = visible_width(T)``, the most k-mers ``sample_mask`` can leave
   visible in a row of ``T`` tokens (55 of 110 at ratio 0.5), so every step
   has the same shapes and nothing is read back from the device to size it;
   the tail of shorter rows is padding (``UNK_ID``, attention 0). ``[UNK]``
   tokens are never hidden (they have no label), so a row holding some can
   have more visible tokens than ``W``: it keeps all its k-mers and as many
   ``[UNK]`` as fit; the others are left out of the encoder's input (they
   were never predicted). The encoder never sees ``MASK_ID`` and costs
   ``O(W)`` instead of ``O(T)`` per row — the source of the MAE speed-up
   over MLM. This is exactly the computation the encoder does at inference
   on a full sequence, restricted to a subset of positions. A ``mask`` that
   hides fewer k-mers than ``sample_mask`` at the model's ``mask_ratio`` does
   not fit and is refused (a device-side assert).
2. **Back to the full grid.** The encoder outputs of the visible tokens are
   projected to the decoder width (``.proj``: ``Linear``, or ``Identity``
   when the widths are equal) and put back at their original positions of a
   ``[B, T, D_dec]`` tensor (one ``index_select`` from the table "packed
   projected rows + the mask token"); every other slot holds the
   decoder's learned ``[MASK]`` embedding
   (``decoder.embeddings.word_embeddings.weight[MASK_ID]``; the decoder's
   word-embedding table has just the ``MASK_ID`` row(s) and is used for
   nothing else).
3. **Decoder.** ``.decoder`` is a second, usually smaller ``BertModel`` run
   with ``inputs_embeds=`` that tensor and the original attention mask; its own
   ``BertEmbeddings`` add its learned absolute position embeddings (positions
   ``0..T-1``) and apply LayerNorm + dropout.
4. **Loss.** Decoder states are gathered at the hidden positions *first*
   (a fixed number of slots per row, the most ``sample_mask`` hides, of which
   the hidden ones count: ``slot_loss`` in ``.mlm``), then ``.head``, a
   ``Linear(D_dec, 4**k)`` (BarcodeMAE's decoder is a
   ``BertForTokenClassification``, i.e. a linear classifier on the decoder
   states; its classifier dropout is not reproduced), predicts the ``4**k``
   k-mer classes (label = id - 2); mean cross-entropy over the hidden
   positions. The projection is fused with the loss (``LinearCEHead`` /
   ``linear_cross_entropy`` in ``.mlm``), so the ``[n_masked, 4**k]`` logits
   are never materialised at once.
   With ``loss_on="all"`` (not BarcodeMAE's recipe; off by default) the loss
   positions are every valid non-``[UNK]`` token, hidden or visible: the
   decoder must also read each visible token's identity back from the
   encoder's output, which keeps the mean-pooled last layer from collapsing
   onto position and length (experiments/pretraining-budgets.md).

``forward`` returns ``{"loss", "n_predicted", "n_correct"}`` (mean loss with
grad, 0 if nothing is hidden; detached int64 counts of predicted positions and
top-1 hits, left on the device). All of it is vectorised, with no Python loop
over the batch, no shape that depends on the data and no read of the device:
``torch.compile(model, fullgraph=True)`` takes it, backward included, as one graph.

Only ``.encoder`` is kept: ``save_encoder(dir)`` writes ``config.json`` +
``model.safetensors``, reopened by ``transformers.AutoModel.from_pretrained``
as a ``BertModel`` that is run on full, unmasked sequences.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel

from benchbarcode.tokenizers import MASK_ID, UNK_ID

from .masking import max_unmasked
from .mlm import (
    N_SPECIAL,
    LinearCEHead,
    PretrainingModule,
    bert_encoder_config,
    padding_mask_4d,
    slot_loss,
)

__all__ = ["MAEForPretraining", "light_decoder_sizes"]


def light_decoder_sizes(hidden: int, heads: int) -> dict[str, int]:
    """The "light" decoder for an encoder of width ``hidden`` with ``heads`` heads.

    One layer, half the encoder width, FFN 4x its width, and as many heads as
    keep the encoder's head dimension (but never a head dimension below 32,
    nor fewer than one head).
    """
    dec_hidden = max(1, hidden // 2)
    head_dim = max(hidden // heads, 32)
    dec_heads = max(1, dec_hidden // head_dim)
    while dec_hidden % dec_heads:
        dec_heads -= 1
    return {
        "decoder_layers": 1,
        "decoder_hidden": dec_hidden,
        "decoder_heads": dec_heads,
        "decoder_intermediate": 4 * dec_hidden,
    }


def _decoder_config(enc: BertConfig, layers: int | None, heads: int | None, hidden: int | None,
                    intermediate: int | None, dropout: float | None, light: bool) -> BertConfig:
    """The decoder's ``BertConfig`` (``MAEForPretraining``'s ``decoder_*`` arguments): each size
    given, else ``light_decoder_sizes``' when ``light``, else the encoder's (intermediate: 4x the
    decoder width); dropout given, else the encoder's; everything else follows the encoder."""
    if light:  # light_decoder_sizes() for the sizes not given explicitly
        sizes = light_decoder_sizes(enc.hidden_size, enc.num_attention_heads)
        layers = sizes["decoder_layers"] if layers is None else layers
        hidden = sizes["decoder_hidden"] if hidden is None else hidden
        heads = sizes["decoder_heads"] if heads is None else heads
        intermediate = sizes["decoder_intermediate"] if intermediate is None else intermediate
    layers = enc.num_hidden_layers if layers is None else layers
    hidden = enc.hidden_size if hidden is None else hidden
    heads = enc.num_attention_heads if heads is None else heads
    intermediate = 4 * hidden if intermediate is None else intermediate
    if hidden % heads:
        raise ValueError(f"decoder_hidden ({hidden}) must be a multiple of decoder_heads ({heads})")
    return BertConfig(
        vocab_size=MASK_ID + 1,  # only the [MASK] row is ever used
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        hidden_act=enc.hidden_act,
        hidden_dropout_prob=enc.hidden_dropout_prob if dropout is None else dropout,
        attention_probs_dropout_prob=enc.attention_probs_dropout_prob if dropout is None else dropout,
        max_position_embeddings=enc.max_position_embeddings,
        type_vocab_size=1,
        layer_norm_eps=enc.layer_norm_eps,
        initializer_range=enc.initializer_range,
        pad_token_id=None,
        attn_implementation=enc._attn_implementation,
    )


class MAEForPretraining(PretrainingModule):
    """BarcodeMAE: encoder on visible tokens, light decoder reconstructs the hidden k-mers.

    Parameters
    ----------
    encoder_config:
        ``BertConfig`` of the encoder (``vocab_size = 4**k + 2``).
    decoder_layers, decoder_heads, decoder_hidden, decoder_intermediate:
        Decoder shape; ``None`` copies the encoder's (``decoder_intermediate``
        defaults to ``4 * decoder_hidden``). Activation, LayerNorm eps and
        ``max_position_embeddings`` follow the encoder config.
    decoder_dropout:
        Hidden and attention dropout of the decoder; ``None`` (default) uses
        the encoder's ``hidden_dropout_prob`` / ``attention_probs_dropout_prob``.
        (On CPU, dropout is a sizeable share of the light decoder's cost.)
    mask_ratio:
        Ratio used by ``forward`` when ``mask`` is not given.
    loss_on:
        ``"masked"`` (default, BarcodeMAE): cross-entropy on the hidden positions only;
        ``"all"``: also on the visible positions (every valid non-``[UNK]`` token), which
        the decoder can only get right if the encoder's output keeps each token's identity.
    light:
        Use ``light_decoder_sizes`` (1 layer, half width, encoder head size kept) for the decoder
        sizes not given explicitly; ``from_sizes(..., light=True)`` passes it through.

    Attributes: ``encoder`` and ``decoder`` (``BertModel``, no pooler), ``proj``,
    ``head`` (``LinearCEHead(decoder_hidden, 4**k)``: an ``nn.Linear`` whose
    ``head(rows, labels)`` fuses the projection with the cross-entropy).
    """

    config_builder = bert_encoder_config
    masks = True
    chooses_loss_positions = True

    @classmethod
    def objective_options(cls, preset) -> dict:
        return {"mask_ratio": preset.mask_ratio, "loss_on": preset.loss_on, **preset.decoder}

    def visible_width(self, n_tokens: int) -> int:
        """The packed encoder input's width for rows of ``n_tokens`` tokens: the most k-mers
        ``sample_mask`` leaves visible at ``mask_ratio`` (a static shape, the same every step)."""
        return max(1, max_unmasked(n_tokens, self.mask_ratio))

    def step_tokens(self, attention_mask: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The encoder sees the visible tokens (at most ``visible_width`` a row); the decoder sees
        every valid position. int64 device tensors, as :meth:`PretrainingModule.step_tokens`."""
        valid = attention_mask.bool()
        width = self.visible_width(valid.shape[1])
        seen = (valid & ~mask.bool()).sum(dim=1).clamp(max=width)
        rows = valid.sum(dim=1)
        return {"encoder_tokens": seen.sum(), "encoder_len": seen.max(),
                "decoder_tokens": rows.sum(), "decoder_len": rows.max()}

    def __init__(
        self,
        encoder_config: BertConfig,
        decoder_layers: int | None = None,
        decoder_heads: int | None = None,
        decoder_hidden: int | None = None,
        decoder_intermediate: int | None = None,
        decoder_dropout: float | None = None,
        mask_ratio: float = 0.5,
        light: bool = False,
        loss_on: str = "masked",
    ):
        super().__init__()
        if loss_on not in ("masked", "all"):
            raise ValueError(f"loss_on must be 'masked' or 'all', got {loss_on!r}")
        self.loss_on = loss_on
        enc = encoder_config
        self.mask_ratio = mask_ratio
        self.n_classes = enc.vocab_size - N_SPECIAL
        decoder_config = _decoder_config(enc, decoder_layers, decoder_heads, decoder_hidden, decoder_intermediate,
                                         decoder_dropout, light)
        decoder_hidden = decoder_config.hidden_size
        self.encoder = BertModel(enc, add_pooling_layer=False)
        self.decoder = BertModel(decoder_config, add_pooling_layer=False)
        if enc.hidden_size == decoder_hidden:
            self.proj = nn.Identity()
        else:
            self.proj = nn.Linear(enc.hidden_size, decoder_hidden)
            nn.init.normal_(self.proj.weight, std=enc.initializer_range)
            nn.init.zeros_(self.proj.bias)
        self.head = LinearCEHead(decoder_hidden, self.n_classes)
        nn.init.normal_(self.head.weight, std=enc.initializer_range)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask``/``mask``: ``[B, T]``; returns ``{loss, n_predicted, n_correct}``."""
        input_ids, attention_mask, mask = self.prepare_batch(input_ids, attention_mask, mask)
        device = input_ids.device
        B, T = input_ids.shape
        W = self.visible_width(T)

        attn = attention_mask.bool()
        unk = input_ids == UNK_ID
        mask = mask & attn & ~unk
        visible = attn & ~mask
        torch._assert_async(((visible & ~unk).sum(dim=1) <= W).all(),
                            "mask: fewer positions hidden than sample_mask hides at the model's mask_ratio")

        # 1. pack the visible tokens into W slots, k-mers first, then [UNK]s, each in their order;
        #    keep their original positions
        key = torch.where(visible, unk.to(torch.uint8), 2)  # 0 k-mer, 1 [UNK], 2 not visible
        order = torch.sort(key, dim=1, stable=True).indices[:, :W]  # [B, W]
        enc_attn = key.gather(1, order) < 2
        enc_ids = input_ids.gather(1, order).masked_fill(~enc_attn, UNK_ID)
        enc_hidden = self.encoder(
            input_ids=enc_ids,
            attention_mask=padding_mask_4d(enc_attn),
            position_ids=order,
        ).last_hidden_state  # [B, W, D_enc]

        # 2. project, put every packed row back at its original position and the decoder's
        #    [MASK] embedding everywhere else: one index_select from the table
        #    [projected packed rows; mask token] (row B*W is the mask token)
        projected = self.proj(enc_hidden).reshape(B * W, -1)
        # under autocast the projected rows may be bf16 while the embedding table is fp32
        mask_token = self.decoder.embeddings.word_embeddings.weight[MASK_ID].to(projected.dtype)
        table = torch.cat([projected, mask_token[None]], dim=0)
        packed_row = torch.where(enc_attn, torch.arange(B * W, device=device).view(B, W), B * W)
        src = torch.full((B, T), B * W, dtype=torch.long, device=device).scatter(1, order, packed_row)
        dec_in = table.index_select(0, src.reshape(-1)).view(B, T, -1)

        # 3. decoder over the full grid, 4. head on the loss positions only
        dec_hidden = self.decoder(inputs_embeds=dec_in, attention_mask=padding_mask_4d(attn)).last_hidden_state
        sel = mask if self.loss_on == "masked" else attn & ~unk
        return slot_loss(self.head, dec_hidden, input_ids, sel, self.loss_width(T))
