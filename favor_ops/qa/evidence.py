"""Which stored windows the LLM sees: the whole video when it fits the token budget, else the windows that best
match the question (MaxSim of the question's text embedding against each window's stored tokens), in time order."""

from __future__ import annotations

import numpy as np

from favor_ops.errors import StageError
from favor_ops.qa.prompt import PromptWindow


class QAInputError(StageError):
    """A question that cannot be asked: unknown video id, empty question, malformed batch line."""

    stage = "qa"


def stored_windows(store, video_id: str) -> list[PromptWindow]:
    """The windows of `video_id` from the store's `windows` table, in time order (no re-decoding)."""
    if not isinstance(video_id, str) or not video_id.strip():
        raise QAInputError(str(video_id), "empty video id")
    frame = store.windows_for_video(video_id.strip())
    if frame.empty:
        raise QAInputError(video_id, "unknown video id (no indexed windows in the store)")
    return [PromptWindow(float(r.t_start), float(r.t_end), np.stack(r.tokens).astype(np.float32))
            for r in frame.itertuples()]


def select_windows(windows: list[PromptWindow], question: str, max_window_tokens: int, text_encoder=None
                   ) -> list[PromptWindow]:
    """All windows when their tokens fit `max_window_tokens`; else the best-matching ones by MaxSim with the
    question (text_encoder(list[str]) -> (1, E) unit vectors), kept in time order."""
    if not windows:
        return []
    per_window = len(windows[0].tokens)
    keep = max(1, max_window_tokens // per_window)
    if len(windows) <= keep:
        return windows
    if text_encoder is None:  # no way to rank: the first windows
        return windows[:keep]
    q = np.asarray(text_encoder([question]), dtype=np.float32).reshape(-1)  # (E,)
    scores = [float(np.max(w.tokens @ q)) for w in windows]  # MaxSim of one query vector
    best = sorted(np.argsort(scores)[::-1][:keep])
    return [windows[i] for i in best]
