"""``benchbarcode data describe`` and ``data export``."""

from __future__ import annotations

import json

from tabulate import tabulate

from benchbarcode.cli import common
from benchbarcode.cli.common import add_data_options, add_protocol_option


def add_parser(sub) -> object:
    data = sub.add_parser("data", help="inspect and convert barcode data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p = data_sub.add_parser("describe", help="records, species, genera, BINs per split; length, "
                                             "cleaning and leakage reports")
    add_data_options(p)
    add_protocol_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=describe, _parser=p)
    p = data_sub.add_parser("export", help="write the cleaned, split data in BIOSCAN-5M column format")
    add_data_options(p)
    p.add_argument("--out", required=True, metavar="FILE", help="output CSV (.csv or .csv.gz)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=export, _parser=p)
    return data


def describe(args) -> int:
    from benchbarcode.data import describe as describe_data
    from benchbarcode.run import task_support

    ds = common.load_data(args)
    info = {**describe_data(ds), "tasks": task_support(ds)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print_description(info)
    return 0


def print_description(info: dict) -> None:
    d = info["data"]
    print(f"data: {d['name']}  (source {d['source']}, reader {info['reader']})")
    print(f"content hash: {d['content_hash']}")
    print("records {records:,}  unique sequences {unique_sequences:,}  orders {orders}  "
          "families {families}  genera {genera}  species {species}  BINs {bins}".format(**info["totals"]))
    ln = info["length"]
    print(f"length (nt): min {ln['min']}  median {ln['median']:g}  mean {ln['mean']:g}  max {ln['max']}")
    seed = f", seed {d['split_seed']}" if d["split_origin"] == "derived" else ""
    print(f"\nsplits ({d['split_origin']}{seed}):")
    print(tabulate(info["splits"], headers="keys", tablefmt="github", intfmt=","))
    if d.get("deduplication") is not None:
        print(f"\nprotocol {d['protocol']}: records dropped as identical barcodes (first occurrence in file order "
              "kept, trailing N stripped):")
        print(tabulate(list(d["deduplication"].items()), headers=["split", "dropped"], tablefmt="github",
                       intfmt=","))
    print("\ncleaning:")
    print(tabulate(list(info["cleaning"].items()), headers=["action", "records"], tablefmt="github", intfmt=","))
    print("\nleakage (identical cleaned sequences):")
    print(tabulate(info["leakage"], headers="keys", tablefmt="github", intfmt=","))
    print("\nspecies kept whole (too small to split):")
    print(tabulate(list(info["split_report"].items()), headers=["", "species"], tablefmt="github", intfmt=","))
    print("\ntasks this data set supports" + (f" (protocol {d['protocol']}):" if "protocol" in d else ":"))
    print(tabulate([[t["task"], "yes" if t["supported"] else "no", t["reason"]] for t in info["tasks"]],
                   headers=["task", "supported", "why not"], tablefmt="github"))


def export(args) -> int:
    from benchbarcode.data.export import SUFFIXES, export_bioscan5m
    from benchbarcode.fileio import check_output_file

    check_output_file(args.out, "--out", SUFFIXES)
    ds = common.load_data(args)
    path = export_bioscan5m(ds, args.out)
    if not args.quiet:
        print(f"wrote {len(ds.table):,} records in BIOSCAN-5M format to {path}")
    return 0
