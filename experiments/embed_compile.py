"""Would ``torch.compile`` speed up embedding? The ``paper`` MAE encoder's forward (mean-pooled,
bfloat16 autocast on CPU) on a batch of 64 synthetic 658-nt barcodes, eager against compiled, in
alternating rounds; utilisation = torch's counted FLOPs / time / the dense bfloat16 matmul rate
measured in the same run.

    python -m experiments.embed_compile --json rows.json
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from benchbarcode.models import build_model, encode
from benchbarcode.models.presets import get_preset
from benchbarcode.profile import counted_flops, matmul_rate, synthetic_barcodes
from benchbarcode.runtime import autocast
from benchbarcode.tokenizers import KmerTokenizer
from experiments.common import study_parser


def main() -> None:
    ap = study_parser(__doc__, run_options=False)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    torch.manual_seed(0)
    preset = get_preset("mae", args.preset)
    encoder = build_model("mae", preset).encoder.eval()
    ids, attn = KmerTokenizer(preset.k, max_len=preset.max_len)(synthetic_barcodes(args.batch, 658, 0))
    ids, attn = torch.from_numpy(ids), torch.from_numpy(attn)
    compiled = torch.compile(encoder, dynamic=False)

    def run(model):
        with torch.inference_mode(), autocast("cpu", "bfloat16"):
            return encode(model, ids, attn)

    started = time.perf_counter()
    run(compiled)
    row = {"preset": args.preset, "batch": args.batch, "threads": torch.get_num_threads(),
           "compile_seconds": round(time.perf_counter() - started, 1)}
    run(encoder)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for r in range(args.rounds):
        pair = [("eager", encoder), ("compiled", compiled)]
        for name, model in pair if r % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            run(model)
            times[name].append(time.perf_counter() - started)
    flops, rate = counted_flops(lambda: run(encoder)), matmul_rate("cpu", "bfloat16")["flop_per_s"]
    for name, values in times.items():
        median = statistics.median(values)
        row[name] = {"seconds_median": round(median, 4), "seq_per_s": round(args.batch / median, 1),
                     "utilisation": round(flops / median / rate, 3)}
    row["compiled_speedup"] = round(row["eager"]["seconds_median"] / row["compiled"]["seconds_median"], 3)
    print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": [row]}, indent=1))


if __name__ == "__main__":
    main()
