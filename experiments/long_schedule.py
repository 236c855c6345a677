"""Score encoders at intermediate steps of one long pretraining schedule.

``experiments.budget_curve`` gives every budget its own one-cycle schedule; this script follows a
single long run instead and scores it at ``--eval-at`` steps with the package's ``open-world``
task (``ow_raw`` / ``ow_centred``: ``accuracy`` / ``accuracy_centred``; mean-pooled last layer,
mean of layers ``[mean-layers]`` and embedding layer ``[mean-first]``), next to the random-init
control of the same architecture and seed (the ``random`` encoder). The run is interrupted at
each evaluation step (the resumable checkpoint that Ctrl-C writes), scored from that checkpoint
(:func:`experiments.common.load_run`), and resumed exactly, so the curve is the one an
uninterrupted run follows.

    python -m experiments.long_schedule --data sim --objectives mae,mlm,gpt --steps 20000 \\
        --eval-at 1000,2000,4000,8000,12000,16000 --set lr=5e-4,warmup_steps=200 --json rows.json

``--set`` takes preset overrides as in ``experiments.budget_curve`` (e.g. ``loss_on="all"``).
The scores are the open-world task's, which before the move to experiments/ the script computed
with its own numpy 1-NN (the same protocol; float rounding can change a near-tie).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
import time
from pathlib import Path

from benchbarcode.data import load_barcodes
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import PretrainJob, pretrain
from benchbarcode.runtime import setup
from benchbarcode.spec import EncoderSpec, resolve_encoder
from experiments.common import (
    load_run,
    open_world_scores,
    parse_overrides,
    poolings_of,
    random_control,
    run_info,
    study_parser,
)


class _Pause(KeyboardInterrupt):
    """Raised from ``on_step`` to stop the run at an evaluation step (pretrain then checkpoints)."""


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--objectives", default="mae,mlm,gpt")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--set", default="", help='preset overrides, e.g. lr=5e-4,loss_on="all"')
    ap.add_argument("--steps", type=int, default=8000, help="length of the one schedule")
    ap.add_argument("--eval-at", default="1000,2000,4000")
    ap.add_argument("--compile", action="store_true", help="pretrain with the step under torch.compile")
    args = ap.parse_args()
    device = setup(args.device).device
    ds = load_barcodes(args.data)
    corpus = ds.pretraining_sequences()
    overrides = parse_overrides(args.set)
    score = functools.partial(open_world_scores, ds=ds, seed=args.seed, device=device)
    eval_at = sorted({int(s) for s in args.eval_at.split(",") if s} | {args.steps})
    rows = []

    def keep(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))

    for name in args.objectives.split(","):
        entry = resolve_encoder(EncoderSpec(name, preset=args.preset))
        preset = get_preset(entry.meta.objective, args.preset).with_overrides(steps=args.steps, **overrides)
        poolings = poolings_of(preset.pooling)
        control = functools.partial(random_control, name, args.preset, overrides, args.seed, device)
        keep({"encoder": f"random ({name} arch)", "set": args.set, "step": 0, **score(control, poolings=poolings)})
        with tempfile.TemporaryDirectory() as out:
            job = PretrainJob(objective=entry.meta.objective, preset=preset, sequences=corpus, out=out,
                              seed=args.seed, preset_name=args.preset, encoder_name=name,
                              data_identity=ds.identity(), device=device, progress=False, compile=args.compile,
                              checkpoint_every=args.steps)
            started = time.perf_counter()
            for target in eval_at:
                def pause(step, target=target):
                    if step == target and target < args.steps:
                        raise _Pause
                try:
                    pretrain(dataclasses.replace(job, resume=target != eval_at[0]), on_step=pause)
                except _Pause:
                    pass  # stopped at `target`: pretrain wrote the resumable checkpoint
                keep({"encoder": name, "set": args.set, "step": target, "loss": run_info(out)["loss"],
                      "elapsed_s": round(time.perf_counter() - started, 1),
                      **score(functools.partial(load_run, out, device), poolings=poolings)})


if __name__ == "__main__":
    main()
