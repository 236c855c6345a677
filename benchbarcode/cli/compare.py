"""``benchbarcode compare``: two results on the same data and protocol, query by query."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs query by query (paired bootstrap, exact McNemar)",
                       description="For each task both hold: the main scores, their difference A - B with a "
                                   "paired bootstrap 95 % interval over the same queries, and for classification "
                                   "tasks an exact McNemar test on the queries only one of them got right. A and B "
                                   "are result files (<task>.json) or run directories; they must be on the same "
                                   "data, splits and task protocol.")
    p.add_argument("a", metavar="RESULTS_A", help="a result file or a run directory")
    p.add_argument("b", metavar="RESULTS_B", help="a result file or a run directory")
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from tabulate import tabulate

    from benchbarcode.compare import compare, p_text
    from benchbarcode.summary import number

    records = compare(args.a, args.b)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    rows = []
    for r in records:
        test = r["mcnemar"]
        rows.append([r["task"], r["metric"], f"{r['n']:,}", number(r["a"]), number(r["b"]),
                     f"{number(r['difference'], sign=True)} [{number(r['low'], sign=True)}, {number(r['high'], sign=True)}]",
                     "-" if test is None else f"{test['a_only']} / {test['b_only']}",
                     "-" if test is None else p_text(test["p"])])
    print(f"A: {args.a}\nB: {args.b}\n")
    print(tabulate(rows, headers=["task", "metric", "queries", "A", "B", "A - B [95 % paired bootstrap]",
                                  "only A / only B right", "McNemar p"], tablefmt="github", disable_numparse=True))
    print("\n" + "\n".join(dict.fromkeys(f"{r['task']}: {r['method']}" + (
        f"; {r['mcnemar']['method']}" if r["mcnemar"] else "") for r in records)))
    return 0
