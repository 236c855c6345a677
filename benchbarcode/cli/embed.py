"""``benchbarcode embed``: write embeddings (every record, or one split) to a .npz file."""

from __future__ import annotations

from benchbarcode.cli import common
from benchbarcode.cli.common import add_data_options, add_encoder_options, add_protocol_option, caching, encoder_spec


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="write embeddings (every record, or one split) to a .npz file",
                       description="Embed the records of SOURCE (or of one --split) with an encoder; the .npz "
                                   "holds embeddings (float32 [N, D]), processid, genus, species and split "
                                   "('' for missing).")
    add_encoder_options(p, "embed")
    p.add_argument("--split", metavar="SPLIT", help="one split, e.g. train or test_unseen (default: every record)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    add_data_options(p)
    add_protocol_option(p)
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from benchbarcode.run import EmbedOptions, embed_to_file

    opts = EmbedOptions(encoder=encoder_spec(args), out=args.out, split=args.split, batch_size=args.batch_size,
                        progress=not args.quiet, caching=caching(args), protocol=args.protocol)
    encoder = opts.validate()
    report = embed_to_file(opts, encoder, common.load_data(args))
    if report.main and not args.quiet:
        print(f"wrote {report.rows:,} x {report.dim} embeddings of {args.split or 'every record'} "
              f"({report.encoder['name']}{', from the cache' if report.cache_state == 'hit' else ''}) to {args.out}")
    return 0
