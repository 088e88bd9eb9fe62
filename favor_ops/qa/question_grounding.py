"""Question grounding: where in the shown windows each word of the question is seen or heard.

Each word of the question is scored against the windows through the phrases that hold it, itself and the two
word pairs around it ("red", "the red", "red circle"): a phrase's match with a window is the MaxSim of its text
vector with the window's tokens (QuestionMatcher, the aligned checkpoint's text head). A word takes its best phrase:

    strength  its best phrase's best match over the windows (cosine)
    position  the soft arg max (softmax / T) of that phrase's match over the windows, as a fraction of the prompt's
              windows: 0 = the first window, 1 = the last

The LLM gets `question_channels([position, strength, earlier])` added to the embedding of each token of the word
(FavorQAModel). "Which comes first, the blue star or the red circle?" then carries, on "blue star" and on "red
circle", where each is shown: picking the earlier is comparing two numbers the prompt holds, where a small LM
trained from scratch does not learn to find the windows by itself (docs/evaluation.md, "Question answering: window
channels").

Frame grounding, when every window carries per-frame vectors (PromptWindow.frame_audio / frame_visual, the aligned
checkpoint's frame heads): a window's tokens say what its 5 s hold, not when inside them, so two events of one window
cannot be ordered, nor a word tied to the shape shown while it is said. Each phrase is then also scored against each
of the prompt's F frames (in time order) through the captions the frame heads were trained on:

    frame_match(phrase, f) = max(cos(text_vec("a {phrase}"), visual_f), cos(text_vec("someone says {phrase}"), audio_f))
    weights_i(f)           = softmax over the frames of frame_match(best phrase of word i, f) / T_frame     (F,)
    position               = sum_f weights_i(f) * f / (F - 1): where the word is, at 0.5 s resolution
    heard (with heard words K): what is said while word i is seen or heard, over the heard words:
        heard_i(k) ∝ sum_f weights_i(f) * exp(cos(text_vec("someone says {word k}"), audio_f) / T_frame),
        summing to exp((named_i - max_j named_j) / T_frame), named_i = max_f frame_match(best phrase of word i, f):
        the words that name what is shown ("red circle") carry it, "what word is spoken" next to them hardly

`heard` is added to the question word's tokens as a heard-word embedding (FavorQAModel), so "red circle" in "What
word is spoken while the red circle is shown?" carries the word said during its frames (docs/evaluation.md,
"Question answering: frame grounding").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from favor_ops.qa.heard_words import heard_word_phrases
from favor_ops.qa.window_maxsim import window_maxsim

N_GROUNDING_FEATURES = 3  # [position, strength, earlier]; QA checkpoints saved with the first two load with a zero
#                            weight on the third (FavorQAModel.load_trainable_state)
ORDER_SCALE = 0.02  # position difference (fraction of the prompt) at which `earlier` reaches tanh(1) = 0.76
FRAME_SEEN_TEMPLATE = "a {phrase}"  # the frame heads' visual captions: "a red circle" (favor_ops.retrieval.queries)
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class GroundedQuestion:
    """A question as a prompt piece, with the grounding of its words."""

    text: str
    word_spans: tuple[tuple[int, int], ...]  # (start, end) character offsets of each word in `text`
    features: np.ndarray  # (n_words, N_GROUNDING_FEATURES) float32: [position 0..1, strength, earlier -1..1]
    heard: np.ndarray | None = None  # (n_words, K) float32: heard-word weights during each word's frames, or None

    def token_features(self, offsets: list[tuple[int, int]]) -> np.ndarray:
        """(n_tokens, N_GROUNDING_FEATURES): each token gets its word's features (0 for tokens outside words, such as
        punctuation); `offsets` are the tokenizer's character offsets of the tokens of `text`."""
        return self._per_token(self.features, offsets)

    def token_heard(self, offsets: list[tuple[int, int]]) -> np.ndarray | None:
        """(n_tokens, K) each token's word's heard-word weights (0 outside words); None without frame grounding."""
        return None if self.heard is None else self._per_token(self.heard, offsets)

    def _per_token(self, per_word: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
        out = np.zeros((len(offsets), per_word.shape[1]), np.float32)
        for t, (a, b) in enumerate(offsets):
            for w, (s, e) in enumerate(self.word_spans):
                if a < e and s < b:
                    out[t] = per_word[w]
                    break
        return out


@dataclass(frozen=True)
class PromptFrames:
    """Every frame of a prompt's windows, in time order (zeros: padded frames)."""

    audio: np.ndarray  # (F, E) float32 unit vectors: what each frame sounds like
    visual: np.ndarray  # (F, E) float32: what each frame shows


def prompt_frames(windows) -> PromptFrames | None:
    """The frames of these PromptWindows (already in time order); None unless every window carries frame vectors."""
    if not windows or any(w.frame_audio is None or w.frame_visual is None for w in windows):
        return None
    return PromptFrames(np.concatenate([np.asarray(w.frame_audio, np.float32) for w in windows]),
                        np.concatenate([np.asarray(w.frame_visual, np.float32) for w in windows]))


def frame_match(phrases: list[str], frames: PromptFrames, phrase_vectors) -> np.ndarray:
    """(P, F) each phrase's match with each frame: seen ("a {phrase}") or heard ("someone says {phrase}")."""
    seen = np.asarray(phrase_vectors([FRAME_SEEN_TEMPLATE.format(phrase=p) for p in phrases]), np.float32)  # (P, E)
    heard = np.asarray(phrase_vectors(heard_word_phrases(phrases)), np.float32)  # (P, E)
    return np.maximum(seen @ frames.visual.T, heard @ frames.audio.T)


def _softmax_rows(x: np.ndarray, temperature: float) -> np.ndarray:
    e = np.exp((x - x.max(axis=-1, keepdims=True)) / temperature)
    return e / e.sum(axis=-1, keepdims=True)


def question_words(text: str) -> tuple[list[str], tuple[tuple[int, int], ...]]:
    """Lower-cased words and their character spans."""
    found = list(_WORD.finditer(text))
    return [m.group().lower() for m in found], tuple((m.start(), m.end()) for m in found)


def question_phrases(words: list[str]) -> list[tuple[int, int]]:
    """Word ranges [i, j) of the phrases scored: every word and every pair of neighbouring words."""
    return [(i, i + 1) for i in range(len(words))] + [(i, i + 2) for i in range(len(words) - 1)]


def ground_question(text: str, window_tokens: list[np.ndarray], phrase_vectors, temperature: float,
                    frames: PromptFrames | None = None, frame_temperature: float = 0.05,
                    heard_words: tuple[str, ...] = ()) -> GroundedQuestion:
    """Grounding of `text` in the windows (tokens (Nq, E) each, in time order); phrase_vectors(list[str]) -> (n, E).
    With `frames` (prompt_frames), positions are per frame and, with heard words, each word gets `heard`."""
    words, spans = question_words(text)
    feats = np.zeros((len(words), N_GROUNDING_FEATURES), np.float32)
    heard = np.zeros((len(words), len(heard_words)), np.float32) if frames is not None and heard_words else None
    named = np.zeros(len(words), np.float32)  # how strongly each word names something shown or said (cosine)
    if words and window_tokens:
        phrases = question_phrases(words)
        texts = [" ".join(words[a:b]) for a, b in phrases]
        vecs = np.asarray(phrase_vectors(texts), np.float32)  # (P, E)
        match = window_maxsim(window_tokens, vecs).T  # (P, W)
        best = match.max(axis=1)  # (P,)
        last = max(len(window_tokens) - 1, 1)
        if frames is not None:
            by_frame = frame_match(texts, frames, phrase_vectors)  # (P, F)
            frame_best = by_frame.max(axis=1)  # (P,)
            frame_last = max(len(frames.audio) - 1, 1)
            if heard is not None:
                word_vecs = np.asarray(phrase_vectors(heard_word_phrases(list(heard_words))), np.float32)  # (K, E)
                said = word_vecs @ frames.audio.T  # (K, F)
                said_weight = np.exp((said - said.max()) / frame_temperature)  # (K, F)
        for i in range(len(words)):
            holding = [k for k, (a, b) in enumerate(phrases) if a <= i < b]
            p = max(holding, key=lambda k: best[k])
            if frames is None:
                weights = _softmax_rows(match[p], temperature)  # (W,)
                feats[i, :2] = (float(weights @ np.arange(len(window_tokens))) / last, best[p])
                named[i] = best[p]
                continue
            pf = max(holding, key=lambda k: frame_best[k])
            weights = _softmax_rows(by_frame[pf], frame_temperature)  # (F,)
            feats[i, :2] = (float(weights @ np.arange(len(frames.audio))) / frame_last, best[p])
            named[i] = frame_best[pf]  # the frame heads' captions tell "a red circle" from "a which" far better
            if heard is not None:
                during = said_weight @ weights  # (K,)
                heard[i] = during / max(float(during.sum()), 1e-30)
    feats[:, 2] = earlier_than_the_rest(feats[:, 0], named, temperature=frame_temperature)
    if heard is not None and len(words):  # only the words that name something seen or heard carry what is said
        heard *= np.exp((named - named.max()) / frame_temperature)[:, None]
    return GroundedQuestion(text, spans, feats, heard)


def earlier_than_the_rest(position: np.ndarray, named: np.ndarray, temperature: float) -> np.ndarray:
    """(n_words,) -1..1: how much the other things the question names come after word i (+) or before it (-).

        earlier_i = sum_{j != i} a_j tanh((position_j - position_i) / ORDER_SCALE) / sum_{j != i} a_j,
        a = softmax over the words of named / temperature   (named: the word's best match, per frame when frames
                                                             are known; the words the video shows or says weigh most)

    "Which comes first, the blue square or the red circle?": "blue square" reads about +1/2 when it comes first and
    "red circle" about -1/2, and the words of one name (same position) add nothing to each other. A small LM compares
    two numbers on two spans of the question poorly; this puts the comparison on each span as a sign."""
    n = len(position)
    if n < 2:
        return np.zeros(n, np.float32)
    a = np.exp((named - named.max()) / temperature)  # (n,)
    later = np.tanh((position[None, :] - position[:, None]) / ORDER_SCALE)  # (i, j): + when j comes after i
    others = a[None, :] * (1.0 - np.eye(n))  # (i, j)
    return ((others * later).sum(axis=1) / np.maximum(others.sum(axis=1), 1e-12)).astype(np.float32)
