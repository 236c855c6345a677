"""``benchbarcode cache info`` and ``cache clear``."""

from __future__ import annotations

import json

from tabulate import tabulate

from benchbarcode.cli.common import CACHE_HELP


def add_parser(sub) -> object:
    cache = sub.add_parser("cache", help="show or clear the cache (embeddings, pretrained encoders, generated data)",
                           description=f"Embeddings and pretrained encoders are cached by identity, generated "
                                       f"data sets (sim-large) by size and seed; {CACHE_HELP}.")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    p = cache_sub.add_parser("info", help="where the cache is and how large each part is")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=handle, _parser=p)
    p = cache_sub.add_parser("clear", help="remove one part of the cache, or all of it")
    p.add_argument("--what", choices=["all", "embeddings", "pretrained", "shards", "data"], default="all",
                   help="which part to remove (default all; shards: what an interrupted torchrun "
                        "embedding left; data: generated sim-large twins, 3.7 GB at full size)")
    p.set_defaults(func=handle, _parser=p)
    return cache


def handle(args) -> int:
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
