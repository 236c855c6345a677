"""``benchbarcode encoders`` and ``benchbarcode tasks``: what is registered."""

from __future__ import annotations

import json

from tabulate import tabulate


def add_parsers(sub) -> None:
    p = sub.add_parser("encoders", help="list the registered encoders")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=encoders, _parser=p)
    p = sub.add_parser("tasks", help="list the frozen-feature tasks")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=tasks, _parser=p)


def encoders(args) -> int:
    """The registered encoders, and the plugins that failed to load (marked broken, with the error)."""
    from benchbarcode.registry import ENCODERS, list_encoders

    rows = [{"name": e.display, "family": e.meta.family,
             "objective": e.meta.objective, "parameters": e.default_parameters(), "origin": e.origin,
             "pretrainable": e.meta.pretrainable, "control": e.meta.control,
             "description": e.description} for e in list_encoders()]
    rows += [{"name": name, "family": "-", "objective": "-", "parameters": None, "origin": "plugin (broken)",
              "pretrainable": False, "control": None, "description": f"broken: {error}"}
             for name, error in sorted(ENCODERS.broken().items())]
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


def tasks(args) -> int:
    from benchbarcode.registry import TASKS, list_tasks

    rows = [{**e.meta.to_dict(), "origin": e.origin} for e in list_tasks()]
    broken = sorted(TASKS.broken().items())
    if args.json:
        print(json.dumps(rows + [{"name": n, "origin": "plugin (broken)", "description": f"broken: {error}"}
                                 for n, error in broken], indent=2, default=list))
        return 0
    table = [[r["name"], r["version"], ", ".join(r["splits"]), r["label_rank"], r["main_score"],
              r["description"]] for r in rows]
    table += [[name, "-", "-", "-", "-", f"broken: {error}"] for name, error in broken]
    print(tabulate(table, headers=["name", "version", "splits", "labels", "main score", "description"],
                   tablefmt="github", maxcolwidths=[None, None, 30, None, None, 60]))
    return 0
