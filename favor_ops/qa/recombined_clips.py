"""Training prompts from recombined windows: new clips laid together from windows of the training corpus.

With about a hundred training clips a small LM learns each clip's answers (the corpus's priors, or the clip itself)
instead of reading its windows: the held-out "what is said while X" answers stay the training set's favourite words.
Recombining windows breaks that shortcut. Each window of the training corpus is labelled from the manifest with
every visual shown in it (its span within the window) and the word said while it is shown (a word event of its
segment centred inside the window), so a window showing two shapes, each with its word, keeps both: answering then
needs the window's frames, not only the window. A recombined clip is 3 to 6 such windows, drawn from any clips, laid
end to end at 0-5 s, 5-10 s, ... (their tokens and frame vectors unchanged: what the index stored for them). Its
questions use the corpus questions' own templates (favor_ops.qa.questions), asked only when unambiguous in the
recombined clip (the visual or word named occurs, even partly, in one place only); a draw picks a question type
first, then a question of that type:

    said_while   "What word is spoken while the red circle is shown?"   the word said while it is shown
    order        "Which comes first, the red circle or the blue star?" / "Which word is said first, apple or river?"
                                                                           by start (visuals) or centre (words) time
    when         "When is apple said?"                                  the span of the window saying it

    av_match     "Does the audio match the video?"                      "yes" for windows with their own audio, "no"
                                                                           for windows encoded with another clip's audio
                                                                           (the corpus's swapped-audio negatives)

A visual is named in a question only when shown for at least `min_shown_s` of the window (a shape cut to a few
tenths of a second at a window's edge may not be in any frame). An answer can only come from the window tokens: the
windows, their order and the answers are new every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from favor_ops.qa.prompt import PromptWindow, format_span
from favor_ops.qa.questions import (
    AV_MATCH_QUESTION,
    order_questions,
    said_while_question,
    visual_name,
    visual_order_question,
    when_question,
    window_span_of,
    word_order_question,
)

MIN_SHOWN_S = 1.0  # seconds a visual is shown in a window before a question names it (2 frames at 2 FPS)


@dataclass(frozen=True)
class ShownVisual:
    """One visual shown in a window: its span within the window, and what is said while it is shown."""

    visual: str  # "red circle"
    start_s: float  # seconds from the window's start
    end_s: float
    word: str | None = None  # the word of its segment when that word's centre lies in the window, else None
    word_at_s: float | None = None  # that centre, seconds from the window's start


@dataclass(frozen=True)
class LabelledWindow:
    tokens: np.ndarray  # (Nq, D) float32: the window's stored tokens
    shown: tuple[ShownVisual, ...]  # every visual shown in the window, in time order
    heard: tuple[str, ...] = ()  # every word heard in the window, even partly (a word counted once per window)
    av_agreement: float | None = None  # the window's AV agreement (favor_ops.qa.window_channels)
    frame_audio: np.ndarray | None = None  # (L, E) per-frame vectors, when the aligned model has frame heads
    frame_visual: np.ndarray | None = None  # (L, E)


def label_windows(record: dict, windows: list[PromptWindow]) -> list[LabelledWindow]:
    """The windows of one manifest record (a video) that show something, each with what it shows and says."""
    out: list[LabelledWindow] = []
    segments = [s for s in record.get("segments", []) if s["t_end"] > s["t_start"]]
    for w in windows:
        shown, heard = [], []
        for seg in segments:
            word, word_at_s = None, None
            for ev in seg.get("audio_events", []):
                if ev["type"] != "word":
                    continue
                if ev["t_end"] > w.t_start and ev["t_start"] < w.t_end and ev["word"] not in heard:
                    heard.append(ev["word"])
                centre_s = 0.5 * (ev["t_start"] + ev["t_end"])
                if w.t_start <= centre_s < w.t_end:
                    word, word_at_s = ev["word"], centre_s - w.t_start
            start_s, end_s = max(seg["t_start"], w.t_start), min(seg["t_end"], w.t_end)
            if (name := visual_name(seg)) is not None and end_s > start_s:
                shown.append(ShownVisual(name, start_s - w.t_start, end_s - w.t_start, word, word_at_s))
        if shown:
            out.append(LabelledWindow(w.tokens, tuple(shown), tuple(heard), w.av_agreement, w.frame_audio,
                                      w.frame_visual))
    return out


def recombined_questions(windows: list[LabelledWindow], window_s: float, rng: random.Random,
                         min_shown_s: float = MIN_SHOWN_S) -> list[tuple[str, str, str]]:
    """Every unambiguous (question type, question, answer) of windows laid end to end from 0 s, window_s each."""
    # (clip time s, visual, askable, word, word time s) for every visual shown, in clip time
    spans = [(i * window_s + v.start_s, v.visual, v.end_s - v.start_s >= min_shown_s - 1e-9, v.word,
              None if v.word_at_s is None else i * window_s + v.word_at_s)
             for i, w in enumerate(windows) for v in w.shown]
    visuals = [s[1] for s in spans]
    heard = [word for w in windows for word in w.heard]
    said = sorted((t, word) for _, _, _, word, t in spans if word is not None)  # (time s, word), centred here
    out: list[tuple[str, str, str]] = []
    for _, visual, askable, word, _ in spans:
        if askable and word is not None and visuals.count(visual) == 1:
            out.append(("said_while", said_while_question(visual), word))
    for t, word in said:
        if heard.count(word) == 1:
            span = window_span_of(t, window_s, len(windows) * window_s)
            out.append(("when", when_question(word), format_span(*span)))
    seen_names = [v if askable and visuals.count(v) == 1 else None for _, v, askable, _, _ in spans]
    said_names = [word if heard.count(word) == 1 else None for _, word in said]
    for names, template in ((seen_names, visual_order_question), (said_names, word_order_question)):
        out += [("order", question, answer) for question, answer, _ in order_questions(names, template, rng)]
    return out


class RecombinedClips:
    """Draws (windows, question, answer) from recombined windows of a labelled pool (see module doc)."""

    def __init__(self, pool: list[LabelledWindow], window_s: float, min_windows: int = 3, max_windows: int = 6, *,
                 mismatched: list[PromptWindow] | None = None, av_share: float = 0.2):
        """mismatched: windows encoded with another clip's audio; when there are enough, `av_share` of the draws
        ask whether the audio matches (half of them over mismatched windows)."""
        if len(pool) < max_windows:
            raise ValueError(f"{len(pool)} labelled windows: recombining needs at least {max_windows}")
        self.pool = pool
        self.mismatched = mismatched if mismatched and len(mismatched) >= max_windows else []
        self.av_share = av_share if self.mismatched else 0.0
        self.window_s = window_s
        self.min_windows = min_windows
        self.max_windows = max_windows

    def _laid_out(self, windows) -> list[PromptWindow]:
        """The windows end to end from 0 s, their tokens, AV agreement and frame vectors unchanged."""
        return [PromptWindow(i * self.window_s, (i + 1) * self.window_s, w.tokens, av_agreement=w.av_agreement,
                             frame_audio=w.frame_audio, frame_visual=w.frame_visual)
                for i, w in enumerate(windows)]

    def sample(self, rng: random.Random) -> tuple[list[PromptWindow], str, str]:
        if self.av_share and rng.random() < self.av_share:
            matched = rng.random() < 0.5
            k = rng.randint(self.min_windows, self.max_windows)
            chosen = rng.sample(self.pool if matched else self.mismatched, k)
            return self._laid_out(chosen), AV_MATCH_QUESTION, "yes" if matched else "no"
        while True:
            chosen = rng.sample(self.pool, rng.randint(self.min_windows, self.max_windows))
            questions = recombined_questions(chosen, self.window_s, rng)
            if questions:
                break
        qtype = rng.choice(sorted({t for t, _, _ in questions}))  # each type alike, whatever the clip asks most
        _, question, answer = rng.choice([q for q in questions if q[0] == qtype])
        return self._laid_out(chosen), question, answer


def recombined_clips_or_none(pool: list[LabelledWindow], window_s: float,
                             mismatched: list[PromptWindow] | None = None) -> RecombinedClips | None:
    """RecombinedClips over the pool, or None when it is too small to recombine (a corpus of a few short clips)."""
    try:
        return RecombinedClips(pool, window_s, mismatched=mismatched)
    except ValueError:
        return None
