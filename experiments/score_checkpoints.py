"""Score pretrained encoder directories next to their random-init controls, for choosing a budget.

Every directory written by ``benchbarcode pretrain`` (or, for a run cut short, its resumable
``checkpoint/``) is scored with the package's tasks on the validation splits, which choose, and on
the test splits, which are only reported:

- ``open-world`` (1-NN genus, keys = train, cosine) with queries val_unseen and test_unseen:
  ``ow_{val_unseen,test_unseen}_raw`` / ``..._centred`` are the task's ``accuracy`` /
  ``accuracy_centred`` (val_unseen is passed in the task's query slot);
- ``closed-world`` (linear probe on species, fitted on train, selected on val, reported on test,
  three seeds): ``cw_val`` is the selected models' val accuracy and ``cw_test`` the task's test
  ``accuracy`` (both means over the seeds).

    python -m experiments.score_checkpoints RUN_DIR [RUN_DIR ...] --data sim --json rows.json

Changed with the move to experiments/: the probe columns were ``cw_probe_val`` / ``cw_probe_test``,
a quick probe of this script's own (full-batch AdamW softmax regression, 300 steps, weight decay
1e-4, scored on val and on test separately, one seed). They are now the ``closed-world`` task's
protocol (minibatch AdamW over a weight-decay grid, early stopping and selection on val, mean over
seeds ``--seed``, +1, +2), so they do not reproduce the probe columns of
experiments/data/checkpoint_search_h100.json. The open-world columns are the same protocol as
before (computed by the task now; float rounding can change a near-tie).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchbarcode.data import load_barcodes
from benchbarcode.errors import UserError
from benchbarcode.registry import get_task
from benchbarcode.runtime import setup
from benchbarcode.spec import EncoderSpec, resolve_encoder
from experiments.common import (
    embed_splits,
    load_run,
    open_world,
    random_control,
    run_info,
    study_parser,
)


def evaluate(encoder, ds, seed: int, device: str) -> dict:
    closed_world = get_task("closed-world")
    splits = ("train", "val", "test", "val_unseen", "test_unseen")
    embeddings, labels = embed_splits(encoder, ds, splits, batch_size=512)
    out = {}
    for q in ("val_unseen", "test_unseen"):
        scores = open_world(embeddings, labels, queries=q, seed=seed, device=device)
        out[f"ow_{q}_raw"] = round(scores["accuracy"], 4)
        out[f"ow_{q}_centred"] = round(scores["accuracy_centred"], 4)
    probe = closed_world.evaluate({s: embeddings[s] for s in closed_world.meta.splits},
                                  {s: labels[s] for s in closed_world.meta.splits}, seed=seed, device=device)
    out["cw_val"] = round(float(np.mean(probe.extras["selected"]["val_accuracy"])), 4)
    out["cw_test"] = round(probe.scores["accuracy"], 4)
    return out


def main() -> None:
    ap = study_parser(__doc__, seed_help="the tasks' seed (the probe runs seed, +1, +2)")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--controls", default="mae,mlm,gpt", help="random --like these (seed 0, tiny)")
    ap.add_argument("--no-kmer", dest="kmer", action="store_false",
                    help="skip the k-mer profile reference (its 4,096-d probe is slow on a CPU)")
    args = ap.parse_args()
    device = setup(args.device).device
    ds = load_barcodes(args.data)
    rows = []

    def keep(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))

    if args.kmer:
        keep({"run": "kmer", **evaluate(resolve_encoder(EncoderSpec("kmer", options={"k": 6})).create(device), ds, args.seed, device)})
    for like in filter(None, args.controls.split(",")):
        control = random_control(like, "tiny", {}, 0, device)
        keep({"run": f"random --like {like}", **evaluate(control, ds, args.seed, device)})
    for run in args.runs:
        directory = Path(run)
        try:
            info = run_info(directory)
            encoder = load_run(directory, device)
        except (FileNotFoundError, KeyError, UserError) as exc:
            keep({"run": directory.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        keep({"run": directory.name, **info, **evaluate(encoder, ds, args.seed, device)})


if __name__ == "__main__":
    main()
