"""Budget-vs-accuracy curve: pretrain each objective for increasing step counts and score the
encoder by open-world 1-NN genus accuracy (keys = train, queries = test_unseen, cosine; raw and
after subtracting the keys' mean), next to the random-init and k-mer controls.

    python scripts/budget_curve.py --data sim --objectives mae,mlm,gpt --steps 100,300,600

Prints one markdown table; ``--json FILE`` also writes the rows. Quick check only: the full
protocols live in benchbarcode.tasks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tempfile
import time

import numpy as np
import torch

from benchbarcode.data import load_barcodes
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import build_model, pretrain
from benchbarcode.registry import get_encoder


def one_nn_accuracy(keys, key_labels, queries, query_labels, centre: bool) -> float:
    if centre:
        mu = keys.mean(0, keepdims=True)
        keys, queries = keys - mu, queries - mu
    k = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    nearest = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), 2048):
        nearest[s:s + 2048] = np.argmax(q[s:s + 2048] @ k.T, axis=1)
    return float(np.mean(key_labels[nearest] == query_labels))


def random_like(objective, preset, seed, device):
    """The random-init control with exactly the architecture of ``preset``."""
    from benchbarcode.encoders.inhouse import TransformerEncoder
    from benchbarcode.registry import EncoderMeta
    from benchbarcode.tokenizers import KmerTokenizer

    torch.manual_seed(seed)
    model = build_model(objective, preset).encoder
    meta = EncoderMeta(name="random", family="baseline", objective="random-init", tokenizer="k-mer",
                       k=preset.k, layers=preset.layers, heads=preset.heads, hidden_size=preset.hidden,
                       parameters=0, embedding_dim=preset.hidden, max_length=preset.max_len,
                       pooling=preset.pooling)
    return TransformerEncoder(model, KmerTokenizer(preset.k, max_len=preset.max_len), meta, device)


POOLINGS = ("mean", "mean-layers", "mean-first")


def parse_overrides(text: str) -> dict:
    """``"lr=5e-4,loss_on=\"all\",decoder={...}"`` -> preset overrides (values are JSON)."""
    overrides = {}
    for item in filter(None, re.split(r",(?![^{]*\})", text)):  # commas outside {...}
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    return overrides


def score(encoder, train, test_unseen) -> dict:
    """Raw and centred 1-NN genus accuracy; transformers also under the other poolings."""
    kl, ql = train["genus"].astype(str).to_numpy(), test_unseen["genus"].astype(str).to_numpy()
    out = {}
    poolings = POOLINGS if hasattr(encoder, "model") and encoder.meta.pooling == "mean" else (None,)
    for pooling in poolings:
        if pooling is not None:
            encoder.meta = dataclasses.replace(encoder.meta, pooling=pooling)
        keys = encoder.embed(train["sequence"].tolist(), batch_size=256)
        queries = encoder.embed(test_unseen["sequence"].tolist(), batch_size=256)
        tag = "" if pooling in (None, "mean") else f"[{pooling}]"
        out[f"ow_raw{tag}"] = round(one_nn_accuracy(keys, kl, queries, ql, False), 4)
        out[f"ow_centred{tag}"] = round(one_nn_accuracy(keys, kl, queries, ql, True), 4)
    if poolings[0] is not None:
        encoder.meta = dataclasses.replace(encoder.meta, pooling="mean")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="sim")
    ap.add_argument("--objectives", default="mae,mlm,gpt")
    ap.add_argument("--steps", default="100,300")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--set", default="", help="preset overrides, e.g. lr=5e-4,k=6")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    ap.add_argument("--no-controls", dest="controls", action="store_false",
                    help="skip the k-mer and random-init controls")
    args = ap.parse_args()
    ds = load_barcodes(args.data)
    corpus = ds.pretraining_sequences()
    train = ds.split("train").dropna(subset=["genus"])
    test_unseen = ds.split("test_unseen").dropna(subset=["genus"])
    overrides = parse_overrides(args.set)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    if args.controls:
        rows.append({"encoder": "kmer (k=6)", "steps": 0, **score(get_encoder("kmer").create(k=6), train, test_unseen)})
    for name in args.objectives.split(","):
        entry = get_encoder(name)
        base = get_preset(entry.objective, args.preset).with_overrides(**overrides)
        if args.controls:
            rnd = random_like(entry.objective, base, args.seed, device)
            rows.append({"encoder": f"random ({name} arch)", "steps": 0, **score(rnd, train, test_unseen)})
        for steps in [int(s) for s in args.steps.split(",") if s]:
            preset = base.with_overrides(steps=steps)
            with tempfile.TemporaryDirectory() as d:
                t = time.perf_counter()
                meta = pretrain(entry.objective, preset, corpus, d, seed=args.seed, preset_name=args.preset,
                                encoder_name=name, device=device, progress=False)
                secs = time.perf_counter() - t
                enc = entry.create(checkpoint=d, device=device)
                rows.append({"encoder": name, "set": args.set, "steps": steps, "train_s": round(secs, 1),
                             "pflops": round(meta["budget"]["flops"] / 1e15, 4),
                             "final_loss": meta["loss_history"][-1][1], **score(enc, train, test_unseen)})
            print(rows[-1], flush=True)
            if args.json:  # keep what is done, even if the run is cut short
                with open(args.json, "w") as fh:
                    json.dump({"args": vars(args), "rows": rows}, fh, indent=1)
    from tabulate import tabulate

    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
