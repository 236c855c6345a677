"""Config of the tiny BarcodeBERT-style test model (remote code; see modeling_tinybarcodebert.py)."""

from transformers import PretrainedConfig


class TinyBarcodeConfig(PretrainedConfig):
    model_type = "tinybarcodebert"

    def __init__(self, k: int = 4, hidden_size: int = 32, num_hidden_layers: int = 2,
                 num_attention_heads: int = 2, intermediate_size: int = 64, max_len: int = 660, **kwargs):
        super().__init__(**kwargs)
        self.k, self.hidden_size, self.num_hidden_layers = k, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size, self.max_len = num_attention_heads, intermediate_size, max_len
