"""Question generation from a hand-made manifest record: exact questions and answers."""

from favor_ops.qa.prompt import PromptWindow, prompt_pieces
from favor_ops.qa.questions import clip_questions

import numpy as np


def _seg(t0, t1, color=None, shape=None, word=None, word_at=None, tone_hz=None):
    seg = {"t_start": t0, "t_end": t1, "audio_events": []}
    if color:
        seg["visual"] = {"color": color, "shape": shape}
    seg["audio"] = {"word": word, "sound": "tone" if tone_hz else None, "tone_hz": tone_hz}
    if word:
        seg["audio_events"].append({"type": "word", "word": word, "t_start": word_at, "t_end": word_at + 0.4})
    return seg


RECORD = {"clip_id": "v1", "kind": "video", "has_video": True, "has_audio": True, "duration_s": 12.0,
          "segments": [_seg(0, 4, "red", "circle", "apple", 1.0), _seg(4, 8, "blue", "square", tone_hz=1760),
                       _seg(8, 12, "red", "circle", "river", 10.6)]}


def test_questions_are_asked_only_when_unambiguous():
    qs = clip_questions(RECORD, window_s=5.0)
    by_type = {}
    for q in qs:
        by_type.setdefault(q.qtype, []).append((q.question, q.answer))
    # the red circle occurs twice: no said_while about it, and no order question with it
    assert "said_while" not in by_type
    assert by_type["order"] == [("Which word is said first, apple or river?", "apple")] or \
        by_type["order"] == [("Which word is said first, river or apple?", "apple")]
    assert by_type["when"] == [("When is apple said?", "0-5s"), ("When is river said?", "10-12s")]
    assert by_type["av_match"] == [("Does the audio match the video?", "yes"), ("Does the audio match the video?", "no")]
    assert [q.swapped_audio for q in qs if q.qtype == "av_match"] == [False, True]
    assert "sound_after" not in by_type  # the segment before the beep shows the (ambiguous) red circle


def test_said_while_and_sound_after():
    record = dict(RECORD, segments=RECORD["segments"][:2] + [_seg(8, 12, "green", "star", "river", 9.0)])
    qs = {(q.qtype, q.question): q.answer for q in clip_questions(record)}
    assert qs[("said_while", "What word is spoken while the red circle is shown?")] == "apple"
    assert qs[("said_while", "What word is spoken while the green star is shown?")] == "river"
    assert qs[("sound_after", "What sound plays after the red circle?")] == "a high beep"


def test_said_while_and_order_know_whether_they_ask_inside_one_window_and_are_scored_both_ways():
    from favor_ops.qa.evaluate import score_answers

    # apple (middle 1.2 s) and river (middle 3.7 s) are both in window 0-5 s; lemon (middle 9.2 s) is alone in 5-10 s
    record = dict(RECORD, segments=[_seg(0, 2.5, "red", "circle", "apple", 1.0),
                                    _seg(2.5, 5, "green", "star", "river", 3.5),
                                    _seg(5, 12, "blue", "square", "lemon", 9.0)])
    said = {q.answer: q for q in clip_questions(record, window_s=5.0) if q.qtype == "said_while"}
    assert {w: q.shares_window for w, q in said.items()} == {"apple": True, "river": True, "lemon": False}
    pairs = [said["apple"], said["river"], said["lemon"]]
    scores = score_answers(pairs, ["apple", "apple", "lemon"], window_s=5.0)
    assert scores["said_while"] == {"value": round(2 / 3, 4), "n": 3}
    assert scores["said_while_shared_window"] == {"value": 0.5, "n": 2}
    assert scores["said_while_own_window"] == {"value": 1.0, "n": 1}
    assert scores["overall"]["n"] == 3
    # order: apple and river in one window; river (word middle 3.7 s) and lemon in two; the red circle (middle
    # 1.25 s) and green star (3.75 s) in one window, the green star and blue square (8.5 s) in two
    order = {q.question: q.shares_window for q in clip_questions(record, window_s=5.0) if q.qtype == "order"}
    assert sorted(order.values()) == [False, False, True, True]
    assert {frozenset(k for k in ("apple", "river", "lemon", "red circle", "green star", "blue square") if k in q): v
            for q, v in order.items()} == {frozenset({"apple", "river"}): True, frozenset({"river", "lemon"}): False,
                                           frozenset({"red circle", "green star"}): True,
                                           frozenset({"green star", "blue square"}): False}


def test_no_questions_for_clips_without_both_modalities():
    assert clip_questions(dict(RECORD, has_audio=False)) == []
    assert clip_questions(dict(RECORD, kind="bad")) == []


def test_prompt_carries_each_window_span_in_time_order():
    w = [PromptWindow(5.0, 10.0, np.zeros((2, 4), np.float32)), PromptWindow(0.0, 5.0, np.ones((2, 4), np.float32))]
    pieces = prompt_pieces(w, " When is apple said? ")
    assert pieces[0] == "USER: <Img>"
    assert pieces[1] == "[0-5s]" and pieces[2] is w[1] and pieces[3] == "[5-10s]" and pieces[4] is w[0]
    assert pieces[5] == "</Img> When is apple said?\nASSISTANT:"


def test_decoded_spans_are_joined_as_the_prompt_writes_them():
    from favor_ops.qa.prompt import format_span, joined_spans
    from favor_ops.qa.tokenizer import load_tokenizer

    tok = load_tokenizer("minilm-wordpiece")
    for t0, t1 in ((0.0, 5.0), (7.5, 10.0), (15.0, 17.5)):
        span = format_span(t0, t1)
        decoded = tok.decode(tok(span, add_special_tokens=False)["input_ids"])
        assert decoded != span  # WordPiece decoding spaces it out
        assert joined_spans(decoded) == span
    assert joined_spans("a burst of noise") == "a burst of noise"
    assert joined_spans("red circle - 3 times. 4 more") == "red circle - 3 times. 4 more"  # no digit on both sides
