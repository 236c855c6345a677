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

import importlib

#: where each public name lives; imported on first use, so that ``benchbarcode.models.presets``
#: (which the CLI reads to write its help) does not pull in torch and transformers
_WHERE = {
    "CausalForPretraining": "causal", "gpt2_encoder_config": "causal",
    "MAEForPretraining": "mae", "light_decoder_sizes": "mae",
    "maskable_positions": "masking", "sample_mask": "masking",
    "LinearCEHead": "mlm", "MLMForPretraining": "mlm", "PredictionHead": "mlm", "PretrainingModule": "mlm",
    "EncoderConfigBuilder": "mlm", "bert_encoder_config": "mlm", "linear_cross_entropy": "mlm",
    "OBJECTIVES": "objectives", "build_model": "objectives", "objective_class": "objectives",
    "encode": "pooling", "last_token": "pooling", "masked_mean": "pooling",
    "config_int": "sizes", "transformer_sizes": "sizes",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
