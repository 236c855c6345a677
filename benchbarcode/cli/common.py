"""What several commands share: option groups, building an encoder spec, the data loader, and
the one-line descriptions printed above tables."""

from __future__ import annotations

import argparse
import json
import sys

from benchbarcode.errors import UserError
from benchbarcode.protocol_names import DEFAULT_PROTOCOL, PROTOCOLS

CACHE_HELP = ("the cache lives in $BENCHBARCODE_CACHE, else $XDG_CACHE_HOME/benchbarcode, else "
              "~/.cache/benchbarcode (see: benchbarcode cache info)")


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def seed_list(text: str, flag: str = "--seeds") -> tuple[int, ...]:
    """``0,1,2`` -> (0, 1, 2); an empty item or one that is not an integer is a UserError naming
    ``flag`` and the item (negative and repeated seeds: :meth:`benchbarcode.run.RunOptions.validate`)."""
    seeds = []
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            raise UserError(f"{flag} {text!r}: item {position} is empty; expected comma-separated seeds, e.g. 0,1,2")
        try:
            seeds.append(int(item))
        except ValueError:
            raise UserError(f"{flag} {text!r}: item {position} ({item.strip()!r}) is not an integer; expected "
                            "comma-separated seeds, e.g. 0,1,2") from None
    return tuple(seeds)


def command_line() -> list[str]:
    """The command as typed, recorded in result files."""
    return ["benchbarcode", *sys.argv[1:]]


# ----------------------------------------------------------------------------- data
def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="sim", metavar="SOURCE",
                   help="sim (default), sim:SIZE, sim:SIZE:SEED, sim-large[:SIZE[:SEED]] (BIOSCAN-5M's "
                        "shape and split protocol, 5,150,850 records by default, generated once into the "
                        "cache), bioscan5m:DIR, or a file (BIOSCAN-5M CSV/TSV, BOLD v3 or v4 TSV, FASTA; "
                        ".gz is fine)")
    p.add_argument("--split-seed", type=int, default=0, metavar="S",
                   help="seed for derived splits (sources without a split column); default 0")
    p.add_argument("--max-length", type=positive, default=660, metavar="NT",
                   help="truncate sequences to NT nucleotides (default 660)")
    p.add_argument("--on-bad", choices=["error", "skip"], default="error",
                   help="invalid sequence characters: stop with an error (default) or drop and count")
    p.add_argument("--download", action="store_true",
                   help="with bioscan5m:DIR, download the metadata if absent (bioscan-dataset package)")


def add_protocol_option(p: argparse.ArgumentParser) -> None:
    """``--protocol`` (``run``, ``embed``, ``pretrain``, ``data describe``)."""
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help="benchbarcode (default): this suite's tasks on the data as loaded; reference: the "
                        "BIOSCAN-5M / BarcodeMAE reference code's protocol (identical barcodes dropped over the "
                        "whole file, first kept; pretraining corpus pretrain + other_heldout; open-world and "
                        "closed-world as the reference computes them; other tasks skipped)")


def load_data(args):
    from benchbarcode.data import load_barcodes

    return load_barcodes(args.data, seed=args.split_seed, max_length=args.max_length,
                         on_bad=args.on_bad, download=args.download,
                         progress=not getattr(args, "quiet", False),
                         protocol=getattr(args, "protocol", "benchbarcode"))


# ----------------------------------------------------------------------------- encoders
def pretrainable() -> list[str]:
    """Names of the encoders ``benchbarcode pretrain`` builds, from the registry (built-ins only:
    no plugin is imported to write a help text)."""
    from benchbarcode.registry import list_encoders

    return [e.name for e in list_encoders(plugins=False) if e.meta.pretrainable]


def preset_names() -> str:
    from benchbarcode.models.presets import PRESETS

    return "; ".join(f"{objective}: {', '.join(names)}" for objective, names in PRESETS.items())


def add_encoder_options(p: argparse.ArgumentParser, command: str) -> None:
    """The options that make an :class:`~benchbarcode.spec.EncoderSpec` (``run`` and ``embed``)."""
    p.add_argument("--encoder", required=True, metavar="NAME",
                   help="a registered encoder, or hf:MODEL (a Hugging Face hub id or local directory); "
                        "see: benchbarcode encoders")
    p.add_argument("--checkpoint", metavar="PATH",
                   help=f"weights to load: a directory written by 'benchbarcode pretrain' or a reference "
                        f".pt file (in-house encoders), a local copy of a preset's model (hf presets); "
                        f"without it, {'/'.join(pretrainable())} are pretrained once with --preset and cached")
    p.add_argument("--preset", default="tiny", metavar="P",
                   help=f"pretraining preset when no --checkpoint is given (default tiny; {preset_names()})")
    p.add_argument("--steps", type=int, metavar="N",
                   help="pretrain for N steps instead of the preset's (an equal, stated budget)")
    p.add_argument("--encoder-option", action="append", metavar="KEY=VALUE",
                   help="passed to the encoder's factory, e.g. like=mlm (random) or k=4 (kmer); repeatable")
    p.add_argument("--revision", metavar="REV",
                   help="hf encoders: the hub revision to load (branch, tag or commit; the commit it "
                        "resolves to is recorded)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="hf encoders: allow a model repository's own Python code to run (off by default)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="inference dtype, for encoders that take one (hf: default float32)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to embed (and pretrain): auto = cuda when a GPU is visible (default)")
    seeded = ("pretraining and random-init weights" if command == "embed"
              else "pretraining, random-init weights, --limit subsets and task repeats")
    p.add_argument("--seed", type=int, default=0, metavar="S", help=f"seed of {seeded} (default 0)")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="embedding batch size (default 64)")
    p.add_argument("--no-cache", action="store_true",
                   help=f"neither read nor write the embedding and pretraining cache; {CACHE_HELP}")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars or summary line" if command == "embed"
                   else "no progress bars or tables; only where the results went")


def encoder_options(pairs: list[str] | None) -> dict:
    """``KEY=VALUE`` pairs; a VALUE that parses as JSON (numbers, true/false) is taken as such."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--encoder-option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def encoder_spec(args):
    """The :class:`~benchbarcode.spec.EncoderSpec` the options of :func:`add_encoder_options` name;
    ``--revision`` and ``--trust-remote-code`` go to the factory only when given (an encoder that
    does not take them then says so)."""
    from benchbarcode.spec import EncoderSpec

    options = encoder_options(args.encoder_option)
    for flag, value in (("revision", args.revision), ("trust_remote_code", args.trust_remote_code or None)):
        if value is not None:
            options[flag] = value
    return EncoderSpec(name=args.encoder, checkpoint=args.checkpoint, options=options, preset=args.preset,
                       steps=args.steps, seed=args.seed, device=args.device, dtype=args.dtype)


def caching(args):
    from benchbarcode.run import Caching

    return Caching(enabled=not args.no_cache)


# ----------------------------------------------------------------------------- descriptions
def encoder_line(meta: dict) -> str:
    from benchbarcode.contracts import Similarity

    params = "unknown" if meta["parameters"] is None else f"{meta['parameters']:,}"
    similarity = Similarity.of(meta.get("similarity"))
    shape = (f"{meta['embedding_dim']}-d" if similarity.is_embedding
             else f"not an embedding: compared by {similarity.value}")
    return f"encoder {meta['name']} ({meta['family']}, {params} parameters, {shape})"


def budget_line(meta: dict) -> str:
    """The encoder line with its pretraining budget: this suite's numbers, or one of the two
    phrases of :func:`benchbarcode.summary.unstated_budget` (third-party weights whose file counted
    its own steps add those counts, as the file's)."""
    from benchbarcode.summary import unstated_budget

    budget = meta.get("budget") or {}
    stated = unstated_budget(budget)
    counts = [f"{budget[key]:,} {key}" for key in ("steps", "sequences", "epochs")
              if budget.get(key) and (stated or key != "epochs")]
    counts += [f"{budget['flops']:.3g} FLOPs"] if budget.get("flops") else []
    if stated is None:
        stated = ", ".join(counts)
    elif counts:  # a published checkpoint's own counters
        stated += f"; its checkpoint records {', '.join(counts)}"
    return f"{encoder_line(meta)}; pretraining budget: {stated}"


def overlap_line(data: dict) -> str:
    """Evaluation records with an identical sequence in the pretraining corpus (kept, as in
    BIOSCAN-5M's own split; stated so a reader can judge)."""
    parts = [f"{split} {o['in_pretraining_corpus']:,} of {o['records']:,} "
             f"({o['in_pretraining_corpus'] / o['records']:.0%})"
             for split, o in (data.get("overlap_with_pretraining") or {}).items() if o["records"]]
    return ("evaluation records with an identical sequence in the pretraining corpus: "
            + (", ".join(parts) if parts else "none"))
