"""What does the graph-capturable pretraining step buy? Tokens/s of the step, eager against
``torch.compile``, per objective and preset, and on a GPU the fraction of the wall time its kernels
keep the device busy (torch.profiler).

Each variant takes ``--warmup`` steps (the compiled one compiles in the first; that step's time is
``compile_seconds``), then ``--steps`` timed steps of :func:`benchbarcode.pretrain.training_step`
on batches drawn by :class:`benchbarcode.pretrain_batches.DeviceCorpus`, the device awaited once
at the end (the step reads nothing back, so the host runs ahead), then ``--profile-steps`` more
under ``torch.profiler``: ``busy`` = the summed device time of its kernels / the wall time of
those steps (None on CPU). Rows go to ``--json``.

    python -m experiments.step_throughput --presets paper,tiny --objectives mae,mlm,gpt \\
        --dtype bfloat16 --steps 50 --json rows.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from benchbarcode.data import load_barcodes
from benchbarcode.models import build_model
from benchbarcode.models.presets import get_preset
from benchbarcode.pretrain import build_optimizer, training_step
from benchbarcode.pretrain_batches import DeviceCorpus
from benchbarcode.runtime import compile_step, setup
from benchbarcode.tokenizers import KmerTokenizer
from experiments.common import inhouse_name, study_parser


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def measure(objective: str, preset_name: str, compiled: bool, sequences: list[str], device: str, dtype: str,
            steps: int, warmup: int, profile_steps: int, batch_size: int | None) -> dict:
    preset = get_preset(objective, preset_name)
    if batch_size:
        preset = preset.with_overrides(batch_size=batch_size)
    torch.manual_seed(0)
    model = build_model(objective, preset).to(device).train()
    forward = compile_step(model, device) if compiled else model
    optimizer = build_optimizer(model, preset, device)
    corpus = DeviceCorpus(sequences, KmerTokenizer(preset.k, max_len=preset.max_len), preset.batch_size, seed=0,
                          device=device, mask_ratio=preset.mask_ratio if model.masks else None)
    step = 0

    def one() -> dict:
        nonlocal step
        torch.manual_seed(step)
        out = training_step(forward, optimizer, corpus.batch(step), dtype, preset.grad_clip)
        step += 1
        return out

    started = time.perf_counter()
    one()  # the compiled variant compiles here
    _sync(device)
    first_seconds = time.perf_counter() - started
    for _ in range(warmup - 1):
        one()
    _sync(device)
    warm_seconds = time.perf_counter() - started
    tokens = torch.zeros((), dtype=torch.float64, device=device)
    started = time.perf_counter()
    for _ in range(steps):
        out = one()
        tokens += out["n_predicted"]  # stays on the device
    _sync(device)
    seconds = time.perf_counter() - started
    input_tokens = steps * preset.batch_size * corpus.n_tokens
    busy = None
    if profile_steps and device.startswith("cuda"):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(profile_steps):
                one()
            _sync(device)
            wall = time.perf_counter() - t0
        kernel_us = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
        busy = round(kernel_us / 1e6 / wall, 3)
    return {"objective": objective, "preset": preset_name, "compiled": compiled, "device": device, "dtype": dtype,
            "batch_size": preset.batch_size, "n_tokens": corpus.n_tokens, "steps": steps,
            "seconds_per_step": round(seconds / steps, 5), "steps_per_s": round(steps / seconds, 2),
            "input_tokens_per_s": round(input_tokens / seconds), "predicted_tokens": float(tokens),
            "warmup_steps": warmup, "warmup_seconds": round(warm_seconds, 2),
            "first_step_seconds": round(first_seconds, 2), "compile_seconds": round(first_seconds, 2) if compiled else None,
            "busy": busy,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def main() -> None:
    ap = study_parser(__doc__, seed_help="unused: weights and batches are seeded 0")
    ap.add_argument("--objectives", default="mae,mlm,gpt")
    ap.add_argument("--presets", default="tiny")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--modes", default="eager,compiled")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
    ap.add_argument("--profile-steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, help="override the presets' batch size")
    args = ap.parse_args()
    device = setup(args.device).device
    sequences = load_barcodes(args.data).pretraining_sequences()
    rows = []
    for preset_name in args.presets.split(","):
        for name in args.objectives.split(","):
            from benchbarcode.registry import get_encoder

            objective = get_encoder(inhouse_name(name)).meta.objective
            for mode in args.modes.split(","):
                row = {"encoder": name, **measure(objective, preset_name, mode == "compiled", sequences, device,
                                                  args.dtype, args.steps, args.warmup, args.profile_steps,
                                                  args.batch_size)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
