"""Why does a pretrained encoder's mean-pooled embedding lose genus information?

For one encoder (a directory written by ``benchbarcode pretrain``, or ``random:NAME`` for the
random-init control of the ``tiny`` preset, seed 0, NAME an in-house encoder or its objective:
``random:mae``, ``random:mlm``, ``random:gpt`` = ``random:causal``) this scores the package's
``open-world`` task (1-NN genus, keys = train, queries = test_unseen, cosine) on the embedding
layer and on the last layer, pooled in several ways, and measures two nuisances of mean pooling:

* ``len_R2``: share of the variance of the pooled keys explained by a linear function of the
  sequence length (in tokens);
* ``pos_var_frac``: share of the variance of the token states explained by the position alone
  (the per-position mean state);

and three repairs: centring (the task's ``accuracy_centred``: subtract the keys' mean),
position-centring (subtract the per-position mean state before pooling) and restricting keys and
queries to full-length sequences. ``*_raw`` is the task's ``accuracy``.

    python -m experiments.embedding_diagnostics /tmp/mae1000 random:mae --data sim

The token states come from the encoder's own transformers model and tokenizer (what pooling is
diagnosed here); the 1-NN scores are the open-world task's, which before the move to
experiments/ this script computed with its own numpy 1-NN (the same protocol; float rounding can
change a near-tie).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from benchbarcode.data import load_barcodes
from benchbarcode.run import label_frame
from experiments.common import (
    inhouse_name,
    load_run,
    open_world,
    random_control,
    study_parser,
)


def load(source: str):
    if source.startswith("random:"):
        return random_control(inhouse_name(source.split(":", 1)[1]), "tiny", {}, 0, "cpu")
    return load_run(source, "cpu")


def token_states(encoder, sequences) -> tuple[np.ndarray, np.ndarray]:
    """``[2, N, T, D]`` states of the embedding layer and the last layer, and the ``[N, T]`` mask."""
    model, tok = encoder.model, encoder.tokenizer
    ids, attn = tok(list(sequences))
    ids, attn = torch.from_numpy(np.asarray(ids)).long(), torch.from_numpy(np.asarray(attn)).long()
    extra = {"use_cache": False} if model.config.model_type == "gpt2" else {}
    chunks = []
    with torch.inference_mode():
        for s in range(0, len(ids), 256):
            hs = model(input_ids=ids[s:s + 256], attention_mask=attn[s:s + 256],
                       output_hidden_states=True, **extra).hidden_states
            chunks.append(torch.stack([hs[0], hs[-1]]).float().numpy())
    return np.concatenate(chunks, axis=1), attn.numpy().astype(np.float32)


def pooled(states, attn, per_position_mean=None):
    if per_position_mean is not None:
        states = states - per_position_mean[None]
    return (states * attn[..., None]).sum(1) / attn.sum(1, keepdims=True)


def one_nn(keys, key_labels: pd.DataFrame, queries, query_labels: pd.DataFrame) -> dict:
    """The open-world task's scores of these key and query vectors."""
    return open_world({"train": keys, "test_unseen": queries},
                      {"train": key_labels.reset_index(drop=True),
                       "test_unseen": query_labels.reset_index(drop=True)})


def diagnose(encoder, train, queries) -> dict:
    kl, ql = label_frame(train), label_frame(queries)
    Hk, Ak = token_states(encoder, train["sequence"])
    Hq, Aq = token_states(encoder, queries["sequence"])
    full_k, full_q = Ak.sum(1) == Ak.sum(1).max(), Aq.sum(1) == Ak.sum(1).max()
    out = {}
    for layer, name in ((0, "embedding"), (1, "last")):
        k, q = pooled(Hk[layer], Ak), pooled(Hq[layer], Aq)
        mu = (Hk[layer] * Ak[..., None]).sum(0) / np.maximum(Ak.sum(0), 1)[:, None]
        scores = one_nn(k, kl, q, ql)
        out[f"{name}_raw"] = scores["accuracy"]
        out[f"{name}_centred"] = scores["accuracy_centred"]
        out[f"{name}_position_centred"] = one_nn(pooled(Hk[layer], Ak, mu), kl,
                                                 pooled(Hq[layer], Aq, mu), ql)["accuracy"]
        out[f"{name}_full_length_raw"] = one_nn(k[full_k], kl[full_k], q[full_q], ql[full_q])["accuracy"]
        length = Ak.sum(1)
        design = np.c_[length - length.mean(), np.ones_like(length)]
        X = k - k.mean(0)
        coef, *_ = np.linalg.lstsq(design, X, rcond=None)
        out[f"{name}_len_R2"] = 1 - ((X - design @ coef) ** 2).sum() / (X ** 2).sum()
        tokens = Hk[layer][Ak > 0]
        centre = tokens.mean(0)
        by_position = np.broadcast_to(mu, Hk[layer].shape)[Ak > 0]
        out[f"{name}_pos_var_frac"] = ((by_position - centre) ** 2).sum() / ((tokens - centre) ** 2).sum()
    return {key: round(float(v), 3) for key, v in out.items()}


def main() -> None:
    ap = study_parser(__doc__, run_options=False)
    ap.add_argument("encoders", nargs="+", help="pretrained directories or random:mae|mlm|gpt|causal")
    args = ap.parse_args()
    ds = load_barcodes(args.data)
    # keys and queries with a genus only: the per-position means and len_R2 are taken over them
    train = ds.split("train").dropna(subset=["genus"]).reset_index(drop=True)
    queries = ds.split("test_unseen").dropna(subset=["genus"]).reset_index(drop=True)
    for source in args.encoders:
        print(json.dumps({"encoder": source, **diagnose(load(source), train, queries)}), flush=True)


if __name__ == "__main__":
    main()
