"""The tiny BarcodeBERT-style tokenizer (remote code): non-overlapping k-mers, [MASK]=0, [UNK]=1,
k-mers 2.. in ACGT order; sequences are cut or N-padded to ``max_len`` (N k-mers are [UNK]).
Like the hub's BarcodeBERT tokenizer it takes one sequence at a time and returns 1-D ids."""

import itertools

import torch
from transformers import PreTrainedTokenizer


class TinyBarcodeTokenizer(PreTrainedTokenizer):
    model_input_names = ["input_ids"]

    def __init__(self, k: int = 4, max_len: int = 660, **kwargs):
        self.k, self.max_len = k, max_len
        self.vocab = {"[MASK]": 0, "[UNK]": 1}
        for i, kmer in enumerate(itertools.product("ACGT", repeat=k)):
            self.vocab["".join(kmer)] = i + 2
        self.ids = {i: t for t, i in self.vocab.items()}
        kwargs.setdefault("unk_token", "[UNK]")
        kwargs.setdefault("mask_token", "[MASK]")
        super().__init__(k=k, max_len=max_len, **kwargs)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab)

    def _tokenize(self, text, **kwargs):
        text = text[: self.max_len].ljust(self.max_len, "N")
        return [text[i:i + self.k] for i in range(0, self.max_len - self.k + 1, self.k)]

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, 1)

    def _convert_id_to_token(self, index):
        return self.ids.get(index, "[UNK]")

    def __call__(self, text, return_tensors=None, **kwargs):
        if not isinstance(text, str):
            raise TypeError("TinyBarcodeTokenizer takes one sequence at a time")
        ids = [self._convert_token_to_id(t) for t in self._tokenize(text)]
        return {"input_ids": torch.tensor(ids) if return_tensors == "pt" else ids}

    def save_vocabulary(self, save_directory, filename_prefix=None):
        return ()
