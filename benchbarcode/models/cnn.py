"""The supervised 1-D CNN of BIOSCAN-5M (``scripts/CNN/1D_CNN_supervised.py`` in BarcodeMAE's
repository): its input, its architecture, its two feature extractors and its cost.

Input: a barcode one-hot encoded over ``A C G T N`` (that order; the cleaned data hold no other
letter, and any other byte is an all-zero row), truncated to 660 nt and zero-padded after its end,
shaped ``[N, 1, 660, 5]`` (one input channel; the image is length x alphabet).

Architecture, in the reference's order: three blocks of Conv2d 3x3 (padding 1; 64, 32, 16
channels) -> ReLU -> BatchNorm2d -> MaxPool2d (3, 1) (length 660 -> 220 -> 73 -> 24), flatten
(16 x 24 x 5 = 1920), BatchNorm1d, dense 500 with tanh, dense to the species. The ReLUs and the
tanh are applied in ``forward``, not held as child modules, as in the reference.

Features (what an encoder returns, 500-d): ``trained`` is the trained network's own ``tanh(dense1)``;
``reference`` is what the reference genus script measured, ``nn.Sequential(*children[:-1])``:
the same modules in the same order but without the ReLUs and the tanh, which are not children.

Torch is imported on first use (``benchbarcode encoders`` must not pay for it).
"""

from __future__ import annotations

import functools

import numpy as np

ALPHABET = "ACGTN"
MAX_LEN = 660
EMBEDDING_DIM = 500
FEATURES = ("trained", "reference")
CHANNELS = (64, 32, 16)
POOL = 3


def pooled_length(max_len: int = MAX_LEN) -> int:
    """The length after the three (3, 1) max-pools (floor division each time: 660 -> 24)."""
    for _ in CHANNELS:
        max_len //= POOL
    return max_len


def flat_dim(max_len: int = MAX_LEN) -> int:
    """The flattened width: 16 channels x pooled length x 5 letters (1920 for 660 nt)."""
    return CHANNELS[-1] * pooled_length(max_len) * len(ALPHABET)


@functools.lru_cache(maxsize=1)
def _codes_table() -> np.ndarray:
    table = np.full(256, -1, dtype=np.int8)
    for i, letter in enumerate(ALPHABET):
        table[ord(letter)] = table[ord(letter.lower())] = i
    return table


def letter_codes(sequences: list[str], max_len: int = MAX_LEN) -> np.ndarray:
    """``int8 [N, max_len]``: the index of each letter in :data:`ALPHABET`, -1 past the end
    (and for any other byte); the compact form of :func:`one_hot`."""
    out = np.full((len(sequences), max_len), -1, dtype=np.int8)
    table = _codes_table()
    for row, seq in enumerate(sequences):
        raw = np.frombuffer(seq[:max_len].encode("ascii", "replace"), dtype=np.uint8)
        out[row, :raw.size] = table[raw]
    return out


def one_hot_codes(codes):
    """A torch ``int8 [N, L]`` code tensor as the network's float input ``[N, 1, L, 5]``
    (a code of -1 is an all-zero row)."""
    import torch

    x = torch.nn.functional.one_hot(codes.long() + 1, len(ALPHABET) + 1)[..., 1:]  # class 0: code -1
    return x.to(torch.float32).unsqueeze(1)


def one_hot(sequences: list[str], max_len: int = MAX_LEN):
    """The network's input for ``sequences``: float32 torch ``[N, 1, max_len, 5]``."""
    import torch

    return one_hot_codes(torch.from_numpy(letter_codes(sequences, max_len)))


def forward_flops(n_classes: int, max_len: int = MAX_LEN) -> dict:
    """Multiply-adds x 2 of one sequence's forward pass, by layer (convolutions, dense layers;
    batch norm, pooling and activations are left out, under 1 % here). 660 nt: conv 47.7 MFLOP,
    dense1 1.92 MFLOP, dense2 1,000 FLOP per species."""
    length, in_channels, conv = max_len, 1, 0.0
    for out_channels in CHANNELS:
        conv += 2.0 * length * len(ALPHABET) * out_channels * in_channels * 9
        length, in_channels = length // POOL, out_channels
    dense1 = 2.0 * flat_dim(max_len) * EMBEDDING_DIM
    return {"conv": conv, "dense1": dense1, "dense2": 2.0 * EMBEDDING_DIM * n_classes,
            "total": conv + dense1 + 2.0 * EMBEDDING_DIM * n_classes}


def build(n_classes: int, max_len: int = MAX_LEN):
    """A :class:`BarcodeCNN` (defined on first use, with torch), initialised by torch's current RNG."""
    return _cnn_class()(n_classes, max_len)


@functools.lru_cache(maxsize=1)
def _cnn_class():
    import torch
    from torch import nn

    class BarcodeCNN(nn.Module):
        """The BIOSCAN-5M CNN; child modules named and ordered as in the reference script, so its
        state dict has the reference's keys and ``children()`` the reference's order."""

        def __init__(self, n_classes: int, max_len: int = MAX_LEN):
            super().__init__()
            self.max_len, self.n_classes = max_len, n_classes
            widths = (1, *CHANNELS)
            for i in (1, 2, 3):  # registration order = children order: conv, bn, maxpool per block
                setattr(self, f"conv{i}", nn.Conv2d(widths[i - 1], widths[i], kernel_size=(3, 3), stride=1, padding=1))
                setattr(self, f"bn{i}", nn.BatchNorm2d(widths[i]))
                setattr(self, f"maxpool{i}", nn.MaxPool2d(kernel_size=(POOL, 1)))
            self.flatten = nn.Flatten()
            self.bn4 = nn.BatchNorm1d(flat_dim(max_len))
            self.dense1 = nn.Linear(flat_dim(max_len), EMBEDDING_DIM)
            self.dense2 = nn.Linear(EMBEDDING_DIM, n_classes)

        def trunk(self, x, relu: bool = True):
            for i in (1, 2, 3):
                x = getattr(self, f"conv{i}")(x)
                if relu:
                    x = torch.relu(x)
                x = getattr(self, f"maxpool{i}")(getattr(self, f"bn{i}")(x))
            return self.dense1(self.bn4(self.flatten(x)))

        def features(self, x, kind: str = "trained"):
            """The 500-d features: ``trained`` tanh(dense1) of the network's forward, ``reference``
            the reference genus script's ``Sequential(*children[:-1])`` (no ReLU, no tanh)."""
            if kind == "reference":
                return self.trunk(x, relu=False)
            if kind != "trained":
                raise ValueError(f"features={kind!r}: expected one of {', '.join(FEATURES)}")
            return torch.tanh(self.trunk(x))

        def forward(self, x):
            return self.dense2(self.features(x, "trained"))

    return BarcodeCNN
