"""``benchbarcode profile``: an encoder's cost (throughput, peak memory, FLOPs, utilisation)."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from benchbarcode.cli.common import command_line, encoder_line, encoder_options, positive, preset_names


def batch_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: ``1,16,64`` -> (1, 16, 64), each >= 1."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, not {text!r}")
    return sizes


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="measure an encoder's cost: throughput, peak memory, FLOPs, utilisation",
                       description="Time an encoder on synthetic barcodes: embedding (--mode infer) or one "
                                   "pretraining step of its objective (--mode train), per batch size: median and "
                                   "quartiles of sequences/s, nucleotides/s, tokens/s; peak memory (CUDA: "
                                   "max_memory_allocated; CPU: a child process's peak resident memory above its "
                                   "baseline); FLOPs per sequence (counted by torch, derived from the config); "
                                   "utilisation against a dense matmul measured in the same run. The result "
                                   "file goes to DIR/<encoder>/<profile-id>/profile.json and the leaderboard "
                                   "shows it beside the encoder's accuracy.")
    p.add_argument("--encoder", required=True, metavar="NAME", help="a registered encoder or hf:MODEL")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="weights to load (the cost does not depend on them: without it an in-house encoder "
                        "is its --preset's architecture, randomly initialised)")
    p.add_argument("--preset", default="tiny", metavar="P", help=f"architecture preset (default tiny; {preset_names()})")
    p.add_argument("--encoder-option", action="append", metavar="KEY=VALUE", help="as for run; repeatable")
    p.add_argument("--mode", choices=["infer", "train"], default="infer",
                   help="infer: embed (default); train: one pretraining step (forward, backward, AdamW)")
    p.add_argument("--batch-sizes", type=batch_sizes, default=(1, 16, 64, 256), metavar="B,B",
                   help="batch sizes to time (default 1,16,64,256)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="compute dtype (autocast for in-house encoders; default float32)")
    p.add_argument("--length", type=positive, default=658, metavar="NT",
                   help="nucleotides per synthetic barcode (default 658, the COI-5P barcode)")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="timed calls per batch size, at least (default 5)")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S",
                   help="repeat until S seconds are timed per batch size (default 1)")
    p.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed calls first (default 2)")
    p.add_argument("--no-memory", action="store_true", help="CPU: skip the peak-memory child process")
    p.add_argument("--compile", action="store_true",
                   help="--mode train: the step under torch.compile (the first call per batch size compiles; "
                        "its time is reported apart as compile_seconds)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sequences and weights (default 0)")
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="write the profile result here (default results/; '' writes nothing)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress or table; only where the result went")
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from benchbarcode.profile import ProfileOptions, profile_encoder, write_profile
    from benchbarcode.spec import EncoderSpec

    spec = EncoderSpec(name=args.encoder, checkpoint=args.checkpoint, options=encoder_options(args.encoder_option),
                       preset=args.preset, seed=args.seed, device=args.device)
    opts = ProfileOptions(encoder=spec, mode=args.mode, batch_sizes=args.batch_sizes, dtype=args.dtype,
                          length=args.length, warmup=args.warmup, repeats=args.repeats, min_seconds=args.min_seconds,
                          memory=not args.no_memory, compile=args.compile, results_dir=args.results_dir,
                          command=command_line())
    encoder = opts.validate()
    result = profile_encoder(opts, encoder, progress=not args.quiet and not args.json)
    path = write_profile(args.results_dir, result) if args.results_dir else None
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.quiet:
        if path:
            print(path)
    else:
        print_profile(result, path)
    return 0


def print_profile(result: dict, path) -> None:
    p = result["profile"]
    matmul = p.get("matmul")
    print(f"{encoder_line(result['encoder'])}; {p['mode']} on {result['device']} "
          f"({p['machine']}, {p['threads']} threads), {result['dtype']}, {p['length_nt']} nt "
          f"({p['tokens_per_sequence'] or '-'} tokens) per sequence")
    print(profile_table(result))
    if matmul:
        print(f"utilisation = achieved / dense {result['dtype']} matmul ({matmul['size']}x{matmul['size']}) "
              f"measured in this run: {si(matmul['flop_per_s'], 'FLOP/s')}")
    print(f"peak memory: {p['memory_method']}" + (f"; {p['memory_note']}" if p.get("memory_note") else ""))
    if p.get("compile"):
        print("torch.compile: the first call per batch size compiled the step, not timed above: " + ", ".join(
            f"batch {m['batch_size']} {m['compile_seconds']:.1f} s" for m in p["measurements"]))
    if path:
        print(f"result: {path}")


def si(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def profile_table(result: dict) -> str:
    """One row per batch size: median rate [quartiles], memory, FLOPs, utilisation."""
    rows = []
    for m in result["profile"]["measurements"]:
        def rate(name: str) -> str:
            if m.get(f"{name}_per_s") is None:
                return "-"
            return f"{si(m[f'{name}_per_s'])} [{si(m[f'{name}_per_s_q1'])}, {si(m[f'{name}_per_s_q3'])}]"

        ratio = m.get("flops_counted_vs_derived")
        rows.append([m["batch_size"], rate("sequences"), si(m["nucleotides_per_s"]), si(m.get("tokens_per_s")),
                     f"{m['seconds_median'] * 1e3:.3g}", m["repeats"],
                     "-" if m.get("peak_mb") is None else f"{m['peak_mb']:,.1f}",
                     si(m.get("flops_per_sequence"), "FLOP") + ("" if ratio is None else f" ({ratio:.3f})"),
                     si(m.get("flop_per_s"), "FLOP/s"),
                     "-" if m.get("utilisation") is None else f"{m['utilisation']:.2f}"])
    return tabulate(rows, headers=["batch", "seq/s median [q1, q3]", "nt/s", "tokens/s", "ms/call", "repeats",
                                   "peak MB", "FLOPs/seq (counted/derived)", "achieved", "utilisation"],
                    tablefmt="github", disable_numparse=True)
