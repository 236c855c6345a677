"""Score encoders at intermediate steps of one long pretraining schedule.

``budget_curve.py`` gives every budget its own one-cycle schedule; this script follows a single
long run instead and scores it at ``--eval-at`` steps (open-world 1-NN genus accuracy, raw and
centred, mean-pooled last layer and embedding layer), next to the random-init control of the same
architecture and seed. The run is interrupted at each evaluation step (the checkpoint that Ctrl-C
writes), scored from that checkpoint, and resumed exactly, so the curve is the one an
uninterrupted run follows.

    python scripts/long_schedule.py --data sim --objectives mae,mlm,gpt --steps 20000 \\
        --eval-at 1000,2000,4000,8000,12000,16000 --set lr=5e-4,warmup_steps=200 --json rows.json

``--set`` takes preset overrides as in ``budget_curve.py`` (e.g. ``loss_on="all"``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget_curve import parse_overrides, random_like, score  # noqa: E402

from benchbarcode.data import load_barcodes  # noqa: E402
from benchbarcode.models.presets import get_preset  # noqa: E402
from benchbarcode.pretrain import CHECKPOINT_DIR, build_model, pretrain  # noqa: E402
from benchbarcode.registry import get_encoder  # noqa: E402


class _Pause(KeyboardInterrupt):
    """Raised from ``on_step`` to stop the run at an evaluation step (pretrain then checkpoints)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="sim")
    ap.add_argument("--objectives", default="mae,mlm,gpt")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--set", default="", help='preset overrides, e.g. lr=5e-4,loss_on="all"')
    ap.add_argument("--steps", type=int, default=8000, help="length of the one schedule")
    ap.add_argument("--eval-at", default="1000,2000,4000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    ds = load_barcodes(args.data)
    corpus = ds.pretraining_sequences()
    train = ds.split("train").dropna(subset=["genus"])
    queries = ds.split("test_unseen").dropna(subset=["genus"])
    eval_at = sorted({int(s) for s in args.eval_at.split(",") if s} | {args.steps})
    rows = []

    def keep(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))

    for name in args.objectives.split(","):
        entry = get_encoder(name)
        preset = get_preset(entry.objective, args.preset).with_overrides(steps=args.steps,
                                                                        **parse_overrides(args.set))
        control = random_like(entry.objective, preset, args.seed, device)
        keep({"encoder": f"random ({name} arch)", "set": args.set, "step": 0, **score(control, train, queries)})
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            for target in eval_at:
                def pause(step, _loss, target=target):
                    if step == target and target < args.steps:
                        raise _Pause
                try:
                    meta = pretrain(entry.objective, preset, corpus, out, seed=args.seed,
                                    preset_name=args.preset, encoder_name=name, device=device,
                                    progress=False, resume=target != eval_at[0], on_step=pause,
                                    checkpoint_every=args.steps)
                    encoder = entry.create(checkpoint=out, device=device)
                    loss = meta["loss_history"][-1][1]
                except _Pause:
                    full = build_model(entry.objective, preset)
                    full.load_state_dict(load_file(str(Path(out) / CHECKPOINT_DIR / "model.safetensors")))
                    encoder = random_like(entry.objective, preset, args.seed, device)
                    encoder.model = full.encoder.to(device).eval()
                    state = json.loads((Path(out) / CHECKPOINT_DIR / "state.json").read_text())
                    loss = state["loss_history"][-1][1] if state["loss_history"] else None
                keep({"encoder": name, "set": args.set, "step": target, "loss": loss,
                      "elapsed_s": round(time.perf_counter() - started, 1),
                      **score(encoder, train, queries)})


if __name__ == "__main__":
    main()
