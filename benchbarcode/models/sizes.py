"""The sizes of a transformer config, read in one place whatever its family names them.

BERT says ``num_hidden_layers`` / ``hidden_size`` / ``intermediate_size``, GPT-2 ``n_layer`` /
``n_embd`` / ``n_inner`` (None: four times the width), other hub models ``num_layers`` or
``d_model``. Nothing here imports torch.
"""

from __future__ import annotations

_NAMES = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "heads": ("num_attention_heads", "n_head"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "ffn": ("intermediate_size", "n_inner"),
}


def config_int(config, names: tuple[str, ...]) -> int | None:
    """The first of the attributes ``names`` of ``config`` that holds an integer (not a bool)."""
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def transformer_sizes(config) -> dict:
    """``{"layers", "heads", "hidden", "ffn"}`` of ``config`` (None where it does not say; a GPT-2
    feed-forward width left unset is ``4 * hidden``)."""
    sizes = {key: config_int(config, names) for key, names in _NAMES.items()}
    if sizes["ffn"] is None and getattr(config, "model_type", "") == "gpt2" and sizes["hidden"]:
        sizes["ffn"] = 4 * sizes["hidden"]
    return sizes
