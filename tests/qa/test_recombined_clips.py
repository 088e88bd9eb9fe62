"""Recombined training clips: window labels from the manifest, unambiguous questions, answers the windows hold."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.recombined_clips import (
    LabelledWindow,
    RecombinedClips,
    ShownVisual,
    label_windows,
    recombined_questions,
)


def _segment(t0, t1, color, shape, word=None, word_at=None):
    events = [{"type": "word", "word": word, "t_start": word_at - 0.2, "t_end": word_at + 0.2}] if word else []
    return {"t_start": t0, "t_end": t1, "visual": {"color": color, "shape": shape},
            "audio": {"word": word}, "audio_events": events}


def _window(t0, t1, marker):
    return PromptWindow(t0, t1, np.full((2, 3), marker, np.float32), frame_audio=np.full((4, 3), marker, np.float32),
                        frame_visual=np.full((4, 3), -marker, np.float32))


def test_windows_are_labelled_with_every_visual_shown_and_the_word_said_while_it_is_shown():
    record = {"segments": [_segment(0.0, 2.0, "red", "circle", "apple", 1.0),
                           _segment(2.0, 9.0, "blue", "star", "river", 5.1),
                           _segment(9.0, 12.0, "green", "square"),
                           {"t_start": 12.0, "t_end": 13.0, "visual": None, "audio": {"word": "tiger"},
                            "audio_events": [{"type": "word", "word": "tiger", "t_start": 12.2, "t_end": 12.6}]}]}
    windows = [_window(0.0, 5.0, 0), _window(5.0, 10.0, 1), _window(10.0, 15.0, 2), _window(15.0, 20.0, 3)]
    labelled = label_windows(record, windows)
    # [0, 5): the red circle (apple at 1.0 s) then the blue star, whose river (4.9-5.3 s) is heard but centred past
    # the window; [5, 10): the star again, river centred 0.1 s into it, then the square;
    # [10, 15): the square, then tiger said with nothing shown; [15, 20): nothing shown: left out
    assert [w.shown for w in labelled] == [
        (ShownVisual("red circle", 0.0, 2.0, "apple", 1.0), ShownVisual("blue star", 2.0, 5.0)),
        (ShownVisual("blue star", 0.0, 4.0, "river", pytest.approx(0.1)), ShownVisual("green square", 4.0, 5.0)),
        (ShownVisual("green square", 0.0, 2.0),)]
    assert [w.heard for w in labelled] == [("apple", "river"), ("river",), ("tiger",)]
    assert labelled[1].tokens[0, 0] == 1
    assert labelled[1].frame_audio is windows[1].frame_audio and labelled[1].frame_visual is windows[1].frame_visual


def _labelled(*shown, heard=None, marker=0.0, **kwargs) -> LabelledWindow:
    """A window showing (visual, start s, end s, word, word at s) spans; heard defaults to the words said."""
    spans = tuple(ShownVisual(*s) for s in shown)
    heard = tuple(v.word for v in spans if v.word) if heard is None else heard
    return LabelledWindow(np.full((2, 3), marker, np.float32), spans, heard, **kwargs)


def test_questions_are_asked_only_when_unambiguous():
    windows = [_labelled(("red circle", 0.0, 5.0, "apple", 2.0)),
               _labelled(("blue star", 0.0, 5.0)),
               _labelled(("red circle", 0.0, 5.0, "river", 3.0)),
               _labelled(("green square", 0.0, 5.0, "tiger", 1.0))]
    qa = {q: a for _, q, a in recombined_questions(windows, 5.0, random.Random(0))}
    # the red circle shows twice: no "while the red circle" question; the blue star says nothing
    assert qa["What word is spoken while the green square is shown?"] == "tiger"
    assert not any("red circle is shown" in q or "blue star is shown" in q for q in qa)
    assert qa["When is apple said?"] == "0-5s" and qa["When is river said?"] == "10-15s"
    assert qa["When is tiger said?"] == "15-20s"
    order = {q: a for q, a in qa.items() if q.startswith("Which")}
    assert sorted(order.values()) == ["apple", "blue star", "river"]  # pairs of neighbours among unique names
    assert all(a == "blue star" for q, a in order.items() if "green square" in q)


def test_two_visuals_in_one_window_each_get_their_own_word_and_their_order():
    windows = [_labelled(("red circle", 0.0, 2.0, "apple", 1.0), ("blue star", 2.0, 4.5, "river", 3.0),
                         ("green square", 4.5, 5.0, "tiger", 4.8)),
               _labelled(("white circle", 0.0, 5.0), heard=("lemon",))]
    qa = {q: a for _, q, a in recombined_questions(windows, 5.0, random.Random(0))}
    said = {q: a for q, a in qa.items() if "spoken while" in q}
    # the green square is shown 0.5 s only (< 1 s): never named; lemon is only partly heard (centred elsewhere)
    assert said == {"What word is spoken while the red circle is shown?": "apple",
                    "What word is spoken while the blue star is shown?": "river"}
    assert {q: a for q, a in qa.items() if q.startswith("When")} == {
        "When is apple said?": "0-5s", "When is river said?": "0-5s", "When is tiger said?": "0-5s"}
    order = {frozenset(re.findall(r"(?:the )?(\w+ \w+|\w+)(?: or|\?)", q.split(",")[1])): a
             for q, a in qa.items() if q.startswith("Which")}
    assert order == {frozenset({"red circle", "blue star"}): "red circle",
                     frozenset({"blue star", "white circle"}): "blue star",
                     frozenset({"apple", "river"}): "apple", frozenset({"river", "tiger"}): "river"}


def test_a_word_heard_twice_is_not_asked_about():
    windows = [_labelled(("red circle", 0.0, 5.0, "apple", 2.0)), _labelled(("blue star", 0.0, 5.0), heard=("apple",)),
               _labelled(("green square", 0.0, 5.0, "tiger", 1.0))]
    qa = {q: a for _, q, a in recombined_questions(windows, 5.0, random.Random(0))}
    assert "When is apple said?" not in qa and qa["When is tiger said?"] == "10-15s"
    assert not any("apple or" in q or "or apple" in q for q in qa)
    assert qa["What word is spoken while the red circle is shown?"] == "apple"  # the answer may repeat; the shape not


def test_every_sampled_answer_is_held_by_the_windows_of_its_prompt():
    visuals = [f"{c} {s}" for c in ("red", "blue", "green", "white") for s in ("circle", "star", "square")]
    words = ["apple", "river", "tiger", "lemon", "violin", None]
    pool = []
    for i in range(40):
        split_s = 1.0 + (i % 4)  # two visuals per window, the first shown for 1-4 s
        first, second = visuals[i % len(visuals)], visuals[(7 * i + 3) % len(visuals)]
        w1, w2 = words[i % len(words)], words[(i + 2) % len(words)]
        pool.append(_labelled((first, 0.0, split_s, w1, 0.5 * split_s if w1 else None),
                              (second, split_s, 5.0, w2, split_s + 0.5 if w2 else None),
                              marker=i, av_agreement=i / 100, frame_audio=np.full((4, 3), i, np.float32),
                              frame_visual=np.full((4, 3), -i, np.float32)))
    by_marker = {int(w.tokens[0, 0]): w for w in pool}
    clips = RecombinedClips(pool, window_s=5.0)
    seen = set()
    sampler = random.Random(1)
    for _ in range(300):
        windows, question, answer = clips.sample(sampler)
        assert 3 <= len(windows) <= 6
        assert [(w.t_start, w.t_end) for w in windows] == [(5.0 * i, 5.0 * (i + 1)) for i in range(len(windows))]
        labels = [by_marker[int(w.tokens[0, 0])] for w in windows]
        assert [w.av_agreement for w in windows] == [w.av_agreement for w in labels]  # each window keeps its own
        for w, label in zip(windows, labels):  # ... and its frame vectors (frame grounding)
            assert w.frame_audio is label.frame_audio and w.frame_visual is label.frame_visual
        shown = [(5.0 * i + v.start_s, v) for i, label in enumerate(labels) for v in label.shown]
        said = sorted((5.0 * i + v.word_at_s, v.word) for i, label in enumerate(labels) for v in label.shown if v.word)
        if m := re.search(r"spoken while the (.+) is shown", question):
            seen.add("said_while")
            assert [v.word for _, v in shown if v.visual == m.group(1)] == [answer]
        elif m := re.search(r"When is (\w+) said", question):
            seen.add("when")
            (t,) = [t for t, word in said if word == m.group(1)]
            assert answer == f"{5 * int(t // 5)}-{5 * int(t // 5) + 5}s"
        elif m := re.search(r"Which comes first, the (.+) or the (.+)\?", question):
            seen.add("order")
            names = [v.visual for _, v in shown]
            assert answer == min(m.groups(), key=names.index)
            (w1,) = [int(t // 5) for t, v in shown if v.visual == m.group(1)]
            (w2,) = [int(t // 5) for t, v in shown if v.visual == m.group(2)]
            seen.add("order in one window" if w1 == w2 else "order")
        else:
            m = re.search(r"Which word is said first, (\w+) or (\w+)\?", question)
            seen.add("word order")
            names = [word for _, word in said]
            assert answer == min(m.groups(), key=names.index)
    assert seen == {"said_while", "when", "order", "order in one window", "word order"}
    # a draw picks the question type first: each type about a third of the draws, though the clips hold fewer "when"
    # questions than the others
    drawn = [clips.sample(sampler)[1].split()[0] for _ in range(600)]  # "What" / "When" / "Which"
    assert all(0.25 < drawn.count(first) / len(drawn) < 0.42 for first in ("What", "When", "Which"))
    asked = [q for _ in range(100) for q in recombined_questions(sampler.sample(pool, 4), 5.0, sampler)]
    share = {t: sum(a == t for a, _, _ in asked) / len(asked) for t in ("said_while", "when", "order")}
    assert share["when"] < 0.2, share  # a question drawn uniformly would be "when" in under a fifth of the draws
    assert all(q.startswith({"said_while": "What", "when": "When", "order": "Which"}[t]) for t, q, _ in asked)


def test_a_pool_too_small_to_recombine_is_refused():
    with pytest.raises(ValueError, match="at least 6"):
        RecombinedClips([_labelled(("red circle", 0.0, 5.0, "apple", 2.0))] * 5, window_s=5.0)


def test_audio_match_draws_lay_out_only_own_or_only_mismatched_windows():
    pool = [_labelled((f"red shape{i}", 0.0, 5.0, f"word{i}", 2.5), marker=i, av_agreement=0.5) for i in range(8)]
    mismatched = [PromptWindow(0.0, 5.0, np.full((2, 3), -1 - i, np.float32), av_agreement=0.0) for i in range(8)]
    clips = RecombinedClips(pool, window_s=5.0, mismatched=mismatched, av_share=0.5)
    answers = []
    sampler = random.Random(2)
    for _ in range(400):
        windows, question, answer = clips.sample(sampler)
        if question != "Does the audio match the video?":
            assert all(w.tokens[0, 0] >= 0 for w in windows)  # other questions: own-audio windows only
            continue
        markers = [w.tokens[0, 0] for w in windows]
        assert all(m >= 0 for m in markers) if answer == "yes" else all(m < 0 for m in markers)
        assert [(w.t_start, w.av_agreement) for w in windows] == [
            (5.0 * i, 0.5 if answer == "yes" else 0.0) for i in range(len(windows))]
        answers.append(answer)
    assert 0.4 < len(answers) / 400 < 0.6 and 0.4 < answers.count("yes") / len(answers) < 0.6
    # too few mismatched windows to lay out a clip: no audio-match draws
    few = RecombinedClips(pool, window_s=5.0, mismatched=mismatched[:3], av_share=0.5)
    assert all(few.sample(sampler)[1] != "Does the audio match the video?" for _ in range(50))
