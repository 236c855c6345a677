"""Score pretrained encoder directories next to their random-init controls, for choosing a budget.

Every directory written by ``benchbarcode pretrain`` (or, for a run cut short, its resumable
``checkpoint/``) is scored on the validation splits, which choose, and on the test splits, which
are only reported:

- open-world 1-NN genus accuracy (keys = train; queries = val_unseen / test_unseen), raw and centred;
- a closed-world linear probe (standardised features, full-batch AdamW softmax regression fitted on
  train) scored on val / test.

    python scripts/score_checkpoints.py RUN_DIR [RUN_DIR ...] --data sim --json rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_curve import one_nn_accuracy  # noqa: E402

from benchbarcode.data import load_barcodes  # noqa: E402
from benchbarcode.models.presets import Preset  # noqa: E402
from benchbarcode.pretrain import CHECKPOINT_DIR, build_model  # noqa: E402
from benchbarcode.registry import get_encoder  # noqa: E402

NAMES = {"mae": "mae", "mlm": "mlm", "causal": "gpt"}


def probe_accuracy(x_train, y_train, x_eval, y_eval, device, steps=300, wd=1e-4, seed=0) -> float:
    """Softmax regression on standardised features; accuracy on the eval rows of seen classes."""
    classes, y_idx = np.unique(y_train, return_inverse=True)
    index = {c: i for i, c in enumerate(classes)}
    seen = np.array([y in index for y in y_eval])
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mu) / sd, device=device)
    xe = torch.tensor((x_eval[seen] - mu) / sd, device=device)
    yt = torch.tensor(y_idx, device=device)
    torch.manual_seed(seed)
    lin = torch.nn.Linear(xt.shape[1], len(classes)).to(device)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-2, weight_decay=wd)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        pred = classes[lin(xe).argmax(1).cpu().numpy()]
    return float(np.mean(pred == np.asarray(y_eval)[seen]))


def load_run(directory: Path, device: str):
    """The encoder of a finished run, or of the resumable checkpoint of a run cut short."""
    meta_file = directory / "benchbarcode.json"
    if meta_file.is_file():
        info = json.loads(meta_file.read_text())
        enc = get_encoder(NAMES[info["objective"]]).create(checkpoint=str(directory), device=device)
        return enc, {"steps": info["budget"]["steps"], "complete": True, "recipe": info["recipe"],
                     "loss": info["loss_history"][-1][1]}
    ck = directory / CHECKPOINT_DIR
    state = json.loads((ck / "state.json").read_text())
    config = state["config"]
    full = build_model(config["objective"], Preset(**config["recipe"]))
    full.load_state_dict(load_file(str(ck / "model.safetensors")))
    enc = get_encoder("random").create(like=NAMES[config["objective"]], device=device)
    enc.model = full.encoder.to(device).eval()
    hist = state.get("loss_history") or [[0, None]]
    return enc, {"steps": state["step"], "complete": False, "recipe": config["recipe"], "loss": hist[-1][1]}


def evaluate(encoder, ds, device) -> dict:
    splits = {s: ds.split(s) for s in ("train", "val", "test", "val_unseen", "test_unseen")}
    emb = {s: encoder.embed(t["sequence"].tolist(), batch_size=512) for s, t in splits.items()}
    out = {}
    keys = splits["train"]["genus"].astype(str).to_numpy()
    for q in ("val_unseen", "test_unseen"):
        labels = splits[q]["genus"].astype(str).to_numpy()
        out[f"ow_{q}_raw"] = round(one_nn_accuracy(emb["train"], keys, emb[q], labels, False), 4)
        out[f"ow_{q}_centred"] = round(one_nn_accuracy(emb["train"], keys, emb[q], labels, True), 4)
    ys = splits["train"]["species"].astype(str).to_numpy()
    for q in ("val", "test"):
        out[f"cw_probe_{q}"] = round(probe_accuracy(emb["train"], ys, emb[q],
                                                    splits[q]["species"].astype(str).to_numpy(), device), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", default="sim")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--controls", default="mae,mlm,gpt", help="random --like these (seed 0)")
    ap.add_argument("--no-kmer", dest="kmer", action="store_false",
                    help="skip the k-mer profile reference (its 4,096-d probe is slow on a CPU)")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    ds = load_barcodes(args.data)
    rows = []

    def keep(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))

    if args.kmer:
        keep({"run": "kmer", **evaluate(get_encoder("kmer").create(k=6), ds, device)})
    for like in filter(None, args.controls.split(",")):
        keep({"run": f"random --like {like}", **evaluate(get_encoder("random").create(like=like, device=device), ds, device)})
    for run in args.runs:
        directory = Path(run)
        try:
            encoder, info = load_run(directory, device)
        except (FileNotFoundError, KeyError) as exc:
            keep({"run": directory.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        keep({"run": directory.name, **info, **evaluate(encoder, ds, device)})


if __name__ == "__main__":
    main()
