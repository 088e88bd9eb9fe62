"""Training prompts from recombined windows: new clips laid together from windows of the training corpus.

With about a hundred training clips a small LM learns each clip's answers (the corpus's priors, or the clip itself)
instead of reading its windows: the held-out "what is said while X" answers stay the training set's favourite words.
Recombining windows breaks that shortcut. Each window of the training corpus is labelled from the manifest with
what it shows (the visual of the segment covering most of it, when that covers at least `min_visual_s`) and the word
said in it (a word event centred inside it). A recombined clip is 3 to 6 such windows, drawn from any clips, laid
end to end at 0-5 s, 5-10 s, ... (their tokens unchanged: what the index stored for them). Its questions use the
corpus questions' own templates (favor_ops.qa.questions), asked only when unambiguous in the recombined clip:

    said_while   "What word is spoken while the red circle is shown?"   the word of the window showing it
    order        "Which comes first, the red circle or the blue star?" / "Which word is said first, apple or river?"
    when         "When is apple said?"                                  the span of the window saying it

    av_match     "Does the audio match the video?"                      "yes" for windows with their own audio, "no"
                                                                           for windows encoded with another clip's audio
                                                                           (the corpus's swapped-audio negatives)

An answer can only come from the window tokens: the windows, their order and the answers are new every time.
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
    word_order_question,
)
from favor_ops.retrieval.queries import overlap_s


@dataclass(frozen=True)
class LabelledWindow:
    tokens: np.ndarray  # (Nq, D) float32: the window's stored tokens
    visual: str  # "red circle": the visual shown for most of the window
    word: str | None  # the word said in the window (its event's centre lies inside), None if none
    av_agreement: float | None = None  # the window's AV agreement (favor_ops.qa.window_channels)
    frame_audio: np.ndarray | None = None  # (L, E) per-frame vectors, when the aligned model has frame heads
    frame_visual: np.ndarray | None = None  # (L, E)


def label_windows(record: dict, windows: list[PromptWindow], min_visual_s: float = 3.0) -> list[LabelledWindow]:
    """The windows of one manifest record (a video) that show one visual for at least min_visual_s seconds."""
    out: list[LabelledWindow] = []
    segments = [s for s in record.get("segments", []) if s["t_end"] > s["t_start"]]
    for w in windows:
        visual, covered_s, word = None, 0.0, None
        for seg in segments:
            shown_s = overlap_s(w.t_start, w.t_end, seg["t_start"], seg["t_end"])
            name = visual_name(seg)
            if name and shown_s > covered_s:
                visual, covered_s = name, shown_s
            for ev in seg.get("audio_events", []):
                if ev["type"] == "word" and w.t_start <= 0.5 * (ev["t_start"] + ev["t_end"]) < w.t_end:
                    word = ev["word"]
        if visual is not None and covered_s >= min_visual_s - 1e-9:
            out.append(LabelledWindow(w.tokens, visual, word, w.av_agreement, w.frame_audio, w.frame_visual))
    return out


def recombined_questions(windows: list[LabelledWindow], window_s: float, rng: random.Random
                         ) -> list[tuple[str, str]]:
    """Every unambiguous (question, answer) of windows laid end to end from 0 s, window_s each."""
    visuals = [w.visual for w in windows]
    words = [w.word for w in windows]
    out: list[tuple[str, str]] = []
    for i, w in enumerate(windows):
        if not w.word or words.count(w.word) != 1:
            continue
        out.append((when_question(w.word), format_span(i * window_s, (i + 1) * window_s)))
        if visuals.count(w.visual) == 1:
            out.append((said_while_question(w.visual), w.word))
    for names, template in ((visuals, visual_order_question), (words, word_order_question)):
        out += [(question, answer) for question, answer, _ in order_questions(names, template, rng)]
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
        question, answer = rng.choice(questions)
        return self._laid_out(chosen), question, answer


def recombined_clips_or_none(pool: list[LabelledWindow], window_s: float,
                             mismatched: list[PromptWindow] | None = None) -> RecombinedClips | None:
    """RecombinedClips over the pool, or None when it is too small to recombine (a corpus of a few short clips)."""
    try:
        return RecombinedClips(pool, window_s, mismatched=mismatched)
    except ValueError:
        return None
