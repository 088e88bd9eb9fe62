"""The FAVOR prompt, extended with each window's time span:

    USER: <Img>[0-5s] <32 window tokens> [5-10s] <32 window tokens> ...</Img> {question}
    ASSISTANT: {answer}</s>

Window tokens are not text: the prompt is a list of pieces, text pieces tokenised by the LLM's tokenizer and window
pieces projected from the stored tokens (Nq, D) into the LLM's embedding space (FavorQAModel.embed_prompts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from favor_ops.qa.question_grounding import GroundedQuestion

USER_PREFIX = "USER: <Img>"
IMAGE_SUFFIX = "</Img> "
ASSISTANT_PREFIX = "\nASSISTANT:"


@dataclass(frozen=True)
class PromptWindow:
    """One stored window as the LLM sees it."""

    t_start: float  # seconds from the start of the video
    t_end: float  # seconds, exclusive
    tokens: np.ndarray  # (Nq, D) float32: the stored `tokens` multivector
    # window channels (favor_ops.qa.window_channels), for QA models that read them:
    question_match: float | None = None  # MaxSim of the question's text vector with `tokens` (cosine, -1..1)
    av_agreement: float | None = None  # cosine of the window's stored audio_vec and visual_vec (-1..1)
    # frame grounding (favor_ops.qa.question_grounding), when the store holds per-frame vectors:
    frame_audio: np.ndarray | None = None  # (L, E) float32: what each of the window's frames sounds like
    frame_visual: np.ndarray | None = None  # (L, E) float32: what each frame shows (zeros: padded frame)


def format_span(t_start: float, t_end: float) -> str:
    """The span text the prompt carries and "when" answers cite: "10-15s"."""
    return f"{t_start:g}-{t_end:g}s"


_SPACED_DECIMAL = re.compile(r"(\d)\. (\d)")
_SPACED_HYPHEN = re.compile(r"(\d) - (\d)")


def joined_spans(answer: str) -> str:
    """A decoded answer with its spans written as the prompt writes them: WordPiece decoding puts spaces around a
    span's hyphen and after a decimal point ("7. 5 - 10s" -> "7.5-10s")."""
    return _SPACED_HYPHEN.sub(r"\1-\2", _SPACED_DECIMAL.sub(r"\1.\2", answer))


def prompt_pieces(windows: list[PromptWindow], question: str, grounded: GroundedQuestion | None = None
                  ) -> list[str | PromptWindow | GroundedQuestion]:
    """Text and window pieces of one prompt, windows in time order; with `grounded` (a GroundedQuestion of
    favor_ops.qa.question_grounding) the question is its own piece, carrying the grounding of its words."""
    pieces: list[str | PromptWindow | GroundedQuestion] = [USER_PREFIX]
    for w in sorted(windows, key=lambda w: w.t_start):
        pieces.append(f"[{format_span(w.t_start, w.t_end)}]")
        pieces.append(w)
    if grounded is None:
        pieces.append(IMAGE_SUFFIX + question.strip() + ASSISTANT_PREFIX)
    else:
        pieces += [IMAGE_SUFFIX, grounded, ASSISTANT_PREFIX]
    return pieces
