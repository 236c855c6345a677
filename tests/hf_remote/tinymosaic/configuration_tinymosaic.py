"""Config of the tiny MosaicBERT-style test model (remote code; see modeling_tinymosaic.py).

Named ``BertConfig`` like DNABERT-2's own config class, and deriving from transformers' one.
"""

from transformers import BertConfig as TransformersBertConfig


class BertConfig(TransformersBertConfig):
    def __init__(self, alibi_starting_size: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.alibi_starting_size = alibi_starting_size
