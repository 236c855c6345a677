"""The supervised CNN baseline of BIOSCAN-5M (its "CNN" row) and its random-initialisation control.

``cnn`` is trained on the ``train`` split's species (:mod:`benchbarcode.supervised`; ``run``
trains it once and caches it, or ``--checkpoint DIR`` loads a trained directory); its embedding
is the frozen 500-d dense layer (:mod:`benchbarcode.models.cnn`). ``features=reference`` gives
what the reference genus script measured (the dense layer without the ReLUs and the tanh), the
network behind the published 29.88 %. ``cnn-init`` is the same network randomly initialised from
the run's seed, exactly as training initialises it: the control that tells what training bought.
"""

from __future__ import annotations

import numpy as np

from benchbarcode.errors import UserError
from benchbarcode.registry import Encoder, register_encoder
from benchbarcode.supervised import Trainer

ARCHITECTURE = "benchbarcode.models.cnn"
TRAINER = Trainer(model=ARCHITECTURE)
_SHAPE = "one-hot ACGTN x 660, conv 64/32/16 (3x3, ReLU, BN, max-pool 3x1), BN, dense 500 tanh"


class CNNEncoder(Encoder):
    """A :class:`~benchbarcode.models.cnn` network in eval mode (batch norm on its running
    statistics, so a batch embeds as sequences one by one would); its 500-d ``features``."""

    def __init__(self, model, features: str, device: str, *, checkpoint: dict, budget: dict):
        from benchbarcode.models.cnn import FEATURES

        if features not in FEATURES:
            raise UserError(f"encoder option features={features}: expected one of {', '.join(FEATURES)}")
        self.model = model.to(device).eval()
        self.features, self.device = features, device
        self._facts = {"checkpoint": checkpoint, "budget": budget}

    def describe(self) -> dict:
        from benchbarcode.models.cnn import EMBEDDING_DIM

        head = sum(p.numel() for p in self.model.dense2.parameters())
        return {**self._facts, "tokenizer": "one-hot (A, C, G, T, N)", "max_length": self.model.max_len,
                "embedding_dim": EMBEDDING_DIM, "hidden_size": EMBEDDING_DIM,
                "parameters": sum(p.numel() for p in self.model.parameters()) - head,
                "pooling": "dense layer 1 (tanh)" if self.features == "trained"
                           else "dense layer 1, no ReLU/tanh (reference genus script)"}

    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import torch

        from benchbarcode.models.cnn import EMBEDDING_DIM, letter_codes, one_hot_codes

        sequences = list(sequences)
        out = np.zeros((len(sequences), EMBEDDING_DIM), dtype=np.float32)
        starts = range(0, len(sequences), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embed", unit="batch", leave=False)
        with torch.inference_mode():
            for start in starts:
                codes = torch.from_numpy(letter_codes(sequences[start:start + batch_size], self.model.max_len))
                x = one_hot_codes(codes.to(self.device))
                out[start:start + len(codes)] = self.model.features(x, self.features).float().cpu().numpy()
        return out


def _feature_parameters() -> int:
    """Parameters of the network without its species head (the listing's count)."""
    model = _initialised(0)
    return sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.dense2.parameters())


def _initialised(seed: int, max_len: int = 660):
    """The network training starts from at ``seed`` (the same ``torch.manual_seed``, then build;
    the species head is built last, so its size does not change the other weights)."""
    import torch

    from benchbarcode.models.cnn import build

    torch.manual_seed(seed)
    return build(1, max_len)


@register_encoder("cnn", family="supervised baseline", objective="supervised-species", trainer=TRAINER,
                  control={"encoder": "cnn-init", "options": {}, "carry": ["features"]}, parameters=_feature_parameters,
                  description="BIOSCAN-5M's supervised 1-D CNN (" + _SHAPE + "), trained on the train "
                              "split's species; embedding: the 500-d dense layer")
def cnn_encoder(checkpoint: str | None = None, features: str = "trained", device: str = "cpu",
                epochs: int | None = None, initial_preset: str | None = None, initial_seed: int = 0) -> Encoder:
    """The trained CNN of ``checkpoint`` (a directory :mod:`benchbarcode.supervised` wrote; ``run``
    trains one when none is given). ``epochs`` is the recipe's (checked against the directory's
    record). ``initial_preset`` (``profile``'s untrained architecture) gives the network
    initialised from ``initial_seed``; its cost does not depend on the weights."""
    from benchbarcode.models.cnn import build

    if initial_preset is not None:
        return CNNEncoder(_initialised(initial_seed), features, device, budget={"steps": 0, "flops": 0.0},
                          checkpoint={"seed": initial_seed, "weights": "random initialisation"})
    if checkpoint is None:
        raise UserError("encoder cnn needs --checkpoint: a directory written by supervised training "
                        "(without --checkpoint, 'benchbarcode run' trains it on the train split first)")
    from benchbarcode.supervised import read_trained

    record, state, identity = read_trained(checkpoint, model=ARCHITECTURE)
    recipe = record["recipe"]
    if epochs is not None and epochs != recipe.get("epochs"):
        raise UserError(f"{checkpoint}: trained for {recipe.get('epochs')} epochs, not epochs={epochs}")
    model = build(len(record["classes"]), recipe.get("max_len", 660))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{checkpoint}: weights do not fit the CNN ({str(exc).splitlines()[0]})") from None
    return CNNEncoder(model, features, device, budget=record.get("budget", {}),
                      checkpoint={"path": str(checkpoint), "tensors_sha256": identity, "seed": record.get("seed"),
                                  "recipe": recipe, "classes": len(record["classes"])})


@register_encoder("cnn-init", family="baseline", objective="random-init", seeded=True, parameters=_feature_parameters,
                  description="the supervised CNN's network randomly initialised from the run's seed, as "
                              "training starts: cnn's control")
def cnn_init_encoder(seed: int = 0, features: str = "trained", device: str = "cpu") -> Encoder:
    return CNNEncoder(_initialised(seed), features, device, budget={"steps": 0, "flops": 0.0},
                      checkpoint={"seed": seed, "weights": "random initialisation"})
