"""Answer normalisation and scoring: exact match after normalisation; "when" answers by time."""

from __future__ import annotations

import re

_ARTICLES = {"a", "an", "the"}


def normalise_answer(text: str) -> str:
    """Lower case, punctuation and hyphens to spaces, articles and extra spaces dropped:
    "The Red circle." -> "red circle"; "10 - 15s" -> "10 15s"."""
    words = re.sub(r"[^0-9a-z.]+", " ", text.lower()).replace(". ", " ").strip(" .").split()
    return " ".join(w.strip(".") for w in words if w not in _ARTICLES)


def exact_match(predicted: str, truth: str) -> bool:
    return normalise_answer(predicted) == normalise_answer(truth)


def first_time_s(text: str) -> float | None:
    """The first number in an answer, as seconds ("10-15s" -> 10.0, "at 7.5 s" -> 7.5); None when there is none."""
    m = re.search(r"\d+(?:\.\d+)?", text)
    return float(m.group()) if m else None


def when_correct(predicted: str, truth_s: float, window_s: float) -> bool:
    """A "when" answer is right when its start time is within one window of the truth."""
    t = first_time_s(predicted)
    return t is not None and abs(t - truth_s) <= window_s + 1e-6
