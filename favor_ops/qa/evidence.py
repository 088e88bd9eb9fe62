"""Which stored windows the LLM sees: the whole video when it fits the token budget, else the windows that best
match the question (their question_match: MaxSim of the question's text vector against each window's stored tokens,
favor_ops.qa.window_channels.QuestionMatcher), in time order."""

from __future__ import annotations

import numpy as np

from favor_ops.errors import StageError
from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.window_channels import av_agreement
from favor_ops.store.schema import FRAME_AUDIO_COLUMN, FRAME_VISUAL_COLUMN


class QAInputError(StageError):
    """A question that cannot be asked: unknown video id, empty question, malformed batch line."""

    stage = "qa"


def stored_frame_vectors(value) -> np.ndarray | None:
    """A stored `frame_audio` / `frame_visual` value (L vectors of E) as (L, E) float32; None when it is null
    (heads without frame vectors) or the table predates the column."""
    if value is None or isinstance(value, float) or len(value) == 0:  # null (pandas may read it as NaN)
        return None
    return np.stack(value).astype(np.float32)


def stored_windows(store, video_id: str) -> list[PromptWindow]:
    """The windows of `video_id` from the store's `windows` table, in time order (no re-decoding)."""
    if not isinstance(video_id, str) or not video_id.strip():
        raise QAInputError(str(video_id), "empty video id")
    frame = store.windows_for_video(video_id.strip())
    if frame.empty:
        raise QAInputError(video_id, "unknown video id (no indexed windows in the store)")
    return [PromptWindow(float(r.t_start), float(r.t_end), np.stack(r.tokens).astype(np.float32),
                         av_agreement=av_agreement(getattr(r, "audio_vec", None), getattr(r, "visual_vec", None)),
                         frame_audio=stored_frame_vectors(getattr(r, FRAME_AUDIO_COLUMN, None)),
                         frame_visual=stored_frame_vectors(getattr(r, FRAME_VISUAL_COLUMN, None)))
            for r in frame.itertuples()]


def window_budget(windows: list[PromptWindow], max_window_tokens: int) -> int:
    """How many of these windows fit `max_window_tokens` (at least one)."""
    return max(1, max_window_tokens // len(windows[0].tokens)) if windows else 0


def select_windows(windows: list[PromptWindow], max_window_tokens: int) -> list[PromptWindow]:
    """All windows when their tokens fit `max_window_tokens`; else the ones with the best question_match (set by
    QuestionMatcher.annotate; the first windows when unscored), kept in time order."""
    keep = window_budget(windows, max_window_tokens)
    if len(windows) <= keep:
        return windows
    if any(w.question_match is None for w in windows):  # no way to rank: the first windows
        return windows[:keep]
    best = sorted(np.argsort([-w.question_match for w in windows], kind="stable")[:keep])
    return [windows[i] for i in best]
