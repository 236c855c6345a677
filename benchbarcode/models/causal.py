"""Causal (next-k-mer) language-model pretraining with a GPT-2 encoder.

Objective (``CausalForPretraining``)
------------------------------------
Inputs: k-mer ids ``[B, T]`` (``[MASK]`` = 0, ``[UNK]`` = 1, k-mer -> ``2 +
index``), right-padded, with an attention mask. ``.encoder`` is a
``transformers.GPT2Model`` run on the whole sequence (its full width, a static
shape) with the causal mask alone and default position ids ``0..T-1``: with
right padding a valid position only attends to earlier, valid positions, so
the padding needs no mask of its own (the padded positions' states are never
used). The hidden state at position ``t`` predicts token ``t + 1``; the loss
positions are those ``t`` with attention 1 whose next token is valid
(attention 1 and not ``[UNK]``). The head (an untied ``Linear(n_embd,
4**k)``, applied after GPT-2's final LayerNorm) runs on every position
``0..T-2`` and only the loss positions count (``slot_loss``); label = next id
- 2; mean cross-entropy. No masking is involved (``mask`` is accepted and
ignored, for a uniform training loop). Nothing is read back from the device.

``forward`` returns ``{"loss", "n_predicted", "n_correct"}`` as the masked
objectives do. ``save_encoder(dir)`` writes the ``GPT2Model`` alone;
``transformers.AutoModel.from_pretrained(dir)`` reopens it (embed with
``pooling="last"`` or ``"mean"``, see ``benchbarcode.models.pooling``).

Config conventions: ``vocab_size = 4**k + 2``, ``n_positions = n_tokens``,
``bos/eos/pad_token_id = None`` (no such tokens here), ``use_cache = False``
(GPT-2 would otherwise build a KV cache on every training forward),
``activation_function = "gelu"`` (as the BERT encoders; GPT-2's default
``gelu_new`` is a slower tanh approximation), ``attn_implementation = "sdpa"``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model

from benchbarcode.tokenizers import UNK_ID

from .mlm import (
    N_SPECIAL,
    EncoderConfigBuilder,
    LinearCEHead,
    PretrainingModule,
    slot_loss,
)

__all__ = ["CausalForPretraining", "gpt2_encoder_config"]


#: The ``GPT2Config`` of a causal k-mer encoder (conventions in the module docstring); GPT-2 applies
#: the hidden dropout to the residual branches and the embeddings alike.
gpt2_encoder_config = EncoderConfigBuilder(
    GPT2Config,
    names={"n_tokens": ("n_positions",), "layers": ("n_layer",), "heads": ("n_head",), "hidden": ("n_embd",),
           "intermediate": ("n_inner",), "hidden_dropout": ("resid_pdrop", "embd_pdrop"),
           "attention_dropout": ("attn_pdrop",)},
    fixed={"activation_function": "gelu", "bos_token_id": None, "eos_token_id": None, "use_cache": False},
)


class CausalForPretraining(PretrainingModule):
    """Next-k-mer prediction with a GPT-2 encoder (see the module docstring).

    Attributes: ``encoder`` (``GPT2Model``), ``head`` (``LinearCEHead(n_embd, 4**k, bias=False)``).
    """

    config_builder = gpt2_encoder_config

    def __init__(self, encoder_config: GPT2Config):
        super().__init__()
        self.n_classes = encoder_config.vocab_size - N_SPECIAL
        self.encoder = GPT2Model(encoder_config)
        self.head = LinearCEHead(encoder_config.n_embd, self.n_classes, bias=False)
        nn.init.normal_(self.head.weight, std=encoder_config.initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``input_ids``/``attention_mask``: ``[B, T]``; ``mask`` ignored; returns ``{loss, n_predicted, n_correct}``."""
        input_ids, attention_mask, _ = self.prepare_batch(input_ids, attention_mask)

        attn = attention_mask.bool()
        # the causal mask alone, as a 4-D mask (used as given: from none, transformers would look
        # for packed sequences in the position ids, reading the device): with right padding no
        # valid position sees a padded one, and the padded positions' states are never used
        T = input_ids.shape[1]
        causal = torch.ones((T, T), dtype=torch.bool, device=input_ids.device).tril()[None, None]
        hidden = self.encoder(input_ids=input_ids, attention_mask=causal, use_cache=False).last_hidden_state
        next_valid = attn[:, 1:] & (input_ids[:, 1:] != UNK_ID)
        sel = attn[:, :-1] & next_valid  # [B, T-1]: position t predicts t + 1
        return slot_loss(self.head, hidden[:, :-1], input_ids[:, 1:], sel, sel.shape[1])
