"""Budget-vs-accuracy curve: pretrain each objective for increasing step counts and score the
encoder with the package's ``open-world`` task (1-NN genus, keys = train, queries = test_unseen,
cosine; ``accuracy`` and ``accuracy_centred``, after subtracting the keys' mean), next to the
random-init and k-mer controls.

    python -m experiments.budget_curve --data sim --objectives mae,mlm,gpt --steps 100,300,600

Each budget is its own ``benchbarcode.pretrain.pretrain`` run (its own one-cycle schedule) of the
preset ``--preset`` with the ``--set`` overrides; the random control is
the ``random`` encoder of the same architecture and seed (the weights that run starts from).
Transformers are also scored under the ``mean-layers`` and ``mean-first`` poolings.

Row columns: ``ow_raw`` / ``ow_centred`` are the open-world task's ``accuracy`` /
``accuracy_centred`` (4 decimals), ``ow_raw[POOLING]`` ... the same under another pooling. Before
the move to experiments/ the script computed the same 1-NN with its own numpy code on the rows
with a genus; the task drops rows without a genus itself and computes in float32 torch on
``--device`` (the same protocol; float rounding can change a near-tie).

Prints one markdown table; ``--json FILE`` also writes the rows.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time

from benchbarcode.data import load_barcodes
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import PretrainJob, pretrain
from benchbarcode.runtime import setup
from benchbarcode.spec import EncoderSpec, resolve_encoder
from experiments.common import (
    open_world_scores,
    parse_overrides,
    poolings_of,
    random_control,
    study_parser,
)


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--objectives", default="mae,mlm,gpt")
    ap.add_argument("--steps", default="100,300")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--set", default="", help="preset overrides, e.g. lr=5e-4,k=6")
    ap.add_argument("--no-controls", dest="controls", action="store_false",
                    help="skip the k-mer and random-init controls")
    args = ap.parse_args()
    ds = load_barcodes(args.data)
    corpus = ds.pretraining_sequences()
    overrides = parse_overrides(args.set)
    device = setup(args.device).device
    score = functools.partial(open_world_scores, ds=ds, seed=args.seed, device=device)
    rows = []
    if args.controls:
        kmer = functools.partial(resolve_encoder(EncoderSpec("kmer", options={"k": 6})).create, device)
        rows.append({"encoder": "kmer (k=6)", "steps": 0, **score(kmer)})
    for name in args.objectives.split(","):
        entry = resolve_encoder(EncoderSpec(name, preset=args.preset))
        base = get_preset(entry.meta.objective, args.preset).with_overrides(**overrides)
        poolings = poolings_of(base.pooling)
        if args.controls:
            rnd = functools.partial(random_control, name, args.preset, overrides, args.seed, device)
            rows.append({"encoder": f"random ({name} arch)", "steps": 0, **score(rnd, poolings=poolings)})
        for steps in [int(s) for s in args.steps.split(",") if s]:
            preset = base.with_overrides(steps=steps)
            with tempfile.TemporaryDirectory() as d:
                t = time.perf_counter()
                meta = pretrain(PretrainJob(objective=entry.meta.objective, preset=preset, sequences=corpus,
                                            out=d, seed=args.seed, preset_name=args.preset, encoder_name=name,
                                            data_identity=ds.identity(), device=device, progress=False))
                secs = time.perf_counter() - t
                trained = functools.partial(entry.create, device, checkpoint=d)
                rows.append({"encoder": name, "set": args.set, "steps": steps, "train_s": round(secs, 1),
                             "pflops": round(meta["budget"]["flops"] / 1e15, 4),
                             "final_loss": meta["loss_history"][-1][1], **score(trained, poolings=poolings)})
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
