"""`favor train --stage align --corpus DIR --out CKPT`: train the retrieval alignment of a FAVOR model.

    favor train --stage align --corpus DIR --out CKPT [--model demo] [--steps N] [--visual-steps N]
                [--speech-steps N] [--batch N] [--threads N] [--full] [--resume] [--json]

    favor train --stage qa --corpus DIR --model CKPT [--out CKPT2] [--steps N] [--batch N] [--resume] [--json]

align writes an aligned checkpoint to CKPT (a FAVOR checkpoint + retrieval heads; `--model CKPT` of search/index use
it), with training_state.pt (resume) and train_log.jsonl (loss per logged step). qa adds CKPT/qa/ (the LLM side that
`favor ask` uses) to the aligned checkpoint given by --model (or to a copy of it in --out).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a stage of the model (align: cross-modal retrieval; qa: the LLM side)",
        description=("Train the retrieval alignment (text <-> windows, audio <-> video), or the question-answering "
                     "LLM side over the aligned model's window tokens, on a synthetic corpus."),
    )
    parser.add_argument("--stage", choices=("align", "qa"), required=True, help="what to train")
    parser.add_argument("--corpus", metavar="DIR", help="corpus directory with manifest.jsonl (favor corpus synth)")
    parser.add_argument("--out", metavar="CKPT", help="output checkpoint directory (qa: default --model itself)")
    parser.add_argument("--model", default=None,
                        help="align: preset or FAVOR checkpoint to start from (default demo); "
                             "qa: the aligned checkpoint (default: the demo checkpoint)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: AlignConfig.steps)")
    parser.add_argument("--visual-steps", type=int, default=None, metavar="N", help="visual frame stage steps")
    parser.add_argument("--speech-steps", type=int, default=None, metavar="N", help="speech event stage steps")
    parser.add_argument("--frame-vector-steps", type=int, default=None, metavar="N",
                        help="frame vector stage steps (per-frame heard/seen vectors for QA; 0 = none)")
    parser.add_argument("--no-speech-shift", action="store_true",
                        help="speech event stage without the random time shift of each waveform")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="windows per step")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the model side")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="N", help="steps between checkpoints")
    parser.add_argument("--threads", type=int, default=None, 
                        help="torch threads (default 1: faster than 2 on a shared 2-core CPU)")
    parser.add_argument("--cache-dir", default=None, help="per-file feature cache (default OUT/window_cache)")
    parser.add_argument("--seed", type=int, default=None, help="training seed")
    parser.add_argument("--full", action="store_true",
                        help="train the whole causal Q-Former (slow) instead of the cached-slot fast path")
    parser.add_argument("--av-from", choices=("frames", "queries"), default=None,
                        help="align: audio/visual vectors from the window's frames (default) or from the "
                             "single-modality passes' query tokens")
    parser.add_argument("--av-frame-kernel", type=int, default=None, metavar="N",
                        help="align: frames each frame's audio/visual features see (odd; default 3)")
    parser.add_argument("--recombined-share", type=float, default=None, metavar="X",
                        help="qa: share of each batch from clips recombined from the corpus's windows (0-1; default "
                             "QATrainConfig.recombined_share)")
    parser.add_argument("--no-text-space-init", action="store_true",
                        help="qa: start the scratch LM's word embeddings at random, not in the retrieval text space")
    parser.add_argument("--no-heard-words", action="store_true",
                        help="qa: do not add to each window the embedding of the corpus word it sounds like")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    if args.stage == "qa":
        return run_train_qa(args)
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
    changes = {"model": args.model or "demo"}
    for field, value in (("steps", args.steps), ("visual_steps", args.visual_steps),
                         ("speech_steps", args.speech_steps), ("frame_vector_steps", args.frame_vector_steps),
                         ("batch_windows", args.batch), ("lr", args.lr),
                         ("checkpoint_every", args.checkpoint_every), ("num_threads", args.threads),
                         ("cache_dir", args.cache_dir), ("seed", args.seed),
                         ("av_frame_kernel", args.av_frame_kernel)):
        if value is not None:
            changes[field] = value
    if args.full:
        changes["train_frame_attention"] = True
    if args.no_speech_shift:
        changes["speech_shift"] = False
    if args.av_from is not None:
        changes["av_frames"] = args.av_from == "frames"
    cfg = dataclasses.replace(AlignConfig(), **changes)
    summary = train_align(args.corpus, args.out, cfg, resume=args.resume)
    _print_summary(args, summary, f"aligned checkpoint: {summary['out']}",
                   f"{summary['train_windows']} windows ({summary['files']} files)")
    return 0


def _print_summary(args: argparse.Namespace, summary: dict, headline: str, trained_on: str) -> None:
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return
    last = summary.get("last") or {}
    print(headline)
    print(f"steps {summary['start_step']} -> {summary['steps']} on {trained_on} in {summary['elapsed_s']:.1f} s; "
          f"last loss {last.get('loss', float('nan')):.4f}")


def run_train_qa(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from favor_ops.corpus.manifest import MANIFEST_NAME
    from favor_ops.models.default_checkpoint import default_model_spec
    from favor_ops.training.qa_train import QATrainConfig, train_qa

    if not args.corpus or not (Path(args.corpus) / MANIFEST_NAME).is_file():
        print(f"favor: error: --stage qa needs --corpus DIR with a {MANIFEST_NAME} (make one with "
              f"`favor corpus synth`)", file=sys.stderr)
        return EXIT_BAD_INPUT
    model = args.model or default_model_spec()
    if not Path(model).is_dir() and not args.out:
        print(f"favor: error: --model {model} is a preset; give --out CKPT (or train --stage align first)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    changes = {}
    for field, value in (("steps", args.steps), ("batch_questions", args.batch), ("lr", args.lr),
                         ("checkpoint_every", args.checkpoint_every), ("num_threads", args.threads),
                         ("seed", args.seed)):
        if value is not None:
            changes[field] = value
    if args.recombined_share is not None:
        if not 0.0 <= args.recombined_share <= 1.0:
            print(f"favor: error: --recombined-share must be in [0, 1], got {args.recombined_share}", file=sys.stderr)
            return EXIT_BAD_INPUT
        changes["recombined_share"] = args.recombined_share
    if args.no_text_space_init:
        changes["text_space_init"] = False
    if args.no_heard_words:
        changes["heard_words"] = False
    cfg = dataclasses.replace(QATrainConfig(), **changes)
    summary = train_qa(args.corpus, model, args.out, cfg, resume=args.resume, progress=not args.json)
    _print_summary(args, summary, f"QA model: {summary['out']}/qa ({summary['qa_preset']} preset)",
                   f"{summary['questions']} questions ({summary['clips']} clips)")
    return 0
