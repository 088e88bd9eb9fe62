"""`favor train --stage align --corpus DIR --out CKPT`: train the retrieval alignment of a FAVOR model.

    favor train --stage align --corpus DIR --out CKPT [--model demo] [--steps N] [--visual-steps N]
                [--speech-steps N] [--batch N] [--threads N] [--full] [--resume] [--json]

Writes an aligned checkpoint to CKPT (a FAVOR checkpoint + retrieval heads; `--model CKPT` of search/index use it),
with training_state.pt (resume) and train_log.jsonl (loss per logged step). `--stage qa` is another issue.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_NOT_IMPLEMENTED = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a stage of the model (align: cross-modal retrieval)",
        description="Train the retrieval alignment (text <-> windows, audio <-> video) on a synthetic corpus.",
    )
    parser.add_argument("--stage", choices=("align", "qa"), required=True, help="what to train")
    parser.add_argument("--corpus", metavar="DIR", help="corpus directory with manifest.jsonl (favor corpus synth)")
    parser.add_argument("--out", metavar="CKPT", help="output checkpoint directory")
    parser.add_argument("--model", default="demo", help="preset or FAVOR checkpoint to start from (default demo)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: AlignConfig.steps)")
    parser.add_argument("--visual-steps", type=int, default=None, metavar="N", help="visual frame stage steps")
    parser.add_argument("--speech-steps", type=int, default=None, metavar="N", help="speech event stage steps")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="windows per step")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the model side")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="N", help="steps between checkpoints")
    parser.add_argument("--threads", type=int, default=None, 
                        help="torch threads (default 1: faster than 2 on a shared 2-core CPU)")
    parser.add_argument("--cache-dir", default=None, help="per-file feature cache (default OUT/window_cache)")
    parser.add_argument("--seed", type=int, default=None, help="training seed")
    parser.add_argument("--full", action="store_true",
                        help="train the whole causal Q-Former (slow) instead of the cached-slot fast path")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    if args.stage == "qa":
        print("favor train: --stage qa is not implemented yet", file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED
    if not args.corpus or not args.out:
        print("favor: error: --stage align needs --corpus DIR and --out CKPT", file=sys.stderr)
        return 2
    import dataclasses
    from pathlib import Path

    from favor_ops.corpus.manifest import MANIFEST_NAME
    from favor_ops.training.align import AlignConfig, train_align

    if not (Path(args.corpus) / MANIFEST_NAME).is_file():
        print(f"favor: error: no {MANIFEST_NAME} in {args.corpus} (make one with `favor corpus synth`)",
              file=sys.stderr)
        return 2
    changes = {"model": args.model}
    for field, value in (("steps", args.steps), ("visual_steps", args.visual_steps),
                         ("speech_steps", args.speech_steps), ("batch_windows", args.batch), ("lr", args.lr),
                         ("checkpoint_every", args.checkpoint_every), ("num_threads", args.threads),
                         ("cache_dir", args.cache_dir), ("seed", args.seed)):
        if value is not None:
            changes[field] = value
    if args.full:
        changes["train_frame_attention"] = True
    cfg = dataclasses.replace(AlignConfig(), **changes)
    summary = train_align(args.corpus, args.out, cfg, resume=args.resume)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        last = summary.get("last") or {}
        print(f"aligned checkpoint: {summary['out']}")
        print(f"steps {summary['start_step']} -> {summary['steps']} on {summary['train_windows']} windows "
              f"({summary['files']} files) in {summary['elapsed_s']:.1f} s; last loss "
              f"{last.get('loss', float('nan')):.4f}")
    return 0
