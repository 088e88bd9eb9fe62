"""Window channels: two scores per window that the LLM reads next to the window's tokens.

    question_match  MaxSim of the question's text vector with the window's tokens: the score `favor search` ranks
                    windows by, here for the question itself (the aligned checkpoint's text head)
    av_agreement    cosine of the window's stored audio_vec and visual_vec: the audio-visual match score of the store

Every projected token of a window gets the same vector added:

    channels(f_w),  f_w = [softmax over the prompt's windows of question_match / T,   # which window the question names
                           question_match - max over the prompt's windows,             # how far from the best it is
                           av_agreement,                                                # does its sound fit its picture
                           mean av_agreement over the prompt's windows]                 # ... and the video's

Why: a small LM trained from scratch learns to read the word of one window but not to pick, among a few windows, the
one showing what the question names, while the aligned model's own MaxSim is the search it was trained for. The
question match hands the LLM that step; the LLM still reads the answer from the tokens. Likewise a window's tokens
do not carry the frame-level sync the AV vectors measure; av_agreement does (docs/evaluation.md, "Question
answering: window channels").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.question_grounding import GroundedQuestion, ground_question, prompt_frames
from favor_ops.qa.window_maxsim import window_maxsim

N_CHANNEL_FEATURES = 4


class WindowChannelError(ValueError):
    pass


def av_agreement(audio_vec, visual_vec) -> float | None:
    """Cosine of a window's stored audio and visual vectors; None when either is missing or zero (no audio / video)."""
    if audio_vec is None or visual_vec is None:
        return None
    a, v = np.asarray(audio_vec, np.float32).reshape(-1), np.asarray(visual_vec, np.float32).reshape(-1)
    na, nv = float(np.linalg.norm(a)), float(np.linalg.norm(v))
    if na == 0.0 or nv == 0.0:
        return None
    return float(a @ v) / (na * nv)


def channel_features(windows: list[PromptWindow], temperature: float) -> np.ndarray:
    """(W, N_CHANNEL_FEATURES) float32 features of the windows of one prompt (see module doc); a missing
    av_agreement reads 0 and is left out of the mean. Every window needs its question_match
    (QuestionMatcher.annotate)."""
    if not windows:
        return np.zeros((0, N_CHANNEL_FEATURES), np.float32)
    if any(w.question_match is None for w in windows):
        raise WindowChannelError("this QA model reads window channels: annotate the windows with their question "
                                 "match first (FavorQAModel.prompt or QuestionMatcher.annotate)")
    match = np.array([w.question_match for w in windows], np.float64)  # (W,)
    shifted = match - match.max()
    weights = np.exp(shifted / temperature)
    weights /= weights.sum()
    known = [w.av_agreement for w in windows if w.av_agreement is not None]
    agreement = np.array([w.av_agreement if w.av_agreement is not None else 0.0 for w in windows], np.float64)
    video_agreement = np.full(len(windows), float(np.mean(known)) if known else 0.0)
    return np.stack([weights, shifted, agreement, video_agreement], axis=1).astype(np.float32)


def scaled_av_agreement(windows: list[PromptWindow], factor: float) -> list[PromptWindow]:
    """The windows with their AV agreement multiplied by `factor` (QA training: clips the aligned model was trained
    on agree more than new clips do, so the LLM should not learn its yes/no threshold from their values alone)."""
    return [w if w.av_agreement is None else dataclasses.replace(w, av_agreement=w.av_agreement * factor)
            for w in windows]


TextEncoder = Callable[[list[str]], np.ndarray]  # texts -> (n, E) unit vectors in the store's space


class QuestionMatcher:
    """Scores windows against a question with a text encoder (the aligned checkpoint's text head); caches the
    question vectors (training asks the same templates many times)."""

    def __init__(self, text_encoder: TextEncoder | None = None, *, loader: Callable[[], TextEncoder] | None = None,
                 cache_size: int = 100_000):
        if text_encoder is None and loader is None:
            raise ValueError("QuestionMatcher needs a text encoder or a loader")
        self._encoder = text_encoder
        self._loader = loader
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> "QuestionMatcher":
        """The text head of the aligned checkpoint at `checkpoint`, loaded on first use."""
        from favor_ops.retrieval.aligned_model import is_aligned_checkpoint

        if not is_aligned_checkpoint(checkpoint):
            raise WindowChannelError(f"{checkpoint}: not an aligned checkpoint; a QA model that reads window "
                                     f"channels scores questions with the text head saved next to it")

        def load() -> TextEncoder:
            from favor_ops.retrieval.aligned_model import load_aligned_model

            return cls.from_aligned(load_aligned_model(checkpoint))._encoder

        return cls(loader=load)

    @classmethod
    def from_aligned(cls, aligned) -> "QuestionMatcher":
        """The text head of a loaded aligned model (AlignedFavor)."""
        return cls(lambda texts: aligned.encode_text(texts).float().cpu().numpy())

    def vectors(self, questions: list[str]) -> np.ndarray:
        """(n, E) float32 question vectors."""
        todo = sorted({q for q in questions if q not in self._cache})
        if todo:
            if self._encoder is None:
                self._encoder = self._loader()
            encoded = np.asarray(self._encoder(todo), np.float32)
            if len(self._cache) + len(todo) > self._cache_size:
                self._cache.clear()
            self._cache.update(zip(todo, encoded))
        return np.stack([self._cache[q] for q in questions])

    def ground(self, windows: list[PromptWindow], question: str, temperature: float, *,
               frame_temperature: float = 0.05, heard_words: tuple[str, ...] = ()) -> GroundedQuestion:
        """The question's words grounded in the windows (favor_ops.qa.question_grounding), windows in time order;
        per frame when every window carries frame vectors."""
        ordered = sorted(windows, key=lambda w: w.t_start)
        return ground_question(question.strip(), [w.tokens for w in ordered], self.vectors, temperature,
                               frames=prompt_frames(ordered), frame_temperature=frame_temperature,
                               heard_words=heard_words)

    def annotate(self, windows: list[PromptWindow], question: str) -> list[PromptWindow]:
        """The windows with their question_match set (MaxSim of the question vector with each window's tokens)."""
        if not windows:
            return []
        q = self.vectors([question])[0]  # (E,)
        if windows[0].tokens.shape[-1] != q.shape[-1]:
            raise WindowChannelError(f"window tokens are {windows[0].tokens.shape[-1]} wide, the question vectors "
                                     f"{q.shape[-1]}: score with the checkpoint that indexed them")
        match = window_maxsim([w.tokens for w in windows], q[None])[:, 0]  # (W,)
        return [dataclasses.replace(w, question_match=float(m)) for w, m in zip(windows, match)]
