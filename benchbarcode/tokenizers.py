"""K-mer tokenizer compatible with BarcodeBERT / BarcodeMAE checkpoints.

The rule, applied to every sequence independently
--------------------------------------------------
Parameters: ``k`` (1..12), ``stride`` (>= 1, defaults to ``k``, i.e.
non-overlapping k-mers) and ``max_len`` (>= ``k``).

1. **Vocabulary.** ``[MASK]`` = 0, ``[UNK]`` = 1, and the k-mer ``w`` gets id
   ``2 + index of w in itertools.product("ACGT", repeat=k)``, i.e. ``2 +`` the
   base-4 number spelled by ``w`` with A=0, C=1, G=2, T=3 and the first base
   most significant.  ``vocab_size = 4**k + 2``.
2. **Offset.** The first ``offset`` bases are dropped (training augmentation).
   ``offset`` is a non-negative int applied to every sequence, or an array of
   ``N`` non-negative ints (one per sequence).
3. **Truncate / pad.** The result is truncated to ``max_len`` characters; a
   shorter one is right-padded with ``'N'`` up to ``max_len``.
4. **Tokens.** Token ``t`` is the k-mer starting at position ``t * stride``.
   The number of tokens is the number of start positions
   ``0, stride, 2*stride, ...`` with ``start + k <= max_len``::

       T = (max_len - k) // stride + 1          (n_tokens)

   which equals ``max_len // k`` for ``stride == k`` (660 nt, k=6 -> 110;
   k=8 -> 82).  A k-mer containing any character other than ``A``, ``C``,
   ``G``, ``T`` (``N`` padding, IUPAC codes, gaps, lowercase, ...) maps to
   ``[UNK]`` (= 1).  Input is expected to be upper case already; no case
   folding is done.
5. **Attention mask.** With ``len`` the sequence length after the offset and
   truncation (so ``0 <= len <= max_len``), the mask is 1 for the first
   ``min(len // stride, T)`` tokens and 0 afterwards.

Calling the tokenizer on a list of ``N`` strings returns
``(input_ids, attention_mask)``, both ``int64`` numpy arrays of shape
``[N, T]``.  An empty list gives arrays of shape ``[0, T]``.

Implementation: the (offset, truncated, padded) sequences are joined into one
fixed-width byte buffer, mapped to 2-bit codes with ``bytes.translate``
(non-ACGT -> 4), and the k-mer ids are built with a vectorised Horner scheme
over ``k`` strided column views; a k-mer is ``[UNK]`` when the bitwise OR of
its codes is > 3.  Work is done in chunks of sequences to bound memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MASK_ID",
    "UNK_ID",
    "MASK_TOKEN",
    "UNK_TOKEN",
    "SPECIAL_TOKENS",
    "special_tokens",
    "KmerTokenizer",
]

MASK_ID = 0
UNK_ID = 1
MASK_TOKEN = "[MASK]"
UNK_TOKEN = "[UNK]"
#: Special tokens in id order (``SPECIAL_TOKENS[i]`` has id ``i``).
SPECIAL_TOKENS: tuple[str, ...] = (MASK_TOKEN, UNK_TOKEN)
special_tokens = SPECIAL_TOKENS  # alias
_N_SPECIAL = len(SPECIAL_TOKENS)

_ALPHABET = "ACGT"
_PAD_CHAR = "N"
_INVALID_CODE = 4
_MAX_K = 12

# bytes.translate table: A,C,G,T -> 0..3, every other byte -> 4.
_CODE_TABLE = bytearray([_INVALID_CODE]) * 256
for _i, _c in enumerate(_ALPHABET.encode("ascii")):
    _CODE_TABLE[_c] = _i
_CODE_TABLE = bytes(_CODE_TABLE)
del _i, _c

# Sequences processed per internal chunk (keeps the byte buffers cache/memory friendly).
_CHUNK = 4096


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


class KmerTokenizer:
    """K-mer tokenizer (see the module docstring for the exact rule).

    Parameters
    ----------
    k:
        K-mer length, 1..12.
    stride:
        Distance between consecutive k-mer starts (>= 1); ``None`` means ``k``.
    max_len:
        Sequence length after truncation / padding (>= k).
    """

    def __init__(self, k: int = 6, stride: int | None = None, max_len: int = 660) -> None:
        k = _check_int("k", k)
        if not 1 <= k <= _MAX_K:
            raise ValueError(f"k must be in 1..{_MAX_K}, got {k}")
        if stride is None:
            stride = k
        stride = _check_int("stride", stride)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        max_len = _check_int("max_len", max_len)
        if max_len < k:
            raise ValueError(f"max_len must be >= k ({k}), got {max_len}")
        self._k = k
        self._stride = stride
        self._max_len = max_len
        self._n_tokens = (max_len - k) // stride + 1
        # Horner accumulator dtype: 2*k bits (+ junk bits for invalid k-mers, discarded).
        self._acc_dtype = np.uint16 if k <= 8 else np.uint32

    # ------------------------------------------------------------------ properties
    @property
    def k(self) -> int:
        return self._k

    @property
    def stride(self) -> int:
        return self._stride

    @property
    def max_len(self) -> int:
        return self._max_len

    @property
    def n_tokens(self) -> int:
        """T = (max_len - k) // stride + 1 (= max_len // k when stride == k)."""
        return self._n_tokens

    @property
    def vocab_size(self) -> int:
        return 4**self._k + _N_SPECIAL

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return SPECIAL_TOKENS

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, int]:
        return {"k": self._k, "stride": self._stride, "max_len": self._max_len}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KmerTokenizer:
        unknown = set(d) - {"k", "stride", "max_len"}
        if unknown:
            raise ValueError(f"unknown KmerTokenizer config keys: {sorted(unknown)}")
        if "k" not in d:
            raise ValueError("KmerTokenizer config needs 'k'")
        return cls(k=d["k"], stride=d.get("stride"), max_len=d.get("max_len", 660))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KmerTokenizer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._k, self._stride, self._max_len))

    def __repr__(self) -> str:
        return f"KmerTokenizer(k={self._k}, stride={self._stride}, max_len={self._max_len})"

    # ------------------------------------------------------------------ vocabulary helpers
    def kmer_to_id(self, kmer: str) -> int:
        """Id of one k-mer string (``[UNK]`` if it holds a non-ACGT char)."""
        if len(kmer) != self._k:
            raise ValueError(f"expected a {self._k}-mer, got {kmer!r}")
        idx = 0
        for ch in kmer:
            code = _ALPHABET.find(ch)
            if code < 0:
                return UNK_ID
            idx = idx * 4 + code
        return idx + _N_SPECIAL

    def decode_ids(self, ids: Iterable[int]) -> list[str]:
        """Map a 1-D sequence of ids back to k-mer strings / special tokens."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"decode_ids expects a 1-D sequence of ids, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        out: list[str] = []
        vocab = self.vocab_size
        k = self._k
        for i in arr.tolist():
            if i < 0 or i >= vocab:
                raise ValueError(f"id {i} out of range [0, {vocab})")
            if i < _N_SPECIAL:
                out.append(SPECIAL_TOKENS[i])
                continue
            v = i - _N_SPECIAL
            chars = []
            for _ in range(k):
                chars.append(_ALPHABET[v & 3])
                v >>= 2
            out.append("".join(reversed(chars)))
        return out

    # ------------------------------------------------------------------ tokenisation
    def _offsets(self, offset: Any, n: int) -> tuple[int | None, list[int] | None]:
        """Return (scalar_offset, None) or (None, per_sequence_offsets)."""
        if isinstance(offset, (int, np.integer)) and not isinstance(offset, bool):
            off = int(offset)
            if off < 0:
                raise ValueError(f"offset must be >= 0, got {off}")
            return off, None
        arr = np.asarray(offset)
        if arr.ndim == 0:
            raise ValueError(f"offset must be an int or an array of ints, got {offset!r}")
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"per-sequence offsets must have shape ({n},), got {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"offsets must be integers, got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise ValueError("offsets must be >= 0")
        return None, arr.astype(np.int64).tolist()

    def __call__(self, seqs: Sequence[str], offset: int | Sequence[int] | np.ndarray = 0) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize ``seqs``; return ``(input_ids, attention_mask)``, int64 ``[N, T]``."""
        if isinstance(seqs, (str, bytes)):
            raise TypeError("seqs must be a list of str, not a single string")
        if not isinstance(seqs, Sequence) and not isinstance(seqs, np.ndarray):
            seqs = list(seqs)
        n = len(seqs)
        scalar_off, offs = self._offsets(offset, n)
        T = self._n_tokens
        ids = np.empty((n, T), dtype=np.int64)
        mask = np.empty((n, T), dtype=np.int64)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            chunk = seqs[lo:hi]
            coffs = None if offs is None else offs[lo:hi]
            self._encode_chunk(chunk, scalar_off, coffs, ids[lo:hi], mask[lo:hi])
        return ids, mask

    def _encode_chunk(
        self,
        seqs: Sequence[str],
        scalar_off: int | None,
        offs: list[int] | None,
        ids_out: np.ndarray,
        mask_out: np.ndarray,
    ) -> None:
        n = len(seqs)
        L = self._max_len
        k = self._k
        s = self._stride
        T = self._n_tokens
        try:
            if offs is None:
                o = scalar_off
                e = o + L
                cut = [x[o:e] for x in seqs]
            else:
                cut = [x[o : o + L] for x, o in zip(seqs, offs)]
            lens = np.fromiter(map(len, cut), dtype=np.int64, count=n)
            joined = "".join([x.ljust(L, _PAD_CHAR) for x in cut])
        except (TypeError, AttributeError) as exc:
            raise TypeError(f"seqs must be a sequence of str: {exc}") from None
        # 'replace' keeps one byte per code point (non-ASCII -> '?', i.e. invalid).
        raw = joined.encode("ascii", "replace")
        if len(raw) != n * L:  # pragma: no cover - defensive (non-str subclasses)
            raise TypeError("seqs must be a sequence of str")
        codes = np.frombuffer(raw.translate(_CODE_TABLE), dtype=np.uint8).reshape(n, L)

        # Horner over k strided views: column j of token t is position t*s + j.
        span = (T - 1) * s + 1
        first = codes[:, 0:span:s]
        acc = first.astype(self._acc_dtype)
        bad = first.copy()
        for j in range(1, k):
            v = codes[:, j : j + span : s]
            acc <<= 2
            acc |= v  # invalid codes (4) corrupt acc, but those k-mers become [UNK]
            bad |= v
        np.add(acc, _N_SPECIAL, out=ids_out, dtype=np.int64)
        np.copyto(ids_out, UNK_ID, where=bad > 3)

        n_valid = np.minimum(lens // s, T)
        np.less(np.arange(T), n_valid[:, None], out=mask_out)
