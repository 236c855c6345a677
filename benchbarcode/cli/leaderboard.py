"""``benchbarcode leaderboard``: compare stored results, one table per comparable group."""

from __future__ import annotations

import sys
from pathlib import Path

from benchbarcode.errors import UserError


def add_parser(sub) -> None:
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
                   help="also draw the rank key against pretraining compute and the cost of use")
    p.add_argument("--data", metavar="NAME-OR-HASH", help="only the tables of this data set (name or hash prefix)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out result files that fail validation (listed on stderr) instead of stopping")
    p.add_argument("--notes", metavar="FILE",
                   help="markdown appended under the tables (markdown and html); default: DIR/NOTES.md if present")
    p.set_defaults(func=handle, _parser=p)


def _format(args) -> str:
    from benchbarcode import leaderboard
    from benchbarcode.fileio import check_output_file

    fmt = args.format or (leaderboard.SUFFIXES.get(Path(args.out).suffix.lower()) if args.out else None)
    if args.out and fmt is None:
        raise UserError(f"--out {args.out}: say --format ({', '.join(leaderboard.FORMATS)}) or use a "
                        f"suffix of {', '.join(sorted(leaderboard.SUFFIXES))}")
    if args.out:
        check_output_file(args.out, "--out")
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg"))
    return fmt or "markdown"


def _notes(args) -> str | None:
    from benchbarcode import leaderboard

    default = Path(args.results_dir) / leaderboard.NOTES
    notes_file = args.notes or (default if default.is_file() else None)
    if not notes_file:
        return None
    try:
        return Path(notes_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--notes {notes_file}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def handle(args) -> int:
    from benchbarcode import leaderboard
    from benchbarcode.compare import outcomes_reader
    from benchbarcode.fileio import atomic_path, write_text_atomic
    from benchbarcode.store import ResultStore

    fmt, notes = _format(args), _notes(args)
    located, problems = ResultStore(args.results_dir).scan_located(skip_invalid=args.skip_invalid)
    for problem in problems:
        print(f"benchbarcode: skipped {problem}", file=sys.stderr)
    if not located:
        raise UserError(f"{args.results_dir}: no valid result files (expected DIR/<encoder>/<run-id>/<task>.json)")
    results = [result for _, result in located]
    tables = leaderboard.build(results, data=args.data,
                               outcomes=outcomes_reader({id(result): path for path, result in located}))
    text = leaderboard.render(tables, fmt, notes)
    if args.plot:
        from benchbarcode import board_plot

        with atomic_path(args.plot) as tmp:
            board_plot.draw(tables, tmp, Path(args.plot).suffix.lower()[1:])
    if args.out:
        write_text_atomic(args.out, text)
        rows = sum(len(t.rows) for t in tables)
        print(f"benchbarcode: wrote {args.out} ({fmt}, {len(tables)} table{'s' * (len(tables) != 1)}, "
              f"{rows} row{'s' * (rows != 1)})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        print(f"benchbarcode: wrote {args.plot} ({Path(args.plot).suffix.lower()[1:]} figure)", file=sys.stderr)
    return 0
