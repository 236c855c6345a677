"""In-house encoder architectures built on transformers classes.

Three pretraining objectives, each an ``nn.Module`` whose ``.encoder`` (a
``transformers`` model) is the artefact kept after pretraining:

* ``MLMForPretraining`` (BarcodeBERT: masked-token prediction, BERT encoder);
* ``MAEForPretraining`` (BarcodeMAE: encoder on visible tokens only, small BERT
  decoder reconstructs the masked k-mers);
* ``CausalForPretraining`` (next-k-mer prediction, GPT-2 encoder).

All share ``from_sizes(k, n_tokens, layers, heads, hidden, intermediate=None, ...)``,
``forward(input_ids, attention_mask, mask) -> {"loss", "n_predicted", "n_correct"}``,
``encoder_parameters()`` and ``save_encoder(dir)``. ``sample_mask`` draws the
masks; ``encode`` / ``masked_mean`` / ``last_token`` turn a (reloaded) encoder into
per-sequence embeddings. ``objectives.build_model(objective, preset)`` builds a pretraining
module by objective name (``OBJECTIVES``).
"""

from .causal import CausalForPretraining, gpt2_encoder_config
from .mae import MAEForPretraining, light_decoder_sizes
from .masking import maskable_positions, sample_mask
from .mlm import (
    LinearCEHead,
    MLMForPretraining,
    PredictionHead,
    PretrainingModule,
    bert_encoder_config,
    linear_cross_entropy,
)
from .objectives import OBJECTIVES, build_model, objective_class
from .pooling import encode, last_token, masked_mean

__all__ = [
    "OBJECTIVES",
    "build_model",
    "objective_class",
    "CausalForPretraining",
    "MAEForPretraining",
    "MLMForPretraining",
    "LinearCEHead",
    "PredictionHead",
    "PretrainingModule",
    "bert_encoder_config",
    "gpt2_encoder_config",
    "light_decoder_sizes",
    "linear_cross_entropy",
    "maskable_positions",
    "sample_mask",
    "encode",
    "last_token",
    "masked_mean",
]
