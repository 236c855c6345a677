"""Command-line interface. The only module that parses arguments or prints; it calls pipelines."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from tabulate import tabulate

from benchbarcode import __version__
from benchbarcode.errors import UserError
from benchbarcode.runtime import is_main_process


CACHE_HELP = ("the cache lives in $BENCHBARCODE_CACHE, else $XDG_CACHE_HOME/benchbarcode, else "
              "~/.cache/benchbarcode (see: benchbarcode cache info)")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``benchbarcode run: error: ... (see: benchbarcode run --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="sim", metavar="SOURCE",
                   help="sim (default), sim:SIZE, sim:SIZE:SEED, sim-large[:SIZE[:SEED]] (BIOSCAN-5M's "
                        "shape and split protocol, 5,150,850 records by default, generated once into the "
                        "cache), bioscan5m:DIR, or a file (BIOSCAN-5M CSV/TSV, BOLD v3 or v4 TSV, FASTA; "
                        ".gz is fine)")
    p.add_argument("--split-seed", type=int, default=0, metavar="S",
                   help="seed for derived splits (sources without a split column); default 0")
    p.add_argument("--max-length", type=_positive, default=660, metavar="NT",
                   help="truncate sequences to NT nucleotides (default 660)")
    p.add_argument("--on-bad", choices=["error", "skip"], default="error",
                   help="invalid sequence characters: stop with an error (default) or drop and count")
    p.add_argument("--download", action="store_true",
                   help="with bioscan5m:DIR, download the metadata if absent (bioscan-dataset package)")


def _load(args):
    from benchbarcode.data import load_barcodes

    return load_barcodes(args.data, seed=args.split_seed, max_length=args.max_length,
                         on_bad=args.on_bad, download=args.download,
                         progress=not getattr(args, "quiet", False))


def cmd_data_describe(args) -> int:
    from benchbarcode.data import describe
    from benchbarcode.run import task_support

    ds = _load(args)
    info = {**describe(ds), "tasks": task_support(ds)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    d = info["data"]
    print(f"data: {d['name']}  (source {d['source']}, reader {info['reader']})")
    print(f"content hash: {d['content_hash']}")
    tot = info["totals"]
    print("records {records:,}  unique sequences {unique_sequences:,}  orders {orders}  "
          "families {families}  genera {genera}  species {species}  BINs {bins}".format(**tot))
    ln = info["length"]
    print(f"length (nt): min {ln['min']}  median {ln['median']:g}  mean {ln['mean']:g}  max {ln['max']}")
    seed = f", seed {d['split_seed']}" if d["split_origin"] == "derived" else ""
    print(f"\nsplits ({d['split_origin']}{seed}):")
    print(tabulate(info["splits"], headers="keys", tablefmt="github", intfmt=","))
    print("\ncleaning:")
    print(tabulate(list(info["cleaning"].items()), headers=["action", "records"],
                   tablefmt="github", intfmt=","))
    print("\nleakage (identical cleaned sequences):")
    print(tabulate(info["leakage"], headers="keys", tablefmt="github", intfmt=","))
    print("\nspecies kept whole (too small to split):")
    print(tabulate(list(info["split_report"].items()), headers=["", "species"], tablefmt="github", intfmt=","))
    print("\ntasks this data set supports:")
    print(tabulate([[t["task"], "yes" if t["supported"] else "no", t["reason"]] for t in info["tasks"]],
                   headers=["task", "supported", "why not"], tablefmt="github"))
    return 0


def cmd_data_export(args) -> int:
    from benchbarcode.data.export import SUFFIXES, export_bioscan5m
    from benchbarcode.fileio import check_output_file

    check_output_file(args.out, "--out", SUFFIXES)
    ds = _load(args)
    path = export_bioscan5m(ds, args.out)
    if not args.quiet:
        print(f"wrote {len(ds.table):,} records in BIOSCAN-5M format to {path}")
    return 0


def _pretrainable() -> list[str]:
    """Names of the encoders ``benchbarcode pretrain`` builds, from the registry (built-ins only:
    no plugin is imported to write a help text)."""
    from benchbarcode.registry import list_encoders

    return [e.name for e in list_encoders(plugins=False) if e.meta.pretrainable]


def _preset_names() -> str:
    from benchbarcode.models.presets import PRESETS

    return "; ".join(f"{objective}: {', '.join(names)}" for objective, names in PRESETS.items())


def cmd_encoders(args) -> int:
    from benchbarcode.registry import list_encoders

    rows = [{"name": e.display, "family": e.meta.family,
             "objective": e.meta.objective, "parameters": e.default_parameters(), "origin": e.origin,
             "pretrainable": e.meta.pretrainable, "control": e.meta.control,
             "description": e.description} for e in list_encoders()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[r["name"], r["family"], r["objective"],
              "-" if r["parameters"] is None else f"{r['parameters']:,}", r["origin"], r["description"]]
             for r in rows]
    print(tabulate(table, headers=["name", "family", "objective", "parameters (default)", "origin",
                                   "description"],
                   tablefmt="github", maxcolwidths=[None, None, None, None, 30, 60]))
    return 0


def cmd_pretrain(args) -> int:
    from benchbarcode.models import objective_class
    from benchbarcode.models.presets import get_preset
    from benchbarcode.pretrain import pretrain
    from benchbarcode.registry import get_encoder

    entry = get_encoder(args.encoder)
    if not entry.meta.pretrainable:
        raise UserError(f"encoder {args.encoder!r} is not pretrained by benchbarcode "
                        f"(pretrainable: {', '.join(_pretrainable())})")
    objective = entry.meta.objective
    module = objective_class(objective)
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be >= 1")
    if args.lr is not None and not args.lr > 0:
        raise UserError("--lr must be > 0")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        raise UserError("--warmup-steps must be >= 0")
    def having(trait: str) -> str:  # the pretrainable encoders whose objective has ``trait``
        return " and ".join(n for n in _pretrainable()
                            if getattr(objective_class(get_encoder(n).meta.objective), trait))

    if args.mask_ratio is not None:
        if not module.masks:
            raise UserError(f"--mask-ratio applies to {having('masks')}, not {args.encoder}")
        if not 0 < args.mask_ratio < 1:
            raise UserError("--mask-ratio must be between 0 and 1 (exclusive)")
    if args.loss_on is not None and not module.chooses_loss_positions:
        raise UserError(f"--loss-on applies to {having('chooses_loss_positions')}, not {args.encoder}")
    preset = get_preset(objective, args.preset).with_overrides(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, max_len=args.max_length,
        loss_on=args.loss_on, warmup_steps=args.warmup_steps, mask_ratio=args.mask_ratio)
    from benchbarcode.checkpoints import check_target

    check_target(args.out, resume=args.resume, overwrite=args.overwrite)  # before any work
    ds = _load(args)
    meta = pretrain(objective, preset, ds.pretraining_sequences(), args.out, seed=args.seed,
                    data_identity=ds.identity(), preset_name=args.preset, encoder_name=args.encoder,
                    resume=args.resume, overwrite=args.overwrite, device=args.device,
                    checkpoint_every=args.checkpoint_every, progress=not args.quiet, dtype=args.dtype)
    if not args.quiet and meta is not None:
        b = meta["budget"]
        print(f"pretrained {args.encoder} ({args.preset}) -> {args.out}: {b['steps']} steps, "
              f"{b['sequences']:,} sequences, {b['input_tokens']:,} tokens "
              f"({b['encoder_tokens']:,} through the encoder), {b['flops']:.3g} FLOPs, "
              f"{b['train_seconds']:.0f} s; final loss {meta['loss_history'][-1][1]:.3f}")
    return 0


def _encoder_options(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` pairs; a VALUE that parses as JSON (numbers, true/false) is taken as such."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--encoder-option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _run_options(args, tasks=None):
    from benchbarcode.run import RunOptions

    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    if getattr(args, "limit", None) is not None and args.limit < 2:
        raise UserError("--limit must be >= 2")
    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be >= 1")
    options = _encoder_options(args.encoder_option)
    for flag, value in (("revision", args.revision), ("trust_remote_code", args.trust_remote_code or None),
                        ("dtype", args.dtype)):
        if value is not None:  # only when given: an encoder that does not take it then says so
            options[flag] = value
    return RunOptions(encoder=args.encoder, checkpoint=args.checkpoint,
                      encoder_options=options, preset=args.preset, steps=args.steps,
                      tasks=tasks, results_dir=getattr(args, "results_dir", "results"),
                      device=args.device, seed=args.seed, batch_size=args.batch_size,
                      limit=getattr(args, "limit", None), overwrite=getattr(args, "overwrite", False),
                      progress=not args.quiet, use_cache=not args.no_cache,
                      command=["benchbarcode", *sys.argv[1:]])


def _fmt(value: float, std: float | None = None) -> str:
    from benchbarcode.leaderboard import number

    return number(value) + (f" ± {number(std)}" if std is not None else "")


def score_table(report) -> str:
    """The end-of-run table: one row per task (canonical order), main score first."""
    from benchbarcode.tasks import canonical_order

    rows = []
    order = canonical_order(o.task for o in report.outcomes)
    for o in sorted(report.outcomes, key=lambda o: order.index(o.task)):
        if o.result is None:
            rows.append([o.task, "-", "-", f"skipped: {o.reason}", o.status])
            continue
        r = o.result
        if r["main_value"] is None:
            rows.append([o.task, r["main_score"], "-", r["unscored"], "written"])
            continue
        main, std = r["main_score"], r["scores_std"].get(r["main_score"])
        others = ", ".join(f"{k} {v:.3f}" for k, v in r["scores"].items() if k != main)
        rows.append([o.task, main, _fmt(r["main_value"], std), others,
                     "written" if o.status == "done" else "existing (skipped; --overwrite reruns)"])
    return tabulate(rows, headers=["task", "main score", "value", "other scores", "result"],
                    tablefmt="github", maxcolwidths=[None, None, None, 60, 24])


def _budget_line(meta: dict) -> str:
    budget = meta.get("budget") or {}
    if budget.get("steps"):
        stated = ", ".join([f"{budget['steps']:,} steps"]
                           + ([f"{budget['sequences']:,} sequences"] if budget.get("sequences") else [])
                           + ([f"{budget['flops']:.3g} FLOPs"] if budget.get("flops") else []))
    else:
        stated = "none (not pretrained)" if budget else "not stated (third-party weights)"
    return f"{_encoder_line(meta)}; pretraining budget: {stated}"


def _encoder_line(meta: dict) -> str:
    params = "unknown" if meta["parameters"] is None else f"{meta['parameters']:,}"
    similarity = meta.get("similarity", "cosine")
    shape = f"{meta['embedding_dim']}-d" if similarity == "cosine" else f"not an embedding: compared by {similarity}"
    return f"encoder {meta['name']} ({meta['family']}, {params} parameters, {shape})"


def _overlap_line(data: dict) -> str:
    """Evaluation records with an identical sequence in the pretraining corpus (kept, as in
    BIOSCAN-5M's own split; stated so a reader can judge)."""
    parts = [f"{split} {o['in_pretraining_corpus']:,} of {o['records']:,} ({o['in_pretraining_corpus'] / o['records']:.0%})"
             for split, o in (data.get("overlap_with_pretraining") or {}).items() if o["records"]]
    return ("evaluation records with an identical sequence in the pretraining corpus: "
            + (", ".join(parts) if parts else "none"))


def _main_values(report) -> dict:
    """``{task: main value}`` of a run, with the summary score when both its tasks ran."""
    from benchbarcode.tasks import SUMMARY, summary_of

    values = {o.task: o.result["main_value"] for o in report.outcomes
              if o.result is not None and o.result["main_value"] is not None}
    summary = summary_of(values)
    return values if summary is None else {**values, SUMMARY: summary}


def seeds_table(runs) -> str:
    """One row per task over seeds: the encoder's mean ± std (n), and with controls the control's
    and the paired difference with its interval (:mod:`benchbarcode.stats`)."""
    from benchbarcode.leaderboard import number
    from benchbarcode.stats import excludes_zero, mean_std, paired_difference
    from benchbarcode.tasks import canonical_order

    by_role: dict[str, dict[int, dict]] = {}
    for run in runs:
        by_role.setdefault(run.role, {})[run.seed] = _main_values(run.report)
    tasks = canonical_order(t for values in by_role["encoder"].values() for t in values)

    def cell(role: str, task: str) -> str:
        values = [v[task] for v in by_role.get(role, {}).values() if task in v]
        if not values:
            return "-"
        return _fmt(*mean_std(values)) + f" (n={len(values)})"

    rows = []
    for task in tasks:
        row = [task, cell("encoder", task)]
        if "control" in by_role:
            diff = paired_difference(*({s: v[task] for s, v in by_role[role].items() if task in v}
                                       for role in ("encoder", "control")))
            text = "-" if diff is None else number(diff["mean"], sign=True) + (
                f" [{number(diff['low'], sign=True)}, {number(diff['high'], sign=True)}]"
                f"{' *' if excludes_zero(diff) else ''}" if diff["low"] is not None else " (one seed: no interval)")
            row += [cell("control", task), text]
        rows.append(row)
    headers = ["task (main score)", "encoder, mean ± std over seeds"]
    if "control" in by_role:
        headers += ["control", "encoder - control [95 % t-interval, paired seeds]"]
    return tabulate(rows, headers=headers, tablefmt="github")


def cmd_run(args) -> int:
    from benchbarcode.run import run_benchmark, run_seeds

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if args.tasks is not None and not tasks:
        raise UserError("--tasks: no task named (see: benchbarcode tasks)")
    opts = _run_options(args, tasks)
    seeds = _ints(args.seeds, "--seeds") if args.seeds else None
    _check_run(opts, args)
    hint = f"leaderboard: benchbarcode leaderboard --results-dir {opts.results_dir}"
    if seeds is None and not args.with_control:
        report = run_benchmark(opts, _load(args))
        if not is_main_process():  # another torchrun process: it helped embed; rank 0 reports
            return 0
        if args.quiet and report.directory.is_dir():
            print(f"results: {report.directory}")
        elif not args.quiet:
            print("\n" + _budget_line(report.encoder))
            print(_overlap_line(report.data))
            print(score_table(report))
            values = _main_values(report)
            from benchbarcode.tasks import SUMMARY

            if SUMMARY in values:
                print(f"\nsummary (harmonic mean of closed-world and open-world accuracy): {values[SUMMARY]:.4f}")
            if report.directory.is_dir():
                print(f"results: {report.directory}\n{hint}")
        return 0 if any(o.result is not None for o in report.outcomes) else 2
    runs = run_seeds(opts, _load(args), seeds or [args.seed], with_control=args.with_control)
    if not is_main_process():
        return 0
    written = [r.report.directory for r in runs if r.report.directory.is_dir()]
    if args.quiet:
        print("\n".join(f"results: {d}" for d in written))
    else:
        for role in ("encoder", "control"):
            first = next((r for r in runs if r.role == role), None)
            if first is not None:
                print(f"\n{role}: " + _budget_line(first.report.encoder))
        print(_overlap_line(runs[0].report.data))
        print(f"\nseeds {', '.join(str(r.seed) for r in runs if r.role == 'encoder')}:")
        print(seeds_table(runs))
        if written:
            print("\nresults:\n" + "\n".join(f"  {d}" for d in written) + f"\n{hint}")
    return 0 if any(o.result is not None for r in runs for o in r.report.outcomes) else 2


def _check_run(opts, args) -> None:
    """What ``run`` / ``embed`` can check before any work: names, options, output paths."""
    from benchbarcode.fileio import cache_root, check_output_dir
    from benchbarcode.run import check_encoder_options, select_tasks

    select_tasks(opts.tasks)
    check_encoder_options(opts)
    if getattr(args, "with_control", False):
        from benchbarcode.registry import get_encoder

        if get_encoder(opts.encoder).meta.control is None:
            raise UserError(f"--with-control: encoder {opts.encoder!r} declares no control")
    if getattr(args, "results_dir", None) is not None:
        check_output_dir(opts.results_dir, "--results-dir")
    if opts.use_cache:
        check_output_dir(opts.cache_dir or cache_root(), "cache (BENCHBARCODE_CACHE)")


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1,2") from None


def _require_embedding(encoder: str, command: str) -> None:
    """``embed`` and ``profile`` measure embeddings: an encoder compared otherwise is refused."""
    from benchbarcode.registry import get_encoder

    similarity = get_encoder(encoder).meta.similarity
    if similarity != "cosine":
        raise UserError(f"{command} --encoder {encoder}: not an embedding (it compares barcodes by "
                        f"{similarity}); score it with `benchbarcode run --encoder {encoder}`")


def cmd_embed(args) -> int:
    from benchbarcode.embed import write_embeddings_npz
    from benchbarcode.run import embed_split, load_encoder
    from benchbarcode.runtime import resolve_device

    from benchbarcode.data.cleaning import SPLITS
    from benchbarcode.fileio import check_output_file

    check_output_file(args.out, "--out", (".npz",))
    if args.split is not None and args.split not in SPLITS:
        raise UserError(f"--split {args.split}: unknown split; expected one of {', '.join(SPLITS)} "
                        "(or no --split: every record)")
    opts = _run_options(args)
    _check_run(opts, args)
    _require_embedding(opts.encoder, "embed")
    ds = _load(args)
    rows = len(ds.table) if args.split is None else len(ds.split(args.split))
    if rows == 0:
        raise UserError(f"--split {args.split}: {ds.name} has no {args.split} records; nothing to embed "
                        "(leave out --split to embed every record)")
    from benchbarcode.runtime import init_distributed

    device = resolve_device(args.device)
    dist = init_distributed(device)  # under torchrun the processes share the work; rank 0 writes
    if dist.world > 1:
        device = resolve_device(args.device, dist.local_rank)
    encoder, _ = load_encoder(opts, ds, device)
    table, vectors, cache_state = embed_split(encoder, ds, args.split, opts, dist)
    if not dist.main:
        return 0
    write_embeddings_npz(args.out, vectors, table)
    if not args.quiet:
        print(f"wrote {vectors.shape[0]:,} x {vectors.shape[1]} embeddings of "
              f"{args.split or 'every record'} ({encoder.meta.name}"
              f"{', from the cache' if cache_state == 'hit' else ''}) to {args.out}")
    return 0


def cmd_leaderboard(args) -> int:
    from pathlib import Path

    from benchbarcode import leaderboard
    from benchbarcode.fileio import atomic_path, write_text_atomic
    from benchbarcode.results import scan_results

    fmt = args.format or (leaderboard.SUFFIXES.get(Path(args.out).suffix.lower()) if args.out else None)
    if args.out and fmt is None:
        raise UserError(f"--out {args.out}: say --format ({', '.join(leaderboard.FORMATS)}) or use a "
                        f"suffix of {', '.join(sorted(leaderboard.SUFFIXES))}")
    from benchbarcode.fileio import check_output_file

    if args.out:
        check_output_file(args.out, "--out")
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg"))
    notes_file = args.notes or (Path(args.results_dir) / leaderboard.NOTES if
                                (Path(args.results_dir) / leaderboard.NOTES).is_file() else None)
    notes = None
    if notes_file:
        try:
            notes = Path(notes_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--notes {notes_file}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    results, problems = scan_results(args.results_dir, skip_invalid=args.skip_invalid)
    for problem in problems:
        print(f"benchbarcode: skipped {problem}", file=sys.stderr)
    if not results:
        raise UserError(f"{args.results_dir}: no valid result files (expected DIR/<encoder>/<run-id>/<task>.json)")
    tables = leaderboard.build(results, data=args.data)
    text = leaderboard.render(tables, fmt or "markdown", notes)
    if args.plot:
        with atomic_path(args.plot) as tmp:
            leaderboard.plot(tables, tmp, Path(args.plot).suffix.lower()[1:])
    if args.out:
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def _batch_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: ``1,16,64`` -> (1, 16, 64), each >= 1."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, not {text!r}")
    return sizes


def _si(value: float | None, unit: str = "") -> str:
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
            return f"{_si(m[f'{name}_per_s'])} [{_si(m[f'{name}_per_s_q1'])}, {_si(m[f'{name}_per_s_q3'])}]"

        ratio = m.get("flops_counted_vs_derived")
        rows.append([m["batch_size"], rate("sequences"), _si(m["nucleotides_per_s"]), _si(m.get("tokens_per_s")),
                     f"{m['seconds_median'] * 1e3:.3g}", m["repeats"],
                     "-" if m.get("peak_mb") is None else f"{m['peak_mb']:,.1f}",
                     _si(m.get("flops_per_sequence"), "FLOP") + ("" if ratio is None else f" ({ratio:.3f})"),
                     _si(m.get("flop_per_s"), "FLOP/s"),
                     "-" if m.get("utilisation") is None else f"{m['utilisation']:.2f}"])
    return tabulate(rows, headers=["batch", "seq/s median [q1, q3]", "nt/s", "tokens/s", "ms/call", "repeats",
                                   "peak MB", "FLOPs/seq (counted/derived)", "achieved", "utilisation"],
                    tablefmt="github", disable_numparse=True)


def cmd_profile(args) -> int:
    from benchbarcode.profile import ProfileOptions, profile_encoder, write_profile

    if args.repeats < 1 or args.warmup < 0:
        raise UserError("--repeats must be >= 1 and --warmup >= 0")
    _require_embedding(args.encoder, "profile")
    opts = ProfileOptions(encoder=args.encoder, checkpoint=args.checkpoint,
                          encoder_options=_encoder_options(args.encoder_option), preset=args.preset,
                          mode=args.mode, batch_sizes=args.batch_sizes, device=args.device, dtype=args.dtype,
                          length=args.length, warmup=args.warmup, repeats=args.repeats,
                          min_seconds=args.min_seconds, memory=not args.no_memory, seed=args.seed,
                          command=["benchbarcode", *sys.argv[1:]])
    if args.results_dir:
        from benchbarcode.fileio import check_output_dir

        check_output_dir(args.results_dir, "--results-dir")
    result = profile_encoder(opts, progress=not args.quiet and not args.json)
    path = write_profile(args.results_dir, result) if args.results_dir else None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if args.quiet:
        if path:
            print(path)
        return 0
    p = result["profile"]
    matmul = p.get("matmul")
    print(f"{_encoder_line(result['encoder'])}; {p['mode']} on {result['device']} "
          f"({p['machine']}, {p['threads']} threads), {result['dtype']}, {p['length_nt']} nt "
          f"({p['tokens_per_sequence'] or '-'} tokens) per sequence")
    print(profile_table(result))
    if matmul:
        print(f"utilisation = achieved / dense {result['dtype']} matmul ({matmul['size']}x{matmul['size']}) "
              f"measured in this run: {_si(matmul['flop_per_s'], 'FLOP/s')}")
    print(f"peak memory: {p['memory_method']}" + (f"; {p['memory_note']}" if p.get("memory_note") else ""))
    if path:
        print(f"result: {path}")
    return 0


def cmd_tasks(args) -> int:
    from benchbarcode.registry import list_tasks

    rows = [{**e.meta.to_dict(), "origin": e.origin} for e in list_tasks()]
    if args.json:
        print(json.dumps(rows, indent=2, default=list))
        return 0
    table = [[r["name"], r["version"], ", ".join(r["splits"]), r["label_rank"], r["main_score"],
              r["description"]] for r in rows]
    print(tabulate(table, headers=["name", "version", "splits", "labels", "main score", "description"],
                   tablefmt="github", maxcolwidths=[None, None, 30, None, None, 60]))
    return 0


def _add_encoder_options(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--encoder", required=True, metavar="NAME",
                   help="a registered encoder, or hf:MODEL (a Hugging Face hub id or local directory); "
                        "see: benchbarcode encoders")
    p.add_argument("--checkpoint", metavar="PATH",
                   help=f"weights to load: a directory written by 'benchbarcode pretrain' or a reference "
                        f".pt file (in-house encoders), a local copy of a preset's model (hf presets); "
                        f"without it, {'/'.join(_pretrainable())} are pretrained once with --preset and cached")
    p.add_argument("--preset", default="tiny", metavar="P",
                   help=f"pretraining preset when no --checkpoint is given (default tiny; {_preset_names()})")
    p.add_argument("--steps", type=int, metavar="N",
                   help="pretrain for N steps instead of the preset's (an equal, stated budget)")
    p.add_argument("--encoder-option", action="append", metavar="KEY=VALUE",
                   help="passed to the encoder's factory, e.g. like=mlm (random) or k=4 (kmer); repeatable")
    p.add_argument("--revision", metavar="REV",
                   help="hf encoders: the hub revision to load (branch, tag or commit; the commit it "
                        "resolves to is recorded)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="hf encoders: allow a model repository's own Python code to run (off by default)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="inference dtype, for encoders that take one (hf: default float32)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to embed (and pretrain): auto = cuda when a GPU is visible (default)")
    seeded = ("pretraining and random-init weights" if command == "embed"
              else "pretraining, random-init weights, --limit subsets and task repeats")
    p.add_argument("--seed", type=int, default=0, metavar="S", help=f"seed of {seeded} (default 0)")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="embedding batch size (default 64)")
    p.add_argument("--no-cache", action="store_true",
                   help=f"neither read nor write the embedding and pretraining cache; {CACHE_HELP}")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or summary line" if command == "embed"
                   else "no progress bars or tables; only where the results went")


def cmd_cache(args) -> int:
    from benchbarcode.embed import cache_info, clear_cache

    if args.cache_command == "clear":
        freed = clear_cache(args.what)
        print(f"removed {freed['files']:,} files ({freed['bytes'] / 1e6:,.1f} MB) from {freed['root']}")
        return 0
    info = cache_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"cache: {info['root']} ({info['set_by']})")
    print(tabulate([[k, v["entries"], f"{v['bytes'] / 1e6:,.1f}"] for k, v in info["parts"].items()],
                   headers=["part", "entries", "MB"], tablefmt="github", intfmt=","))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="benchbarcode",
        description="Benchmark suite for DNA-barcode encoders: pretrain or load an encoder, embed "
                    "barcodes, evaluate frozen features, report.")
    parser.add_argument("--version", action="version", version=f"benchbarcode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="inspect and convert barcode data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p = data_sub.add_parser("describe", help="records, species, genera, BINs per split; length, "
                                             "cleaning and leakage reports")
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_data_describe, _parser=p)
    p = data_sub.add_parser("export", help="write the cleaned, split data in BIOSCAN-5M column format")
    _add_data_options(p)
    p.add_argument("--out", required=True, metavar="FILE", help="output CSV (.csv or .csv.gz)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_data_export, _parser=p)

    p = sub.add_parser("encoders", help="list the registered encoders")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_encoders, _parser=p)

    p = sub.add_parser("pretrain", help=f"pretrain an in-house encoder ({', '.join(_pretrainable())}) "
                                        "at a stated budget",
                       description="Pretrain an in-house encoder on the pretraining corpus of SOURCE "
                                   "(splits pretrain + other_heldout + train, never an evaluation "
                                   "split). Runs unchanged under torchrun (DDP).")
    p.add_argument("--encoder", required=True, metavar="NAME", help=f"one of: {', '.join(_pretrainable())}")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (opens with transformers.AutoModel.from_pretrained)")
    p.add_argument("--preset", default="tiny", metavar="P",
                   help=f"tiny (the CPU default) or another preset of the objective: {_preset_names()}")
    p.add_argument("--steps", type=int, metavar="N", help="optimiser steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, metavar="B", help="global batch size (default: the preset's)")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate (default: the preset's)")
    p.add_argument("--warmup-steps", type=int, metavar="N",
                   help="linear warm-up of the one-cycle schedule (default: the preset's)")
    p.add_argument("--mask-ratio", type=float, metavar="R",
                   help="objectives that mask tokens: fraction of valid k-mers masked "
                        "(default: the preset's, 0.5)")
    p.add_argument("--loss-on", choices=["masked", "all"],
                   help="masked objectives: loss on the masked positions only (default, as the papers) or on "
                        "all positions (keeps each token's identity in the top layer)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights, batches, masks (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="autocast compute dtype (default: bfloat16 on CUDA, float32 on CPU; bfloat16 speeds up "
                        "CPUs with AVX-512 BF16 / AMX, see: benchbarcode profile --mode train)")
    p.add_argument("--checkpoint-every", type=_positive, metavar="N",
                   help="save a resumable checkpoint every N steps (default: a tenth of the run, >= 50); Ctrl-C "
                        "saves one after the step in flight")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in DIR exactly")
    p.add_argument("--overwrite", action="store_true", help="replace what DIR holds and start clean")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_data_options(p)
    p.set_defaults(func=cmd_pretrain, _parser=p)

    p = sub.add_parser("run", help="evaluate an encoder on the frozen-feature tasks and write results",
                       description="Pretrain (in-house encoders without --checkpoint, cached) or load an "
                                   "encoder, embed the needed splits (cached), run the tasks, write "
                                   "DIR/<encoder>/<run-id>/<task>.json and print a score table. Results "
                                   "already written are kept (resume) unless --overwrite.")
    _add_encoder_options(p, "run")
    p.add_argument("--tasks", metavar="A,B", help="comma-separated task names (default: all; see: benchbarcode tasks)")
    p.add_argument("--seeds", metavar="S,S", help="run each of these seeds (each its own run directory) and "
                                                  "print mean ± std over them")
    p.add_argument("--with-control", action="store_true",
                   help="also run the encoder's declared control (its random initialisation: same "
                        "architecture, preset and seed) and print the paired difference")
    p.add_argument("--results-dir", default="results", metavar="DIR", help="default results/")
    p.add_argument("--limit", type=int, metavar="N", help="at most N random records per evaluation split")
    p.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
    _add_data_options(p)
    p.set_defaults(func=cmd_run, _parser=p)

    p = sub.add_parser("embed", help="write embeddings (every record, or one split) to a .npz file",
                       description="Embed the records of SOURCE (or of one --split) with an encoder; the .npz "
                                   "holds embeddings (float32 [N, D]), processid, genus, species and split "
                                   "('' for missing).")
    _add_encoder_options(p, "embed")
    p.add_argument("--split", metavar="SPLIT", help="one split, e.g. train or test_unseen (default: every record)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    _add_data_options(p)
    p.set_defaults(func=cmd_embed, _parser=p)

    p = sub.add_parser("leaderboard", help="compare stored results: one table per comparable group",
                       description="Build the leaderboard from result files only (nothing is re-run): one row "
                                   "per encoder and data set, seeds aggregated (mean ± std, n), learned "
                                   "encoders paired with their random control; rows share a table only "
                                   "with the same data and task versions.")
    p.add_argument("--results-dir", default="results", metavar="DIR", help="default results/")
    p.add_argument("--format", choices=["markdown", "csv", "html", "json"],
                   help="default: from --out's suffix, else markdown")
    p.add_argument("--out", metavar="FILE", help="write here (atomically) instead of standard output")
    p.add_argument("--plot", metavar="FILE.png|FILE.svg",
                   help="also draw the summary score against pretraining FLOPs")
    p.add_argument("--data", metavar="NAME-OR-HASH", help="only the tables of this data set (name or hash prefix)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out result files that fail validation (listed on stderr) instead of stopping")
    p.add_argument("--notes", metavar="FILE",
                   help="markdown appended under the tables (markdown and html); default: DIR/NOTES.md if present")
    p.set_defaults(func=cmd_leaderboard, _parser=p)

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
    p.add_argument("--preset", default="tiny", metavar="P", help=f"architecture preset (default tiny; {_preset_names()})")
    p.add_argument("--encoder-option", action="append", metavar="KEY=VALUE", help="as for run; repeatable")
    p.add_argument("--mode", choices=["infer", "train"], default="infer",
                   help="infer: embed (default); train: one pretraining step (forward, backward, AdamW)")
    p.add_argument("--batch-sizes", type=_batch_sizes, default=(1, 16, 64, 256), metavar="B,B",
                   help="batch sizes to time (default 1,16,64,256)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="compute dtype (autocast for in-house encoders; default float32)")
    p.add_argument("--length", type=_positive, default=658, metavar="NT",
                   help="nucleotides per synthetic barcode (default 658, the COI-5P barcode)")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="timed calls per batch size, at least (default 5)")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S",
                   help="repeat until S seconds are timed per batch size (default 1)")
    p.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed calls first (default 2)")
    p.add_argument("--no-memory", action="store_true", help="CPU: skip the peak-memory child process")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sequences and weights (default 0)")
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="write the profile result here (default results/; '' writes nothing)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--quiet", action="store_true", help="no progress or table; only where the result went")
    p.set_defaults(func=cmd_profile, _parser=p)

    p = sub.add_parser("tasks", help="list the frozen-feature tasks")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_tasks, _parser=p)

    cache = sub.add_parser("cache", help="show or clear the cache (embeddings, pretrained encoders, generated data)",
                           description=f"Embeddings and pretrained encoders are cached by identity, generated "
                                       f"data sets (sim-large) by size and seed; {CACHE_HELP}.")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    p = cache_sub.add_parser("info", help="where the cache is and how large each part is")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_cache, _parser=p)
    p = cache_sub.add_parser("clear", help="remove one part of the cache, or all of it")
    p.add_argument("--what", choices=["all", "embeddings", "pretrained", "shards", "data"], default="all",
                   help="which part to remove (default all; shards: what an interrupted torchrun "
                        "embedding left; data: generated sim-large twins, 3.7 GB at full size)")
    p.set_defaults(func=cmd_cache, _parser=p)
    for p in (parser, data, cache):  # a group without its subcommand is an error, not a help page
        p.set_defaults(_group=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    own = getattr(args, "_parser", None) or getattr(args, "_group", None) or parser
    if extra:  # said by the (sub)command that got them, with its own usage, in one line
        own.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        choices = [a for a in own._subparsers._group_actions[0].choices] if own._subparsers else []
        own.error(f"a command is required: {', '.join(choices)}")
    if not getattr(args, "quiet", False):
        logging.basicConfig(format="benchbarcode: %(message)s", level=logging.INFO)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"benchbarcode: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # its text, if any, says where the work stopped
        print(f"benchbarcode: interrupted{f' ({exc})' if str(exc) else ''}; finished work is kept: re-run the "
              "same command to resume (pretrain: add --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the machine refused (disk full, permissions changed mid-run): one line
        if exc.filename is None:
            raise
        print(f"benchbarcode: error: {exc.filename}: {exc.strerror or exc}; finished work is kept",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
