"""Visual rendering: a coloured shape, static or moving, on a flat background, as raw RGB frames.

Frame k of a clip shows time k / fps; it shows the segment whose [t_start, t_end)
contains that time. A shape's boolean mask is computed once per segment and
pasted at a (possibly moving) offset, so rendering is a copy and a masked
assignment per frame. Moving shapes travel along the frame's long axis from one
margin to the other over the segment and always stay fully inside the frame.
While one of the segment's audio events plays (its `sounding_spans`), the shape
is drawn `cfg.sounding_scale` times larger: the object on screen is the one
making the sound (see CorpusConfig).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from favor_ops.corpus.plan import ClipPlan, CorpusConfig, SegmentPlan, VisualPlan

_FILL_PROBE_PX = 256  # mask side used to measure each shape's fill ratio of its bounding square


def shape_mask(shape: str, side_px: int) -> np.ndarray:
    """(side_px, side_px) bool: the shape inscribed in a square, centred, pointing up."""
    n = int(side_px)
    c = (np.arange(n, dtype=np.float64) + 0.5) / n * 2.0 - 1.0  # pixel centres in [-1, 1]
    x, y = np.meshgrid(c, c)  # (n, n) each; y grows downwards
    if shape == "circle":
        return x * x + y * y <= 1.0
    if shape == "square":
        return np.ones((n, n), dtype=bool)
    if shape == "triangle":  # apex at top centre, base along the bottom edge
        return (y <= 1.0) & (y >= -1.0 + 2.0 * np.abs(x))
    if shape == "star":  # five points, inner radius half the outer radius
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
        verts = np.stack([radii * np.cos(angles), radii * np.sin(angles) + 0.1], axis=1)  # (10, 2), nudged to centre
        return _inside_polygon(x, y, verts)
    raise ValueError(f"unknown shape {shape!r}")


def _inside_polygon(x: np.ndarray, y: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon; x, y (n, n) float; verts (V, 2)."""
    inside = np.zeros(x.shape, dtype=bool)
    for i in range(len(verts)):
        x0, y0 = verts[i]
        x1, y1 = verts[(i + 1) % len(verts)]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


@lru_cache(maxsize=None)
def shape_fill_ratio(shape: str) -> float:
    """Fraction of its bounding square a shape covers."""
    return float(shape_mask(shape, _FILL_PROBE_PX).mean())


def shape_side_px(shape: str, width: int, height: int, cfg: CorpusConfig) -> int:
    """Side of the shape's bounding square so it covers ~cfg.shape_area_fraction of the frame."""
    want = math.sqrt(cfg.shape_area_fraction * width * height / shape_fill_ratio(shape))
    cap = cfg.shape_max_extent_fraction * min(width, height)
    return max(2, int(round(min(want, cap))))


def sounding_side_px(side_px: int, width: int, height: int, cfg: CorpusConfig) -> int:
    """Side of the shape's bounding square while it sounds: cfg.sounding_scale times larger, capped by the frame."""
    return max(side_px, min(int(round(side_px * cfg.sounding_scale)), min(width, height)))


def sounding_spans(t_start: float, t_end: float, audio_events: list[dict], cfg: CorpusConfig) -> list[list[float]]:
    """[[t0, t1), ...] seconds: each word / beep / noise event of the segment [t_start, t_end), padded by
    cfg.sounding_pad_s on both sides and clipped to the segment; the times its shape is drawn sounding."""
    spans = []
    for ev in audio_events:
        if ev["type"] in ("word", "tone", "noise"):
            t0 = max(t_start, float(ev["t_start"]) - cfg.sounding_pad_s)
            t1 = min(t_end, float(ev["t_end"]) + cfg.sounding_pad_s)
            if t1 > t0:
                spans.append([round(t0, 6), round(t1, 6)])
    return spans


def shape_offset(visual: VisualPlan, side_px: int, width: int, height: int, progress: float) -> tuple[int, int]:
    """Top-left (x, y) of the shape's square; progress in [0, 1] through the segment."""
    cx, cy = (width - side_px) // 2, (height - side_px) // 2
    room_x, room_y = width - side_px, height - side_px
    p = min(max(progress, 0.0), 1.0)
    if visual.motion == "left_to_right":
        return int(round(p * room_x)), cy
    if visual.motion == "right_to_left":
        return int(round((1.0 - p) * room_x)), cy
    if visual.motion == "top_to_bottom":
        return cx, int(round(p * room_y))
    if visual.motion == "bottom_to_top":
        return cx, int(round((1.0 - p) * room_y))
    return cx, cy


def frame_index_range(t_start: float, t_end: float, fps: int) -> range:
    """Frames k with t_start <= k / fps < t_end."""
    first = math.ceil(t_start * fps - 1e-6)
    stop = math.ceil(t_end * fps - 1e-6)
    return range(first, stop)


def render_still(visual: VisualPlan, width: int, height: int, cfg: CorpusConfig) -> np.ndarray:
    """(height, width, 3) uint8: one frame of a static visual."""
    seg = SegmentPlan(0.0, 1.0, visual, None)
    return next(iter_segment_frames(seg, width, height, 1, cfg))


def iter_segment_frames(
    segment: SegmentPlan, width: int, height: int, fps: int, cfg: CorpusConfig,
    spans_s: list[list[float]] | tuple = (),
) -> Iterator[np.ndarray]:
    """Yield the segment's frames, each (height, width, 3) uint8 (the same array object may be re-yielded).

    Frames whose time k / fps lies in one of `spans_s` ([t0, t1) seconds, see sounding_spans) show the shape
    sounding (larger)."""
    visual = segment.visual
    assert visual is not None
    side = shape_side_px(visual.shape, width, height, cfg)
    big = sounding_side_px(side, width, height, cfg)
    masks = {side: shape_mask(visual.shape, side), big: shape_mask(visual.shape, big)}  # side -> (side, side) bool
    background = np.empty((height, width, 3), dtype=np.uint8)
    background[:] = np.array(visual.background_rgb, dtype=np.uint8)
    color = np.array(visual.rgb, dtype=np.uint8)
    span_s = max(segment.t_end - segment.t_start, 1e-9)
    frame = background.copy()
    drawn = None  # (side, x, y) currently in `frame`
    for k in frame_index_range(segment.t_start, segment.t_end, fps):
        t = k / fps
        size = big if any(t0 <= t < t1 for t0, t1 in spans_s) else side
        x, y = shape_offset(visual, size, width, height, (t - segment.t_start) / span_s)
        if drawn != (size, x, y):
            frame[:] = background
            frame[y : y + size, x : x + size][masks[size]] = color
            drawn = (size, x, y)
        yield frame


def iter_clip_frames(clip: ClipPlan, fps: int, cfg: CorpusConfig,
                     audio_events: list[list[dict]] | None = None) -> Iterator[np.ndarray]:
    """All frames of a clip at `fps` (which may differ from the clip's nominal fps, e.g. for VFR); `audio_events`
    (per segment, as rendered by soundtrack.render_soundtrack) make each segment's shape sound with its events."""
    width, height = clip.variant.width, clip.variant.height
    assert width and height
    for i, segment in enumerate(clip.segments):
        events = audio_events[i] if audio_events else []
        yield from iter_segment_frames(segment, width, height, fps, cfg,
                                       sounding_spans(segment.t_start, segment.t_end, events, cfg))
