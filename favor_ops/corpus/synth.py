"""synthesize_corpus: plan, render, encode and describe a synthetic audio-visual corpus.

Files are written by a small thread pool: the heavy work runs in ffmpeg
subprocesses (single-threaded each) and in numpy, so threads overlap well, need
no pickling and no `__main__` guard in callers; every file is rendered into a private temp
directory inside out_dir and moved into place when complete. The manifest is
written last, in plan order, followed by the bad inputs when requested.

Segment record (manifest "segments" entries):
  {"t_start", "t_end",
   "visual": {"color", "rgb", "shape", "motion", "background", "background_rgb",
              "sounding_spans": [[t0, t1], ...]  (seconds the shape is drawn sounding, see scene.sounding_spans)}
             | null (no video),
   "audio": {"word", "sound", "tone_hz"} | null (no audio track),
   "audio_events": [{"type": "word", "word", "t_start", "t_end"} | {"type": "tone", "hz", ...}
                    | {"type": "noise", ...} | {"type": "silence", ...}],
   "caption": str}
Still images: duration_s 0.0 and one segment with t_start == t_end == 0.0.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed

from favor_ops.corpus import bad_inputs, encode, scene, soundtrack
from favor_ops.corpus.manifest import sha256_file, write_manifest
from favor_ops.corpus.plan import ClipPlan, CorpusConfig, SegmentPlan, caption, plan_corpus

TMP_PREFIX = ".favor-corpus-tmp-"


def _number(x: float) -> int | float:
    """Whole numbers as int (fps 30, not 30.0); others rounded to 6 decimals."""
    return int(x) if float(x).is_integer() else round(float(x), 6)


def segment_record(segment: SegmentPlan, audio_events: list[dict], cfg: CorpusConfig) -> dict:
    v, a = segment.visual, segment.audio
    spans = scene.sounding_spans(segment.t_start, segment.t_end, audio_events, cfg)  # [] without audio events
    return {
        "t_start": segment.t_start,
        "t_end": segment.t_end,
        "visual": None if v is None else {
            "color": v.color, "rgb": list(v.rgb), "shape": v.shape, "motion": v.motion,
            "background": v.background, "background_rgb": list(v.background_rgb), "sounding_spans": spans,
        },
        "audio": None if a is None else {"word": a.word, "sound": a.sound, "tone_hz": a.tone_hz},
        "audio_events": audio_events,
        "caption": caption(segment),
    }


def clip_record(clip: ClipPlan, sha256: str, audio_events: list[list[dict]], cfg: CorpusConfig) -> dict:
    var = clip.variant
    fps = None
    if var.fps is not None:
        fps = _number(cfg.vfr_base_fps * sum(cfg.vfr_keep_pattern) / len(cfg.vfr_keep_pattern)) if var.vfr else var.fps
    return {
        "file": clip.file, "clip_id": clip.clip_id, "kind": var.kind, "container": var.container,
        "video_codec": var.video_codec, "audio_codec": var.audio_codec, "fps": fps, "vfr": var.vfr,
        "width": var.width, "height": var.height, "duration_s": clip.duration_s,
        "has_video": clip.has_video, "has_audio": clip.has_audio, "sha256": sha256, "broken": None,
        "segments": [segment_record(s, e, cfg) for s, e in zip(clip.segments, audio_events)],
    }


def render_clip(
    clip: ClipPlan, out_dir: str, cfg: CorpusConfig = CorpusConfig(), enc: encode.EncodeConfig = encode.EncodeConfig()
) -> dict:
    """Write one clip's file into out_dir and return its manifest record."""
    var = clip.variant
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=TMP_PREFIX) as work:
        tmp_out = os.path.join(work, clip.file)
        events: list[list[dict]] = [[] for _ in clip.segments]
        wav_path = None
        if clip.has_audio:
            track, events = soundtrack.render_soundtrack(clip, cfg)  # (T,) float32 @ cfg.sample_rate_hz
            wav_path = os.path.join(work, "soundtrack.wav")
            soundtrack.write_wav(wav_path, track, cfg.sample_rate_hz)
        if var.kind == "still_image":
            frame = scene.render_still(clip.segments[0].visual, var.width, var.height, cfg)
            encode.encode_still(tmp_out, frame, var.container, enc)
        elif clip.has_video:
            input_fps = cfg.vfr_base_fps if var.vfr else var.fps
            encode.encode_video(
                tmp_out, scene.iter_clip_frames(clip, input_fps, cfg, events), var.width, var.height, input_fps,
                var.container, var.video_codec, wav_path, var.audio_codec, enc,
                keep_frames=cfg.vfr_keep_pattern if var.vfr else None,
            )
        elif var.container == "wav":
            os.replace(wav_path, tmp_out)
        else:
            encode.encode_audio(tmp_out, wav_path, var.container, var.audio_codec, enc)
        final = os.path.join(out_dir, clip.file)
        os.replace(tmp_out, final)
    return clip_record(clip, sha256_file(final), events, cfg)


def _estimated_cost(clip: ClipPlan) -> float:
    """Rough encode cost (pixel-frames) used to start the heaviest clips first."""
    var = clip.variant
    if var.width and var.height and var.fps:
        factor = 3.0 if var.video_codec == "vp9" else 1.0
        return factor * var.width * var.height * var.fps * clip.duration_s
    return 2e4 * max(clip.duration_s, 1.0)


def synthesize_corpus(
    out_dir: str | os.PathLike,
    n_videos: int,
    seed: int,
    include_bad: bool = False,
    min_duration_s: float = 1.0,
    max_duration_s: float = 180.0,
    progress: bool = True,
    workers: int = 2,
    cfg: CorpusConfig = CorpusConfig(),
    enc: encode.EncodeConfig = encode.EncodeConfig(),
) -> list[dict]:
    """Write n_videos synthetic clips (+ 4 bad inputs if include_bad) and out_dir/manifest.jsonl.

    Deterministic: the same arguments give a byte-identical manifest (sha256s included).
    Returns the manifest records in file order.
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):  # leftovers of an interrupted run
        if name.startswith(TMP_PREFIX):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    clips = plan_corpus(n_videos, seed, min_duration_s, max_duration_s, cfg)
    records: dict[int, dict] = {}
    bad_records: list[dict] = []
    order = sorted(clips, key=_estimated_cost, reverse=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(clips) + int(include_bad), desc="corpus", unit="file", file=sys.stderr)
    if workers <= 1:
        for clip in order:
            records[clip.index] = render_clip(clip, out, cfg, enc)
            if bar:
                bar.update(1)
        if include_bad:
            bad_records = bad_inputs.write_bad_inputs(out, seed, cfg, enc)
            if bar:
                bar.update(1)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="favor-corpus") as pool:
            futures = {pool.submit(render_clip, clip, out, cfg, enc): clip.index for clip in order}
            bad_future = pool.submit(bad_inputs.write_bad_inputs, out, seed, cfg, enc) if include_bad else None
            for fut in as_completed([*futures, *([bad_future] if bad_future else [])]):
                if fut is bad_future:
                    bad_records = fut.result()
                else:
                    records[futures[fut]] = fut.result()
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    ordered = [records[c.index] for c in clips] + bad_records
    write_manifest(out, ordered)
    return ordered
