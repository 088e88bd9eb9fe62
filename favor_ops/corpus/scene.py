"""Visual rendering: a coloured shape, static or moving, on a flat background, as raw RGB frames.

Frame k of a clip shows time k / fps; it shows the segment whose [t_start, t_end)
contains that time. A shape's boolean mask is computed once per segment and
pasted at a (possibly moving) offset, so rendering is a copy and a masked
assignment per frame. Moving shapes travel along the frame's long axis from one
margin to the other over the segment and always stay fully inside the frame.
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
    segment: SegmentPlan, width: int, height: int, fps: int, cfg: CorpusConfig
) -> Iterator[np.ndarray]:
    """Yield the segment's frames, each (height, width, 3) uint8 (the same array object may be re-yielded)."""
    visual = segment.visual
    assert visual is not None
    side = shape_side_px(visual.shape, width, height, cfg)
    mask = shape_mask(visual.shape, side)  # (side, side) bool
    background = np.empty((height, width, 3), dtype=np.uint8)
    background[:] = np.array(visual.background_rgb, dtype=np.uint8)
    color = np.array(visual.rgb, dtype=np.uint8)
    span_s = max(segment.t_end - segment.t_start, 1e-9)
    frames = frame_index_range(segment.t_start, segment.t_end, fps)
    if visual.motion == "static":
        frame = background.copy()
        x, y = shape_offset(visual, side, width, height, 0.0)
        frame[y : y + side, x : x + side][mask] = color
        for _ in frames:
            yield frame
        return
    frame = background.copy()
    for k in frames:
        progress = (k / fps - segment.t_start) / span_s
        x, y = shape_offset(visual, side, width, height, progress)
        frame[:] = background
        frame[y : y + side, x : x + side][mask] = color
        yield frame


def iter_clip_frames(clip: ClipPlan, fps: int, cfg: CorpusConfig) -> Iterator[np.ndarray]:
    """All frames of a clip at `fps` (which may differ from the clip's nominal fps, e.g. for VFR)."""
    width, height = clip.variant.width, clip.variant.height
    assert width and height
    for segment in clip.segments:
        yield from iter_segment_frames(segment, width, height, fps, cfg)
