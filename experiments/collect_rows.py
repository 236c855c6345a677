"""Merge the ``rows`` of every ``DIR/*.json`` written by ``experiments.budget_curve`` /
``experiments.long_schedule`` (``--json``) into one JSON list, each row tagged with its job (the
file name): ``python -m experiments.collect_rows DIR OUT``."""

import json
import sys
from pathlib import Path


def main() -> None:
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [{**row, "job": f.stem} for f in sorted(src.glob("*.json")) for row in json.loads(f.read_text())["rows"]]
    dest.write_text(json.dumps(rows, indent=0))
    print(len(rows), "rows ->", dest)


if __name__ == "__main__":
    main()
