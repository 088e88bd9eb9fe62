"""Recombined training clips: window labels from the manifest, unambiguous questions, answers the windows hold."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.recombined_clips import LabelledWindow, RecombinedClips, label_windows, recombined_questions


def _segment(t0, t1, color, shape, word=None, word_at=None):
    events = [{"type": "word", "word": word, "t_start": word_at - 0.2, "t_end": word_at + 0.2}] if word else []
    return {"t_start": t0, "t_end": t1, "visual": {"color": color, "shape": shape},
            "audio": {"word": word}, "audio_events": events}


def _window(t0, t1, marker):
    return PromptWindow(t0, t1, np.full((2, 3), marker, np.float32), frame_audio=np.full((4, 3), marker, np.float32),
                        frame_visual=np.full((4, 3), -marker, np.float32))


def test_windows_are_labelled_with_the_visual_covering_most_of_them_and_the_word_centred_in_them():
    record = {"segments": [_segment(0.0, 2.0, "red", "circle", "apple", 1.0),
                           _segment(2.0, 9.0, "blue", "star", "river", 5.2),
                           _segment(9.0, 12.0, "green", "square")]}
    windows = [_window(0.0, 5.0, 0), _window(5.0, 10.0, 1), _window(10.0, 12.0, 2)]
    labelled = label_windows(record, windows, min_visual_s=3.0)
    # [0, 5): blue star 3 s > red circle 2 s, and apple is said at 1.0 s; [5, 10): blue star 4 s, river at 5.2 s;
    # [10, 12): green square for 2 s only (< 3 s): left out
    assert [(w.visual, w.word) for w in labelled] == [("blue star", "apple"), ("blue star", "river")]
    assert labelled[1].tokens[0, 0] == 1
    assert labelled[1].frame_audio is windows[1].frame_audio and labelled[1].frame_visual is windows[1].frame_visual


def test_questions_are_asked_only_when_unambiguous():
    tokens = np.zeros((1, 1), np.float32)
    windows = [LabelledWindow(tokens, "red circle", "apple"), LabelledWindow(tokens, "blue star", None),
               LabelledWindow(tokens, "red circle", "river"), LabelledWindow(tokens, "green square", "tiger")]
    qa = dict(recombined_questions(windows, 5.0, random.Random(0)))
    # the red circle shows twice: no "while the red circle" question; the blue star says nothing
    assert qa["What word is spoken while the green square is shown?"] == "tiger"
    assert not any("red circle is shown" in q or "blue star is shown" in q for q in qa)
    assert qa["When is apple said?"] == "0-5s" and qa["When is river said?"] == "10-15s"
    assert qa["When is tiger said?"] == "15-20s"
    order = {q: a for q, a in qa.items() if q.startswith("Which")}
    assert sorted(order.values()) == ["apple", "blue star", "river"]  # pairs of neighbours among unique names
    assert all(a == "blue star" for q, a in order.items() if "green square" in q)


def test_every_sampled_answer_is_held_by_the_windows_of_its_prompt():
    visuals = [f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "star")]
    words = ["apple", "river", "tiger", "lemon", None]
    pool = []
    for i in range(30):
        visual, word = visuals[i % len(visuals)], words[i % len(words)]
        pool.append(LabelledWindow(np.full((2, 3), i, np.float32), visual, word, av_agreement=i / 100,
                                   frame_audio=np.full((4, 3), i, np.float32),
                                   frame_visual=np.full((4, 3), -i, np.float32)))
    by_marker = {int(w.tokens[0, 0]): w for w in pool}
    clips = RecombinedClips(pool, window_s=5.0)
    seen = set()
    sampler = random.Random(1)
    for _ in range(200):
        windows, question, answer = clips.sample(sampler)
        assert 3 <= len(windows) <= 6
        assert [(w.t_start, w.t_end) for w in windows] == [(5.0 * i, 5.0 * (i + 1)) for i in range(len(windows))]
        labels = [by_marker[int(w.tokens[0, 0])] for w in windows]
        assert [w.av_agreement for w in windows] == [w.av_agreement for w in labels]  # each window keeps its own
        for w, label in zip(windows, labels):  # ... and its frame vectors (frame grounding)
            assert w.frame_audio is label.frame_audio and w.frame_visual is label.frame_visual
        if m := re.search(r"spoken while the (.+) is shown", question):
            seen.add("said_while")
            assert [w.word for w in labels if w.visual == m.group(1)] == [answer]
        elif m := re.search(r"When is (\w+) said", question):
            seen.add("when")
            i = [w.word for w in labels].index(m.group(1))
            assert answer == f"{5 * i}-{5 * (i + 1)}s"
        elif m := re.search(r"Which comes first, the (.+) or the (.+)\?", question):
            seen.add("order")
            names = [w.visual for w in labels]
            assert answer == min(m.groups(), key=names.index)
        else:
            m = re.search(r"Which word is said first, (\w+) or (\w+)\?", question)
            seen.add("word order")
            names = [w.word for w in labels]
            assert answer == min(m.groups(), key=names.index)
    assert seen == {"said_while", "when", "order", "word order"}


def test_a_pool_too_small_to_recombine_is_refused():
    with pytest.raises(ValueError, match="at least 6"):
        RecombinedClips([LabelledWindow(np.zeros((1, 1), np.float32), "red circle", "apple")] * 5, window_s=5.0)


def test_audio_match_draws_lay_out_only_own_or_only_mismatched_windows():
    pool = [LabelledWindow(np.full((2, 3), i, np.float32), f"red shape{i}", f"word{i}", av_agreement=0.5)
            for i in range(8)]
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
