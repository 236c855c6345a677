"""A tiny BarcodeBERT-style model for benchbarcode's tests, loaded with ``trust_remote_code``.

Like the hub's BarcodeBERT, ``AutoModel`` gives a token-classification model whose output holds
``hidden_states`` and ``logits`` but no ``last_hidden_state``, and whose forward takes the ids
alone (no attention mask): the tokenizer pads every sequence to the same length with [UNK].
"""

from torch import nn
from transformers import BertConfig, BertModel, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from .configuration_tinybarcodebert import TinyBarcodeConfig


class TinyBarcodeBert(PreTrainedModel):
    config_class = TinyBarcodeConfig

    def __init__(self, config):
        super().__init__(config)
        bert = BertConfig(vocab_size=4 ** config.k + 2, hidden_size=config.hidden_size,
                          num_hidden_layers=config.num_hidden_layers,
                          num_attention_heads=config.num_attention_heads,
                          intermediate_size=config.intermediate_size,
                          max_position_embeddings=config.max_len // config.k, pad_token_id=None)
        self.bert = BertModel(bert, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, 4 ** config.k)
        self.post_init()

    def forward(self, input_ids):
        out = self.bert(input_ids=input_ids, output_hidden_states=True)
        return TokenClassifierOutput(logits=self.classifier(out.last_hidden_state),
                                     hidden_states=out.hidden_states)
