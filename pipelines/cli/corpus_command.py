"""`favor corpus synth DIR`: write a synthetic audio-visual corpus and its ground-truth manifest.jsonl."""

from __future__ import annotations

import argparse
import json
import sys
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="synthetic audio-visual corpus with ground truth",
        description="Synthetic audio-visual corpus (coloured shapes + espeak-ng words, beeps, noise) with a manifest.",
    )
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    synth = sub.add_parser(
        "synth",
        help="write N synthetic clips and DIR/manifest.jsonl",
        description="Write N synthetic clips (varied containers, codecs, rates, sizes) and DIR/manifest.jsonl.",
    )
    synth.add_argument("dir", metavar="DIR", help="output directory (created if missing)")
    synth.add_argument("--videos", type=int, default=12, help="number of clips (default 12: one of each variant)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    synth.add_argument("--bad", action="store_true", help="also write 4 broken inputs (zero bytes, truncated, ...)")
    synth.add_argument("--min-duration", type=float, default=1.0, metavar="S", help="shortest clip, seconds")
    synth.add_argument("--max-duration", type=float, default=180.0, metavar="S", help="longest clip, seconds")
    synth.add_argument("--workers", type=int, default=2, help="parallel encodes (default 2)")
    synth.add_argument("--profile", default="default", choices=("default", "training"),
                       help="segment statistics: default, or training (more, shorter segments with spoken words)")
    synth.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    synth.set_defaults(handler=run_synth)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def summarize(records: list[dict]) -> dict[str, dict]:
    """Per kind: number of files, total duration_s and the containers used."""
    by_kind: dict[str, dict] = {}
    for r in records:
        k = by_kind.setdefault(r["kind"], {"files": 0, "duration_s": 0.0, "containers": []})
        k["files"] += 1
        k["duration_s"] = round(k["duration_s"] + float(r["duration_s"] or 0.0), 6)
        if r["container"] not in k["containers"]:
            k["containers"].append(r["container"])
    return by_kind


def run_synth(args: argparse.Namespace) -> int:
    from favor_ops.corpus.plan import CORPUS_PROFILES
    from favor_ops.corpus.synth import synthesize_corpus

    if args.videos < 0:
        raise ValueError(f"--videos must be >= 0, got {args.videos}")
    t0 = time.perf_counter()
    records = synthesize_corpus(
        args.dir, args.videos, args.seed, include_bad=args.bad,
        min_duration_s=args.min_duration, max_duration_s=args.max_duration,
        progress=not args.json, workers=args.workers, cfg=CORPUS_PROFILES[args.profile],
    )
    elapsed_s = time.perf_counter() - t0
    by_kind = summarize(records)
    if args.json:
        print(json.dumps({"dir": args.dir, "files": len(records), "by_kind": by_kind, "elapsed_s": round(elapsed_s, 3)}))
        return 0
    for kind, k in by_kind.items():
        print(f"{kind:<12} {k['files']:>4} files  {k['duration_s']:>8.1f} s  ({', '.join(k['containers'])})")
    print(f"total        {len(records):>4} files in {elapsed_s:.1f} s -> {args.dir}/manifest.jsonl")
    return 0
