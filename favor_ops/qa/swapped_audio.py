"""The swapped-audio negative of "Does the audio match the video?": a clip's picture with another clip's audio.

In the synthetic corpus what is heard is linked to what is seen by timing only (a shape pulses while its event
sounds, favor_ops.corpus.plan). Another clip's audio is therefore a mismatch only if its events sound at other
moments. At the model's frame rate (2 FPS) two clips can sound in exactly the same 0.5 s frames, e.g. two 1 s clips
with one word each in their first half second; such a swap cannot be told from the clip's own audio, by the model or
by anyone watching at that rate. The partner is the next usable clip (cyclic, in manifest order) whose audio, tiled
to the clip's length as `fit_audio` lays it, sounds in a different set of frames than the clip's own; when no clip
does, or the manifest lists no audio events (not a synthetic corpus), the next usable clip.
"""

from __future__ import annotations

import math

import numpy as np


def usable_for_swap(record: dict) -> bool:
    return bool(record.get("has_audio") and record.get("has_video") and record.get("kind") != "bad"
                and not record.get("broken"))


def sounding_frames(record: dict, duration_s: float, fps: float) -> np.ndarray | None:
    """(n_frames,) bool: which 1/fps s frames of [0, duration_s) hear one of the record's audio events (not silence),
    its track repeated every record["duration_s"] seconds (fit_audio's tiling); None when the record lists no
    audio events."""
    segments = record.get("segments") or []
    if not any("audio_events" in s for s in segments):
        return None
    period_s = float(record.get("duration_s") or 0.0)
    frame_s = 1.0 / fps
    n_frames = max(1, math.ceil(duration_s * fps - 1e-6))
    sounding = np.zeros(n_frames, bool)
    for seg in segments:
        for ev in seg.get("audio_events", []):
            if ev.get("type") == "silence":
                continue
            offset = 0.0
            while offset < duration_s:
                t0, t1 = ev["t_start"] + offset, ev["t_end"] + offset
                first, last = int(t0 // frame_s), math.ceil(t1 / frame_s)  # frames [first, last) overlap [t0, t1)
                sounding[max(first, 0):min(last, n_frames)] = True
                if period_s <= 0:
                    break
                offset += period_s
    return sounding


def swapped_partner(records: list[dict], clip_id: str, fps: float = 2.0) -> dict:
    """The clip whose audio replaces `clip_id`'s for the swapped-audio negative (see module doc)."""
    usable = [r for r in records if usable_for_swap(r)]
    ids = [r["clip_id"] for r in usable]
    i = ids.index(clip_id)
    own = usable[i]
    duration_s = float(own.get("duration_s") or 0.0)
    own_frames = sounding_frames(own, duration_s, fps)
    for step in range(1, len(usable)):
        candidate = usable[(i + step) % len(usable)]
        theirs = sounding_frames(candidate, duration_s, fps)
        if own_frames is None or theirs is None or not np.array_equal(own_frames, theirs):
            return candidate
    return usable[(i + 1) % len(usable)]


def fit_audio(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Tile or trim a waveform to n_samples (the swapped audio must cover the whole video)."""
    if len(audio) == 0:
        return np.zeros(n_samples, np.float32)
    reps = -(-n_samples // len(audio))
    return np.tile(audio, reps)[:n_samples].astype(np.float32)
