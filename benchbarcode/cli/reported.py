"""``benchbarcode reported``: the published figures the leaderboard shows beside measured rows."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("reported", help="list the published figures shown beside measured rows",
                       description="The BIOSCAN-5M paper's table of DNA models (percent), with its source, the "
                                   "checkpoint of each row and the benchbarcode encoders that measure it. The "
                                   "leaderboard shows them only under a BIOSCAN-5M table measured with "
                                   "--protocol reference.")
    p.add_argument("--json", action="store_true", help="print JSON (with the source) instead of a table")
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from tabulate import tabulate

    from benchbarcode import reported

    table = reported.load()
    if args.json:
        print(json.dumps(table.to_dict(), indent=2))
        return 0
    rows = [[e.model, e.checkpoint, e.pretraining_data or "-", e.tokens_seen or "-",
             *("-" if getattr(e, f) is None else f"{getattr(e, f):.2f}" for f in reported.FIGURES),
             ", ".join(e.encoders) + "".join(f"; {k}={v}" for k, v in e.match)] for e in table.entries]
    print(f"{table.title} (%)\nsource: {table.source['citation']}\n        {table.source['url']}\n")
    print(tabulate(rows, headers=["model", "checkpoint", "pretraining data", "tokens seen", "fine-tuned species",
                                  "linear-probe species", "1-NN unseen genus", "measured by"],
                   tablefmt="github", disable_numparse=True, maxcolwidths=[None, 40, 24, None, None, None, None, 50]))
    notes = [f"{e.model}: {e.note}" for e in table.entries if e.note]
    if notes:
        print("\n" + "\n".join(notes))
    return 0
