"""``benchbarcode pretrain``: pretrain an in-house encoder at a stated budget."""

from __future__ import annotations

from benchbarcode.cli import common
from benchbarcode.cli.common import add_data_options, add_protocol_option, positive, preset_names, pretrainable


def add_parser(sub) -> None:
    p = sub.add_parser("pretrain", help=f"pretrain an in-house encoder ({', '.join(pretrainable())}) "
                                        "at a stated budget",
                       description="Pretrain an in-house encoder on the pretraining corpus of SOURCE "
                                   "(splits pretrain + other_heldout + train, never an evaluation "
                                   "split; --protocol reference: pretrain + other_heldout). Runs unchanged "
                                   "under torchrun (DDP).")
    p.add_argument("--encoder", required=True, metavar="NAME", help=f"one of: {', '.join(pretrainable())}")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (opens with transformers.AutoModel.from_pretrained)")
    p.add_argument("--preset", default="tiny", metavar="P",
                   help=f"tiny (the CPU default) or another preset of the objective: {preset_names()}")
    p.add_argument("--steps", type=int, metavar="N", help="optimiser steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, metavar="B", help="global batch size (default: the preset's)")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate (default: the preset's)")
    p.add_argument("--warmup-steps", type=int, metavar="N",
                   help="linear warm-up of the one-cycle schedule (default: the preset's)")
    p.add_argument("--mask-ratio", type=float, metavar="R",
                   help="objectives that mask tokens: fraction of valid k-mers masked "
                        "(default: the preset's, 0.5)")
    p.add_argument("--loss-on", choices=["masked", "all"],
                   help="masked objectives: loss on the masked positions only (default, as the papers) or on "
                        "all positions (keeps each token's identity in the top layer)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights, batches, masks (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="autocast compute dtype (default: bfloat16 on CUDA, float32 on CPU; bfloat16 speeds up "
                        "CPUs with AVX-512 BF16 / AMX, see: benchbarcode profile --mode train)")
    p.add_argument("--compile", action="store_true",
                   help="run the step under torch.compile (one graph; the first step pays the compilation, "
                        "printed and recorded; worth it for long runs, see docs/cost.md)")
    p.add_argument("--checkpoint-every", type=positive, metavar="N",
                   help="save a resumable checkpoint every N steps (default: a tenth of the run, >= 50); Ctrl-C "
                        "saves one after the step in flight")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in DIR exactly")
    p.add_argument("--overwrite", action="store_true", help="replace what DIR holds and start clean")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_data_options(p)
    add_protocol_option(p)
    p.set_defaults(func=handle, _parser=p)


def handle(args) -> int:
    from benchbarcode.pretrain import PretrainOptions, pretrain
    from benchbarcode.spec import EncoderSpec

    spec = EncoderSpec(name=args.encoder, preset=args.preset, steps=args.steps, seed=args.seed, device=args.device,
                       dtype=args.dtype)
    opts = PretrainOptions(encoder=spec, out=args.out, batch_size=args.batch_size, lr=args.lr,
                           warmup_steps=args.warmup_steps, mask_ratio=args.mask_ratio, loss_on=args.loss_on,
                           max_length=args.max_length, checkpoint_every=args.checkpoint_every, resume=args.resume,
                           overwrite=args.overwrite, progress=not args.quiet, compile=args.compile)
    plan = opts.validate()
    meta = pretrain(plan.job(common.load_data(args)))
    if not args.quiet:
        b = meta["budget"]
        print(f"pretrained {args.encoder} ({args.preset}) -> {args.out}: {b['steps']} steps, "
              f"{b['sequences']:,} sequences, {b['input_tokens']:,} tokens "
              f"({b['encoder_tokens']:,} through the encoder), {b['flops']:.3g} FLOPs, "
              f"{b['train_seconds']:.0f} s; final loss {meta['loss_history'][-1][1]:.3f}")
    return 0
