"""A tiny MosaicBERT-style encoder for benchbarcode's tests, loaded with ``trust_remote_code``.

DNABERT-2 / DNABERT-S share this architecture family (ALiBi attention instead of position
embeddings, fused QKV, unpadded outputs). The model is written for the tests, not copied; it
reproduces, on purpose, the loading traps users of DNABERT-2's remote code hit:

* a Triton flash-attention path is taken whenever ``triton`` imports, and it fails;
* the classes inherit transformers' ``BertPreTrainedModel``, so their ``config_class`` is
  transformers' ``BertConfig``, not the remote ``BertConfig`` of configuration_tinymosaic.py;
* the ALiBi buffer is built in ``__init__`` from a CPU tensor and default-device positions,
  which fails when transformers initialises the model on the meta device;
* without an attention mask the padding is guessed from ``config.pad_token_id`` (0, which is
  the tokenizer's [UNK], not its [PAD] = 3), so an omitted mask gives wrong vectors.
"""

import math

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertPreTrainedModel

try:
    import triton  # noqa: F401

    TRITON_FLASH_ATTENTION = True
except ImportError:
    TRITON_FLASH_ATTENTION = False


def alibi_slopes(n_heads: int) -> list:
    start = 2 ** (-8 / n_heads)
    return [start ** (i + 1) for i in range(n_heads)]


class AlibiLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(config.hidden_size, config.intermediate_size), nn.GELU(),
                                 nn.Linear(config.intermediate_size, config.hidden_size))
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, bias):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.norm1(x + self.out(y))
        return self.norm2(x + self.mlp(x))


class BertModel(BertPreTrainedModel):
    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.emb_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(AlibiLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.rebuild_alibi(config.alibi_starting_size)
        self.post_init()

    def rebuild_alibi(self, size: int, device=None):
        positions = torch.arange(size, device=device)
        distance = (positions[None, :] - positions[:, None]).abs()
        slopes = torch.Tensor(alibi_slopes(self.config.num_attention_heads)).to(device)
        self.register_buffer("alibi", slopes[:, None, None] * -distance, persistent=False)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, **kwargs):
        if TRITON_FLASH_ATTENTION:
            raise RuntimeError("Triton flash attention: incompatible with the installed triton")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        t = input_ids.shape[1]
        if t > self.alibi.shape[-1]:
            self.rebuild_alibi(t, input_ids.device)
        keep = attention_mask[:, None, None, :].bool()
        bias = self.alibi[None, :, :t, :t].to(self.word_embeddings.weight.dtype)
        bias = bias.masked_fill(~keep, torch.finfo(bias.dtype).min)
        x = self.emb_norm(self.word_embeddings(input_ids))
        for layer in self.layers:
            x = layer(x, bias)
        x = x * attention_mask[..., None].to(x.dtype)  # unpadded outputs: zeros at padding
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None
        return x, pooled


class BertForMaskedLM(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        hidden, _ = self.bert(input_ids, attention_mask=attention_mask)
        return (self.cls(hidden),)
