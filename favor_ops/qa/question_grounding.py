"""Question grounding: where in the shown windows each word of the question is seen or heard.

Each word of the question is scored against the windows through the phrases that hold it, itself and the two
word pairs around it ("red", "the red", "red circle"): a phrase's match with a window is the MaxSim of its text
vector with the window's tokens (QuestionMatcher, the aligned checkpoint's text head). A word takes its best phrase:

    strength  its best phrase's best match over the windows (cosine)
    position  the soft arg max (softmax / T) of that phrase's match over the windows, as a fraction of the prompt's
              windows: 0 = the first window, 1 = the last

The LLM gets `question_channels([position, strength])` added to the embedding of each token of the word
(FavorQAModel). "Which comes first, the blue star or the red circle?" then carries, on "blue star" and on "red
circle", where each is shown: picking the earlier is comparing two numbers the prompt holds, where a small LM
trained from scratch does not learn to find the windows by itself (docs/evaluation.md, "Question answering: window
channels").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from favor_ops.qa.window_maxsim import window_maxsim

N_GROUNDING_FEATURES = 2
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class GroundedQuestion:
    """A question as a prompt piece, with the grounding of its words."""

    text: str
    word_spans: tuple[tuple[int, int], ...]  # (start, end) character offsets of each word in `text`
    features: np.ndarray  # (n_words, N_GROUNDING_FEATURES) float32: [position 0..1, strength]

    def token_features(self, offsets: list[tuple[int, int]]) -> np.ndarray:
        """(n_tokens, N_GROUNDING_FEATURES): each token gets its word's features (0 for tokens outside words, such as
        punctuation); `offsets` are the tokenizer's character offsets of the tokens of `text`."""
        out = np.zeros((len(offsets), N_GROUNDING_FEATURES), np.float32)
        for t, (a, b) in enumerate(offsets):
            for w, (s, e) in enumerate(self.word_spans):
                if a < e and s < b:
                    out[t] = self.features[w]
                    break
        return out


def question_words(text: str) -> tuple[list[str], tuple[tuple[int, int], ...]]:
    """Lower-cased words and their character spans."""
    found = list(_WORD.finditer(text))
    return [m.group().lower() for m in found], tuple((m.start(), m.end()) for m in found)


def question_phrases(words: list[str]) -> list[tuple[int, int]]:
    """Word ranges [i, j) of the phrases scored: every word and every pair of neighbouring words."""
    return [(i, i + 1) for i in range(len(words))] + [(i, i + 2) for i in range(len(words) - 1)]


def ground_question(text: str, window_tokens: list[np.ndarray], phrase_vectors, temperature: float
                    ) -> GroundedQuestion:
    """Grounding of `text` in the windows (tokens (Nq, E) each, in time order); phrase_vectors(list[str]) -> (n, E)."""
    words, spans = question_words(text)
    feats = np.zeros((len(words), N_GROUNDING_FEATURES), np.float32)
    if words and window_tokens:
        phrases = question_phrases(words)
        vecs = np.asarray(phrase_vectors([" ".join(words[a:b]) for a, b in phrases]), np.float32)  # (P, E)
        match = window_maxsim(window_tokens, vecs).T  # (P, W)
        best = match.max(axis=1)  # (P,)
        last = max(len(window_tokens) - 1, 1)
        for i in range(len(words)):
            p = max((k for k, (a, b) in enumerate(phrases) if a <= i < b), key=lambda k: best[k])
            weights = np.exp((match[p] - best[p]) / temperature)
            feats[i] = (float(weights @ np.arange(len(window_tokens))) / weights.sum() / last, best[p])
    return GroundedQuestion(text, spans, feats)
