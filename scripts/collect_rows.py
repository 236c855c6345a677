"""Merge the ``rows`` of every ``DIR/*.json`` written by budget_curve.py / long_schedule.py into one
JSON list, each row tagged with its job (the file name): ``python scripts/collect_rows.py DIR OUT``."""

import json
import sys
from pathlib import Path

src, dest = Path(sys.argv[1]), Path(sys.argv[2])
rows = [{**row, "job": f.stem} for f in sorted(src.glob("*.json")) for row in json.loads(f.read_text())["rows"]]
dest.write_text(json.dumps(rows, indent=0))
print(len(rows), "rows ->", dest)
