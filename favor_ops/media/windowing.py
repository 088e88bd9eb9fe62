"""Cut a sequence of sampled frames into fixed-length windows.

A window holds `frames_per_window` consecutive frames and windows start every
`stride_frames` frames (FAVOR: 10 and 10, i.e. non-overlapping 5 s windows at
2 FPS). The last window is padded; `frame_mask` says which positions are real.
Every window knows its absolute time span [t_start, t_end) in seconds.

Pure functions on numpy arrays; no I/O, no Python loop over frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowSpec:
    frames_per_window: int = 10  # L: frames per window
    stride_frames: int = 10  # S: frames between window starts (== L: no overlap)

    def __post_init__(self):
        if self.frames_per_window < 1 or self.stride_frames < 1:
            raise ValueError(f"window length and stride must be >= 1, got {self}")
        if self.stride_frames > self.frames_per_window:
            raise ValueError(f"stride {self.stride_frames} > window {self.frames_per_window} would skip frames")


def num_windows(n_frames: int, spec: WindowSpec) -> int:
    """Windows needed to cover n_frames: ceil(n / L) when stride == L; 0 frames -> 0 windows."""
    if n_frames <= 0:
        return 0
    overhang = max(n_frames - spec.frames_per_window, 0)
    return math.ceil(overhang / spec.stride_frames) + 1


def window_frame_index(n_frames: int, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of each window.

    Returns:
        index: (W, L) int64 frame index per position (0 where padded, safe to gather).
        frame_mask: (W, L) bool, True where the position holds a real frame.
    """
    n_win = num_windows(n_frames, spec)
    starts = np.arange(n_win, dtype=np.int64)[:, None] * spec.stride_frames  # (W, 1)
    index = starts + np.arange(spec.frames_per_window, dtype=np.int64)[None, :]  # (W, L)
    frame_mask = index < n_frames
    return np.where(frame_mask, index, 0), frame_mask


def window_spans(
    n_frames: int, fps: float, spec: WindowSpec, duration_s: float | None = None, t0_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute [t_start, t_end) of each window in seconds, (W,) float64 each.

    A window spans from its first frame's time to the end of its last real
    frame's slice, clipped to the media duration when it is known.
    """
    index, frame_mask = window_frame_index(n_frames, spec)
    last_real = np.where(frame_mask, index, -1).max(axis=1) if len(index) else np.zeros(0, np.int64)  # (W,)
    t_start = t0_s + index[:, 0].astype(np.float64) / fps
    t_end = t0_s + (last_real.astype(np.float64) + 1.0) / fps
    if duration_s is not None:
        t_end = np.minimum(t_end, t0_s + max(duration_s, 0.0))
        t_end = np.maximum(t_end, t_start)
    return t_start, t_end


def gather_windows(values: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a per-frame array: (N, ...) -> ((W, L, ...), frame_mask (W, L)); padding is zero."""
    index, frame_mask = window_frame_index(len(values), spec)
    windows = values[index]  # (W, L, ...)
    pad = (~frame_mask).reshape(frame_mask.shape + (1,) * (windows.ndim - 2))
    return np.where(pad, np.zeros((), dtype=windows.dtype), windows), frame_mask
