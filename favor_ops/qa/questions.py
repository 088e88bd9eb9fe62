"""Question/answer pairs from a synthetic corpus's manifest (ground truth), one list per clip.

Question types (each answer is short and exact, so exact match after normalisation is meaningful):
    said_while   "What word is spoken while the red circle is shown?"      -> "apple"
    sound_after  "What sound plays after the green star?"                   -> "a high beep" | "a burst of noise"
    order        "Which comes first, the red circle or the blue square?"   -> "red circle"
                 "Which word is said first, apple or river?"               -> "apple"
    when         "When is apple said?"                                      -> the span of the window holding the
                                                                               word, as the prompt writes it: "10-15s"
    av_match     "Does the audio match the video?"                          -> "yes" (true audio) | "no" (the audio of
                                                                               another clip: `swapped_audio`)
A question is asked only when its answer is unambiguous in the clip (the visual or word it names occurs once).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from favor_ops.qa.prompt import format_span
from favor_ops.retrieval.queries import TONE_NAMES

QUESTION_TYPES = ("said_while", "sound_after", "order", "when", "av_match")


@dataclass(frozen=True)
class QAPair:
    question_id: str
    clip_id: str
    qtype: str
    question: str
    answer: str
    swapped_audio: bool = False  # av_match "no": the window tokens come from another clip's audio
    truth_s: float | None = None  # "when": the start (s) of the event's window
    # "said while": whether the 5 s window holding the said word also holds the middle of another word; "order":
    # whether both named events have their middle in one window. A window's tokens then say both were there, not
    # which was said while the shape was shown, nor which came first. None for other types.
    shares_window: bool | None = None


# The question templates (training and evaluation ask in the same words).
def said_while_question(visual: str) -> str:
    return f"What word is spoken while the {visual} is shown?"


def visual_order_question(first: str, second: str) -> str:
    return f"Which comes first, the {first} or the {second}?"


def word_order_question(first: str, second: str) -> str:
    return f"Which word is said first, {first} or {second}?"


def when_question(word: str) -> str:
    return f"When is {word} said?"


AV_MATCH_QUESTION = "Does the audio match the video?"


def order_questions(names: list[str | None], template, rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, answer, later) for each pair of neighbouring names among those that occur once (names in time
    order, None = nothing named): template(first, second) with the pair in random order, answered by the earlier
    name; `later` is the other one."""
    unique = [n for n in names if n and names.count(n) == 1]
    out = []
    for a, b in zip(unique, unique[1:]):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        out.append((template(first, second), a, b))
    return out


def visual_name(seg: dict) -> str | None:
    v = seg.get("visual")
    return f"{v['color']} {v['shape']}" if v else None


def _word(seg: dict) -> str | None:
    a = seg.get("audio") or {}
    return a.get("word") or None


def spoken_words(records: list[dict]) -> tuple[str, ...]:
    """The distinct words spoken in the corpus (its manifest records), sorted: what "what is said" asks about."""
    return tuple(sorted({w for r in records for seg in r.get("segments", []) if (w := _word(seg))}))


def _sound(seg: dict) -> str | None:
    a = seg.get("audio") or {}
    if a.get("sound") == "tone" and a.get("tone_hz") is not None:
        return f"a {TONE_NAMES.get(int(a['tone_hz']), str(a['tone_hz']))} beep"
    if a.get("sound") == "noise":
        return "a burst of noise"
    return None


def _word_time(seg: dict) -> float | None:
    for ev in seg.get("audio_events", []):
        if ev["type"] == "word":
            return 0.5 * (float(ev["t_start"]) + float(ev["t_end"]))
    return None


def window_span_of(t_s: float, window_s: float, duration_s: float) -> tuple[float, float]:
    """The [t_start, t_end) of the window holding time t (windows of window_s seconds from 0)."""
    w = math.floor(t_s / window_s)
    return w * window_s, min((w + 1) * window_s, max(duration_s, (w + 1) * window_s))


def clip_questions(record: dict, *, window_s: float = 5.0, rng: random.Random | None = None) -> list[QAPair]:
    """Every unambiguous question of one manifest record (a video with audio); [] for other kinds."""
    if record.get("kind") == "bad" or record.get("broken") or not (record.get("has_video")
                                                                   and record.get("has_audio")):
        return []
    rng = rng or random.Random(record["clip_id"])
    clip = record["clip_id"]
    segs = [s for s in record.get("segments", []) if s["t_end"] > s["t_start"]]
    visuals = [visual_name(s) for s in segs]
    words = [_word(s) for s in segs]
    unique_visual = {v for v in visuals if v and visuals.count(v) == 1}
    unique_word = {w for w in words if w and words.count(w) == 1}
    out: list[QAPair] = []

    def add(qtype: str, question: str, answer: str, **extra) -> None:
        out.append(QAPair(f"{clip}:{qtype}:{len(out)}", clip, qtype, question, answer, **extra))

    word_windows = [math.floor(t / window_s) if (t := _word_time(s)) is not None else None for s in segs]
    for i, seg in enumerate(segs):
        v, w = visuals[i], words[i]
        if v in unique_visual and w:
            shared = None if word_windows[i] is None else sum(k == word_windows[i] for k in word_windows) > 1
            add("said_while", said_while_question(v), w, shares_window=shared)
        if v in unique_visual and i + 1 < len(segs) and _sound(segs[i + 1]):
            add("sound_after", f"What sound plays after the {v}?", _sound(segs[i + 1]))
    visual_windows = [math.floor(0.5 * (s["t_start"] + s["t_end"]) / window_s) for s in segs]
    for names, template, windows in ((visuals, visual_order_question, visual_windows),
                                     (words, word_order_question, word_windows)):
        for question, answer, later in order_questions(names, template, rng):
            first_w, later_w = windows[names.index(answer)], windows[names.index(later)]
            add("order", question, answer, shares_window=None if None in (first_w, later_w) else first_w == later_w)
    duration = float(record.get("duration_s") or 0.0)
    for i, seg in enumerate(segs):
        if words[i] in unique_word and _word_time(seg) is not None:
            t0, t1 = window_span_of(_word_time(seg), window_s, duration)
            t1 = min(t1, duration) if duration > t0 else t1
            add("when", when_question(words[i]), format_span(t0, t1), truth_s=t0)
    if any(words) or any(_sound(s) for s in segs):
        add("av_match", AV_MATCH_QUESTION, "yes")
        add("av_match", AV_MATCH_QUESTION, "no", swapped_audio=True)
    return out


def corpus_questions(records: list[dict], *, window_s: float = 5.0, seed: int = 0) -> list[QAPair]:
    rng = random.Random(seed)
    return [q for r in sorted(records, key=lambda r: r.get("clip_id", "")) for q in
            clip_questions(r, window_s=window_s, rng=rng)]
