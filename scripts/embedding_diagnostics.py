"""Why does a pretrained encoder's mean-pooled embedding lose genus information?

For one encoder (a directory written by ``benchbarcode pretrain``, or ``random:OBJECTIVE`` for the
random-init control of the ``tiny`` preset) this scores open-world 1-NN genus accuracy (keys =
train, queries = test_unseen, cosine) from the embedding layer and from the last layer, pooled in
several ways, and measures two nuisances of mean pooling:

* ``len_R2``: share of the variance of the pooled keys explained by a linear function of the
  sequence length (in tokens);
* ``pos_var_frac``: share of the variance of the token states explained by the position alone
  (the per-position mean state);

and three repairs: centring (subtract the keys' mean), position-centring (subtract the per-position
mean state before pooling) and restricting keys and queries to full-length sequences.

    python scripts/embedding_diagnostics.py /tmp/mae1000 random:mae --data sim
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_curve import one_nn_accuracy, random_like  # noqa: E402

from benchbarcode.data import load_barcodes  # noqa: E402
from benchbarcode.encoders.inhouse import TransformerEncoder  # noqa: E402
from benchbarcode.models.presets import get_preset  # noqa: E402


def load(source: str):
    if source.startswith("random:"):
        objective = source.split(":", 1)[1]
        return random_like(objective, get_preset(objective, "tiny"), 0, "cpu")
    return TransformerEncoder.from_pretrained(source, name="diagnosed", family="in-house transformer")


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


def diagnose(encoder, train, queries) -> dict:
    kl, ql = train["genus"].astype(str).to_numpy(), queries["genus"].astype(str).to_numpy()
    Hk, Ak = token_states(encoder, train["sequence"])
    Hq, Aq = token_states(encoder, queries["sequence"])
    full_k, full_q = Ak.sum(1) == Ak.sum(1).max(), Aq.sum(1) == Ak.sum(1).max()
    out = {}
    for layer, name in ((0, "embedding"), (1, "last")):
        k, q = pooled(Hk[layer], Ak), pooled(Hq[layer], Aq)
        mu = (Hk[layer] * Ak[..., None]).sum(0) / np.maximum(Ak.sum(0), 1)[:, None]
        out[f"{name}_raw"] = one_nn_accuracy(k, kl, q, ql, False)
        out[f"{name}_centred"] = one_nn_accuracy(k, kl, q, ql, True)
        out[f"{name}_position_centred"] = one_nn_accuracy(pooled(Hk[layer], Ak, mu), kl,
                                                          pooled(Hq[layer], Aq, mu), ql, False)
        out[f"{name}_full_length_raw"] = one_nn_accuracy(k[full_k], kl[full_k], q[full_q], ql[full_q], False)
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("encoders", nargs="+", help="pretrained directories or random:mae|mlm|causal")
    ap.add_argument("--data", default="sim")
    args = ap.parse_args()
    ds = load_barcodes(args.data)
    train = ds.split("train").dropna(subset=["genus"])
    queries = ds.split("test_unseen").dropna(subset=["genus"])
    for source in args.encoders:
        print(json.dumps({"encoder": source, **diagnose(load(source), train, queries)}), flush=True)


if __name__ == "__main__":
    main()
