"""``benchbarcode run``: evaluate an encoder on the frozen-feature tasks and write results."""

from __future__ import annotations

from tabulate import tabulate

from benchbarcode.cli import common
from benchbarcode.cli.common import (
    add_data_options,
    add_encoder_options,
    add_protocol_option,
    budget_line,
    caching,
    command_line,
    encoder_spec,
    overlap_line,
    seed_list,
)
from benchbarcode.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="evaluate an encoder on the frozen-feature tasks and write results",
                       description="Pretrain (in-house encoders without --checkpoint, cached) or load an "
                                   "encoder, embed the needed splits (cached), run the tasks, write "
                                   "DIR/<encoder>/<run-id>/<task>.json and print a score table. Results "
                                   "already written are kept (resume) unless --overwrite.")
    add_encoder_options(p, "run")
    p.add_argument("--tasks", metavar="A,B", help="comma-separated task names (default: all; see: benchbarcode tasks)")
    p.add_argument("--seeds", metavar="S,S", help="run each of these seeds (each its own run directory) and "
                                                  "print mean ± std over them")
    p.add_argument("--with-control", action="store_true",
                   help="also run the encoder's declared control (its random initialisation: same "
                        "architecture, preset and seed) and print the paired difference")
    p.add_argument("--results-dir", default="results", metavar="DIR", help="default results/")
    p.add_argument("--limit", type=int, metavar="N", help="at most N random records per evaluation split")
    p.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
    add_data_options(p)
    add_protocol_option(p)
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from benchbarcode.run import RunOptions, run_benchmark, run_seeds

    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks is not None else None
    opts = RunOptions(encoder=encoder_spec(args), tasks=tasks,
                      seeds=seed_list(args.seeds) if args.seeds is not None else None,
                      with_control=args.with_control, results_dir=args.results_dir, batch_size=args.batch_size,
                      limit=args.limit, overwrite=args.overwrite, progress=not args.quiet, caching=caching(args),
                      command=command_line(), protocol=args.protocol)
    plan = opts.validate()
    if args.seeds is None and not args.with_control:
        report = run_benchmark(plan, common.load_data(args))
        if not report.main:  # another torchrun process: it helped embed; the first one reports
            return 0
        print_run(report, args.quiet, args.results_dir)
        require_a_score(report.statuses)
        return 0
    runs = run_seeds(plan, common.load_data(args))
    if not runs[0].report.main:
        return 0
    print_seeds(runs, args.quiet, args.results_dir)
    require_a_score([s for r in runs for s in r.report.statuses])
    return 0


def require_a_score(statuses) -> None:
    """A run that scored no task is an error, said in one line with each task's reason (the table
    above, if printed, shows them too)."""
    if any(s.result is not None for s in statuses):
        return
    reasons = dict.fromkeys(f"{s.task}: {(s.reason or '').removeprefix(f'task {s.task}: ')}" for s in statuses)
    raise UserError(f"no task was scored ({'; '.join(reasons)}); no result was written")


INTERVAL_NOTE = ("95 % interval: the sampling error of the main score over the n queries scored (Wilson for "
                 "accuracies, a seeded bootstrap otherwise); `benchbarcode compare RUN_A RUN_B` tests a "
                 "difference query by query")


def _hint(results_dir: str) -> str:
    return f"leaderboard: benchbarcode leaderboard --results-dir {results_dir}"


def print_run(report, quiet: bool, results_dir: str) -> None:
    from benchbarcode.summary import SUMMARY, with_summary

    written = report.directory.is_dir()
    if quiet:
        if written:
            print(f"results: {report.directory}")
        return
    print("\n" + budget_line(report.encoder))
    print(overlap_line(report.data))
    print(score_table(report))
    print(INTERVAL_NOTE)
    values = with_summary(main_values(report))
    if SUMMARY in values:
        print(f"\nsummary (harmonic mean of closed-world and open-world accuracy): {values[SUMMARY]:.4f}")
    if written:
        print(f"results: {report.directory}\n{_hint(results_dir)}")


def print_seeds(runs, quiet: bool, results_dir: str) -> None:
    written = [r.report.directory for r in runs if r.report.directory.is_dir()]
    if quiet:
        print("\n".join(f"results: {d}" for d in written))
        return
    for role in ("encoder", "control"):
        first = next((r for r in runs if r.role == role), None)
        if first is not None:
            print(f"\n{role}: " + budget_line(first.report.encoder))
    print(overlap_line(runs[0].report.data))
    print(f"\nseeds {', '.join(str(r.seed) for r in runs if r.role == 'encoder')}:")
    print(seeds_table(runs))
    if written:
        print("\nresults:\n" + "\n".join(f"  {d}" for d in written) + f"\n{_hint(results_dir)}")


def score_table(report) -> str:
    """The end-of-run table: one row per task (canonical order), main score first."""
    from benchbarcode.summary import (
        canonical_order,
        distinct_digits,
        interval_text,
        number,
        shown,
    )

    rows = []
    order = canonical_order(s.task for s in report.statuses)
    scored = [s.result for s in report.statuses if s.result is not None and s.result["main_value"] is not None]
    digits = distinct_digits(shown(r["main_score"], r["main_value"]) for r in scored)
    for s in sorted(report.statuses, key=lambda s: order.index(s.task)):
        if s.result is None:
            rows.append([s.task, "-", "-", "-", f"skipped: {s.reason}", s.status])
            continue
        r = s.result
        if r["main_value"] is None:
            rows.append([s.task, r["main_score"], "-", "-", r["unscored"], "written"])
            continue
        main, std = r["main_score"], r["scores_std"].get(r["main_score"])
        others = "; ".join([", ".join(f"{k} {shown(k, v):.3f}" for k, v in r["scores"].items() if k != main),
                            *r.get("notes", [])])
        rows.append([s.task, main, number(shown(main, r["main_value"]), digits)
                     + (f" ± {number(std)}" if std is not None else ""), interval_text(r, digits=3),
                     others, "written" if s.status == "done" else "existing (skipped; --overwrite reruns)"])
    return tabulate(rows, headers=["task", "main score", "value", "95 % interval, n", "other scores", "result"],
                    tablefmt="github", maxcolwidths=[None, None, None, 24, 50, 24])


def main_values(report) -> dict:
    """``{task: main value}`` of a run's scored tasks."""
    return {s.task: s.result["main_value"] for s in report.statuses
            if s.result is not None and s.result["main_value"] is not None}


def seeds_table(runs) -> str:
    """One row per task over seeds: the encoder's mean ± std (n), and with controls the control's
    and the paired difference with its interval, rendered as the leaderboard renders them."""
    from benchbarcode.summary import (
        aggregate,
        canonical_order,
        difference,
        difference_text,
        metric_text,
    )

    by_role: dict[str, dict[int, dict]] = {}
    for run in runs:
        by_role.setdefault(run.role, {})[run.seed] = main_values(run.report)
    metrics = {role: aggregate(by_seed) for role, by_seed in by_role.items()}
    rows = []
    for task in canonical_order(metrics["encoder"]):
        encoder = metrics["encoder"][task]
        row = [task, metric_text(encoder) + f" (n={encoder.n})"]
        if "control" in metrics:
            control = metrics["control"].get(task)
            row += [metric_text(control) + (f" (n={control.n})" if control else ""),
                    difference_text(difference(encoder, control))]
        rows.append(row)
    headers = ["task (main score)", "encoder, mean ± std over seeds"]
    if "control" in metrics:
        headers += ["control", "encoder - control [95 % t-interval, paired seeds]"]
    return tabulate(rows, headers=headers, tablefmt="github")
