"""Does a change to the pretraining step keep the loss curve? Compares the ``loss_history`` of
pretraining directories run with the same settings before and after (``benchbarcode pretrain
--out DIR``, one ``BEFORE:AFTER`` pair per objective): the loss at a few steps, the mean of the
last tenth, and the largest gap between the two curves.

    python -m experiments.compare_loss_curves old/mae:new/mae old/mlm:new/mlm --json rows.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchbarcode.checkpoints import META_FILE


def curve(directory: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    meta = json.loads((directory / META_FILE).read_text())
    history = np.array(meta["loss_history"], dtype=float)
    return meta, history[:, 0], history[:, 1]


def compare(before: Path, after: Path) -> dict:
    meta_b, steps_b, loss_b = curve(before)
    meta_a, steps_a, loss_a = curve(after)
    if not np.array_equal(steps_b, steps_a):
        raise SystemExit(f"{before} and {after} log different steps")
    tail = max(1, len(steps_a) // 10)
    marks = sorted({int(steps_a[i]) for i in (0, len(steps_a) // 4, len(steps_a) // 2, -1)})
    at = {str(s): [float(loss_b[steps_b == s][0]), float(loss_a[steps_a == s][0])] for s in marks}
    gap = np.abs(loss_a - loss_b)
    return {"encoder": meta_a["encoder"], "preset": meta_a["preset"], "steps": int(steps_a[-1]),
            "loss_at_step_before_after": at,
            "last_tenth_mean_before": round(float(loss_b[-tail:].mean()), 4),
            "last_tenth_mean_after": round(float(loss_a[-tail:].mean()), 4),
            "max_abs_gap": round(float(gap.max()), 4), "mean_abs_gap": round(float(gap.mean()), 4),
            "train_seconds_before": meta_b["budget"]["train_seconds"],
            "train_seconds_after": meta_a["budget"]["train_seconds"],
            "flops_before": meta_b["budget"]["flops"], "flops_after": meta_a["budget"]["flops"],
            "encoder_tokens_before": meta_b["budget"]["encoder_tokens"],
            "encoder_tokens_after": meta_a["budget"]["encoder_tokens"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", metavar="BEFORE:AFTER")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    rows = [compare(*(Path(p) for p in pair.split(":", 1))) for pair in args.pairs]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
