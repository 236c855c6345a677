"""The pretraining objectives by name, and the one function that builds a pretraining module.

Each objective is a :class:`~benchbarcode.models.mlm.PretrainingModule` subclass that declares
its traits (``masks``: takes a mask ratio; ``chooses_loss_positions``: takes ``--loss-on``), the
preset fields it reads (``objective_options``) and what a step costs (``step_tokens``); the
pretraining loop and the CLI read those instead of branching on names.
"""

from __future__ import annotations

from benchbarcode.errors import UserError
from benchbarcode.tokenizers import KmerTokenizer

from .causal import CausalForPretraining
from .mae import MAEForPretraining
from .mlm import MLMForPretraining, PretrainingModule
from .presets import Preset

OBJECTIVES: dict[str, type[PretrainingModule]] = {
    "mae": MAEForPretraining,
    "mlm": MLMForPretraining,
    "causal": CausalForPretraining,
}


def objective_class(objective: str) -> type[PretrainingModule]:
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[objective]


def build_model(objective: str, preset: Preset) -> PretrainingModule:
    """The pretraining module of ``objective`` shaped by ``preset`` (weights from torch's RNG)."""
    n_tokens = KmerTokenizer(preset.k, max_len=preset.max_len).n_tokens
    return objective_class(objective).from_preset(preset, n_tokens)
