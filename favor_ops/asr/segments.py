"""Timestamped ASR output and its assignment to the window grid.

A transcriber returns `Segment`s (absolute or audio-relative seconds, as the
caller chooses) optionally carrying `Word`s. `window_transcripts` turns them
into one string per window: each word (or, for a segment without words, the
whole segment) goes to the window it overlaps most in time; ties go to the
earlier window; a unit that overlaps no window (a timestamp that drifted past
the audio's ends) goes to the nearest window. Words keep their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Word:
    t_start_s: float
    t_end_s: float
    text: str


@dataclass(frozen=True)
class Segment:
    t_start_s: float
    t_end_s: float
    text: str
    words: tuple[Word, ...] = field(default_factory=tuple)  # empty: the model gave no word timestamps

    def shifted(self, offset_s: float) -> Segment:
        """The same segment with every timestamp moved by offset_s (audio-relative -> absolute seconds)."""
        return Segment(
            self.t_start_s + offset_s,
            self.t_end_s + offset_s,
            self.text,
            tuple(Word(w.t_start_s + offset_s, w.t_end_s + offset_s, w.text) for w in self.words),
        )


def _units(segments: Sequence[Segment]) -> list[tuple[float, float, str]]:
    """(t_start, t_end, text) of every word, or of the segment when it has no words; blank text dropped."""
    units = []
    for seg in segments:
        parts = [(w.t_start_s, w.t_end_s, w.text) for w in seg.words] if seg.words else [
            (seg.t_start_s, seg.t_end_s, seg.text)
        ]
        for start, end, text in parts:
            text = " ".join(str(text).split())
            if text:
                units.append((float(start), float(max(end, start)), text))
    return units


def assign_to_windows(t_start_s: float, t_end_s: float, starts: np.ndarray, ends: np.ndarray) -> int:
    """Index of the window [starts[k], ends[k]) that [t_start_s, t_end_s] overlaps most (earliest on a tie);
    a zero-length unit counts as overlapping the window that contains it; no overlap: the nearest window."""
    if t_end_s > t_start_s:
        overlap = np.minimum(ends, t_end_s) - np.maximum(starts, t_start_s)
        if overlap.max() > 0:
            return int(np.argmax(overlap))
    else:
        inside = np.flatnonzero((starts <= t_start_s) & (t_start_s < ends))
        if len(inside):
            return int(inside[0])
    # Distance from the unit to each window (0 when they touch): the nearest one, earliest on a tie.
    gap = np.maximum(starts - t_end_s, t_start_s - ends)
    return int(np.argmin(gap))


def window_transcripts(segments: Sequence[Segment], t_starts: Sequence[float], t_ends: Sequence[float]) -> list[str]:
    """One transcript per window [t_starts[k], t_ends[k]) (same time base as the segments): the words (or
    word-less segments) assigned to it by time overlap, joined by single spaces in time order."""
    starts = np.asarray(t_starts, dtype=np.float64)
    ends = np.asarray(t_ends, dtype=np.float64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError(f"t_starts and t_ends must be 1-D of one length, got {starts.shape} and {ends.shape}")
    texts: list[list[str]] = [[] for _ in range(len(starts))]
    if len(starts) == 0:
        return []
    for start, end, text in sorted(_units(segments), key=lambda u: (u[0], u[1])):
        texts[assign_to_windows(start, end, starts, ends)].append(text)
    return [" ".join(parts) for parts in texts]
