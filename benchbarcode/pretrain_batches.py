"""The pretraining corpus on the device, and the batch of every step drawn there.

The corpus is tokenised once, before the first step: for each offset ``o`` in ``0..k-1`` (the
offset augmentation drops the first ``o`` bases), the k-mer ids of every sequence (int16 while the
vocabulary fits, else int32) and its number of valid tokens, all on the training device. A step then
reads nothing back from the device and tokenises nothing:

* **which sequences**: an epoch's permutation (numpy, seeded by ``(seed, 1, epoch)``) is copied
  to the device once per epoch; a step takes its slice;
* **which offsets**: ``batch_size`` integers in ``0..k-1`` (numpy, seeded by ``(seed, 2, step)``),
  copied to the device;
* **which tokens are hidden**: :func:`~benchbarcode.models.masking.sample_mask` on the device, ranking
  by uniform scores drawn there from a generator seeded by ``(seed, 3, step)``.

So a batch is a pure function of ``(seed, step)`` and the data, whatever the number of processes
(each takes rows ``rank::world`` of the global batch) and whether the run was resumed; on CPU the
batches are those of the earlier host-side loop (same permutations, offsets, scores and tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from benchbarcode.errors import UserError
from benchbarcode.models.masking import sample_mask
from benchbarcode.tokenizers import KmerTokenizer

#: sequences tokenised at a time while the corpus is built (bounds the int64 buffers)
_CHUNK = 65_536


def _seed(*key: int) -> int:
    return int(np.random.default_rng(list(key)).integers(2**62))


class DeviceCorpus:
    """``sequences`` tokenised by ``tokenizer`` at every offset, held on ``device``; :meth:`batch`
    gives the rows of one step's global batch of ``batch_size`` sequences.

    ``mask_ratio``: the fraction of maskable tokens each batch hides (None: no mask is drawn, for
    objectives that do not mask). ``offsets``: how many offsets the augmentation draws from
    (default ``tokenizer.k``; 1 turns it off).
    """

    def __init__(self, sequences: Sequence[str], tokenizer: KmerTokenizer, batch_size: int, seed: int,
                 device: str | torch.device = "cpu", mask_ratio: float | None = None,
                 offsets: int | None = None):
        n = len(sequences)
        if n == 0:
            raise UserError("the pretraining corpus is empty (splits pretrain, other_heldout, train)")
        self.n, self.batch_size, self.seed, self.mask_ratio = n, batch_size, seed, mask_ratio
        self.n_offsets = tokenizer.k if offsets is None else offsets
        self.device = torch.device(device)
        self.n_tokens = tokenizer.n_tokens
        id_dtype = torch.int16 if tokenizer.vocab_size <= torch.iinfo(torch.int16).max else torch.int32
        ids = torch.empty((n, self.n_offsets, self.n_tokens), dtype=id_dtype)
        lengths = torch.empty((n, self.n_offsets), dtype=torch.int16)
        for lo in range(0, n, _CHUNK):
            chunk = sequences[lo:lo + _CHUNK]
            for offset in range(self.n_offsets):
                chunk_ids, chunk_attn = tokenizer(chunk, offset=offset)
                ids[lo:lo + len(chunk), offset] = torch.from_numpy(chunk_ids)
                lengths[lo:lo + len(chunk), offset] = torch.from_numpy(chunk_attn.sum(axis=1))
        self.ids, self.lengths = ids.to(self.device), lengths.to(self.device)
        self._positions = torch.arange(self.n_tokens, device=self.device)
        self._epochs: dict[int, torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        """Device memory the corpus holds."""
        return self.ids.numel() * self.ids.element_size() + self.lengths.numel() * self.lengths.element_size()

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._epochs:  # keep the last two: a step's batch may span an epoch boundary
            perm = np.random.default_rng([self.seed, 1, epoch]).permutation(self.n)
            self._epochs = {e: p for e, p in self._epochs.items() if e == epoch - 1}
            self._epochs[epoch] = torch.from_numpy(perm).to(self.device)
        return self._epochs[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """The corpus rows of global batch ``step`` (on the device): positions ``step * batch_size``
        onwards of the concatenated epoch permutations."""
        start, end = step * self.batch_size, (step + 1) * self.batch_size
        parts = []
        for epoch in range(start // self.n, (end - 1) // self.n + 1):
            lo, hi = max(start, epoch * self.n) - epoch * self.n, min(end, (epoch + 1) * self.n) - epoch * self.n
            parts.append(self._permutation(epoch)[lo:hi])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def offsets(self, step: int) -> np.ndarray:
        """The offset of each row of global batch ``step`` (host: ``batch_size`` small integers)."""
        return np.random.default_rng([self.seed, 2, step]).integers(0, self.n_offsets, size=self.batch_size)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """This process's rows (``rank::world``) of global batch ``step``: ``(input_ids, attention_mask,
        mask)``, int64 / int64 / bool ``[rows, n_tokens]`` on the device (``mask`` None without a
        ``mask_ratio``). The mask is drawn for the whole global batch, so it does not depend on
        ``world``."""
        rows = self.indices(step)[rank::world]
        offsets = torch.from_numpy(self.offsets(step)[rank::world]).to(self.device, non_blocking=True)
        input_ids = self.ids[rows, offsets].long()
        attention_mask = (self._positions < self.lengths[rows, offsets][:, None]).long()
        if self.mask_ratio is None:
            return input_ids, attention_mask, None
        gen = torch.Generator(device=self.device).manual_seed(_seed(self.seed, 3, step, 0))
        scores = torch.rand((self.batch_size, self.n_tokens), generator=gen, device=self.device)[rank::world]
        return input_ids, attention_mask, sample_mask(input_ids, attention_mask, self.mask_ratio, scores=scores)
