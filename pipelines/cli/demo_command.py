"""`favor demo`: the whole path on the embedded default, printing what it did.

Stages run today: a synthetic corpus (reused when its manifest matches the
requested seed and size), then every file decoded at the model's frame rate,
synchronised and cut into windows, with a per-file summary and the typed
errors of the broken inputs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEMO_VIDEOS = 16
DEMO_SEED = 7
DEMO_MAX_DURATION_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole path on the embedded default (synthetic corpus) and print what it did",
        description=(
            "Build a synthetic audio-visual corpus under WORKDIR (reused when unchanged), decode every file "
            "at 2 FPS with 16 kHz audio, synchronise speech frames with video frames, cut 5 s windows, "
            "and print a summary, including the typed errors of the deliberately broken files."
        ),
    )
    parser.add_argument("--workdir", default=".favor/demo", help="where the corpus and outputs go (default: .favor/demo)")
    parser.add_argument("--videos", type=int, default=DEMO_VIDEOS, help=f"good videos in the corpus (default: {DEMO_VIDEOS})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"corpus seed (default: {DEMO_SEED})")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of tables")
    parser.set_defaults(handler=run_demo)


def _corpus_is_current(corpus_dir: Path, expected: dict) -> bool:
    stamp = corpus_dir / "demo-corpus.json"
    return stamp.exists() and (corpus_dir / "manifest.jsonl").exists() and json.loads(stamp.read_text()) == expected


def run_demo(args: argparse.Namespace) -> int:
    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.corpus.synth import synthesize_corpus
    from favor_ops.errors import StageError
    from favor_ops.media.decode import DecodeConfig, decode
    from favor_ops.media.sync import audio_slots_per_frame, frame_audio_index
    from favor_ops.media.windowing import WindowSpec, num_windows

    started = time.perf_counter()
    workdir = Path(args.workdir)
    corpus_dir = workdir / "corpus"
    params = {"videos": args.videos, "seed": args.seed, "include_bad": True, "max_duration_s": DEMO_MAX_DURATION_S}

    say = (lambda *a, **k: None) if args.json else print
    say(f"[1/2] synthetic corpus: {corpus_dir}")
    if _corpus_is_current(corpus_dir, params):
        say(f"      reusing the existing corpus (seed {args.seed}, {args.videos} videos + broken files)")
        records = read_manifest(corpus_dir)
    else:
        corpus_dir.mkdir(parents=True, exist_ok=True)
        records = synthesize_corpus(
            corpus_dir, n_videos=args.videos, seed=args.seed, include_bad=True, max_duration_s=DEMO_MAX_DURATION_S
        )
        (corpus_dir / "demo-corpus.json").write_text(json.dumps(params))
        say(f"      wrote {len(records)} files in {time.perf_counter() - started:.1f} s")

    cfg = DecodeConfig()
    spec = WindowSpec()
    say(f"[2/2] decode at {cfg.fps:g} FPS, {cfg.image_size}x{cfg.image_size}, {cfg.sample_rate_hz} Hz audio; "
        f"{audio_slots_per_frame(cfg.fps)} speech slots per frame; windows of {spec.frames_per_window} frames")
    rows, failures = [], []
    for record in records:
        uri = str(corpus_dir / record["file"])
        try:
            media = decode(uri, cfg)
        except StageError as err:
            failures.append({"file": record["file"], "stage": err.stage, "error_type": err.error_type,
                             "reason": err.reason, "expected": (record.get("broken") or {}).get("expected_error")})
            continue
        n_frames = len(media.frames_rgb)
        n_speech_frames = int(len(media.audio) / cfg.sample_rate_hz * 50)
        _, slot_mask = frame_audio_index(n_frames, n_speech_frames, cfg.fps)
        rows.append({
            "file": record["file"], "kind": record["kind"], "duration_s": round(media.info.duration_s, 2),
            "frames": n_frames, "windows": num_windows(n_frames, spec),
            "audio_s": round(len(media.audio) / cfg.sample_rate_hz, 2),
            "speech_slots_filled": int(slot_mask.sum()), "segments": len(record.get("segments", [])),
        })

    elapsed = time.perf_counter() - started
    summary = {"corpus": str(corpus_dir), "decoded": rows, "failures": failures, "elapsed_s": round(elapsed, 1)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"\n{'file':<16} {'kind':<12} {'dur s':>7} {'frames':>6} {'windows':>7} {'audio s':>8} {'segments':>8}")
    for r in rows:
        print(f"{r['file']:<16} {r['kind']:<12} {r['duration_s']:>7.2f} {r['frames']:>6} {r['windows']:>7} "
              f"{r['audio_s']:>8.2f} {r['segments']:>8}")
    print(f"\nbroken inputs, each a typed error (as a `failures` row will record it):")
    for f in failures:
        mark = "ok" if f["expected"] in (None, f["error_type"]) else f"expected {f['expected']}"
        print(f"  {f['file']:<16} stage={f['stage']:<7} {f['error_type']:<22} {f['reason'][:60]}  [{mark}]")
    total_windows = sum(r["windows"] for r in rows)
    print(f"\ndone in {elapsed:.1f} s: {len(rows)} files decoded into {total_windows} windows, "
          f"{len(failures)} broken files reported as typed errors.")
    print("Not yet in the demo: model encoding, the Beam index job, LanceDB search and answers.")
    return 0
