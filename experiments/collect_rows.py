"""Merge the ``rows`` of every ``DIR/*.json`` written by ``experiments.budget_curve`` /
``experiments.long_schedule`` (``--json``) into one JSON list, each row tagged with its job (the
file name): ``python -m experiments.collect_rows DIR OUT``."""

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("directory", metavar="DIR", type=Path, help="holds the runs' --json files")
    ap.add_argument("out", metavar="OUT", type=Path, help="where the merged JSON list is written")
    args = ap.parse_args()
    src, dest = args.directory, args.out
    rows = [{**row, "job": f.stem} for f in sorted(src.glob("*.json")) for row in json.loads(f.read_text())["rows"]]
    dest.write_text(json.dumps(rows, indent=0))
    print(len(rows), "rows ->", dest)


if __name__ == "__main__":
    main()
