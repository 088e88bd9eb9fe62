from favor_ops.retrieval.queries import generate_queries, is_relevant, query_text, relevant_segments, segment_attrs


def _seg(t0, t1, color, shape, word=None, sound=None, tone_hz=None, events=()):
    return {"t_start": t0, "t_end": t1,
            "visual": {"color": color, "shape": shape, "motion": "static", "background": "gray"},
            "audio": {"word": word, "sound": sound, "tone_hz": tone_hz},
            "audio_events": list(events), "caption": ""}


MANIFEST = [
    {"file": "a.mp4", "clip_id": "a", "kind": "video", "segments": [
        _seg(0.0, 3.0, "red", "circle", word="apple", events=[{"type": "word", "word": "apple", "t_start": 1.0,
                                                                 "t_end": 1.5}]),
        _seg(3.0, 7.0, "blue", "square", word="river"),
        _seg(7.0, 9.0, "blue", "square", sound="tone", tone_hz=1760),
    ]},
    {"file": "b.mp4", "clip_id": "b", "kind": "video", "segments": [
        _seg(0.0, 4.0, "blue", "square", word="apple"),
        _seg(4.0, 6.0, "green", "star", word="river", sound="noise"),
    ]},
    {"file": "bad.mp4", "clip_id": "bad", "kind": "bad", "broken": {"reason": "zero_bytes"}, "segments": []},
]


def test_segment_attributes():
    assert segment_attrs(MANIFEST[0]["segments"][2]) == {"color": "blue", "shape": "square", "sound": "tone:high"}
    assert segment_attrs(MANIFEST[1]["segments"][1]) == {"color": "green", "shape": "star", "word": "river",
                                                           "sound": "noise"}


def test_query_texts_and_paraphrases():
    assert query_text({"color": "red", "shape": "circle"}) == "a red circle"
    assert query_text({"word": "apple"}) == "someone says apple"
    assert query_text({"sound": "tone:high"}) == "a high beep"
    assert query_text({"sound": "noise"}) == "a burst of noise"
    assert query_text({"color": "blue", "shape": "square", "word": "river"}) == \
        "a blue square while someone says river"
    assert query_text({"word": "apple"}, 1) == "a voice saying apple"
    assert query_text({"word": "apple"}, 3) == "someone says apple"  # wraps around


def test_generated_queries_and_their_ground_truth():
    queries = {q.query_id: q for q in generate_queries(MANIFEST, paraphrase=False)}
    assert sorted(queries) == sorted([
        "visual:color=blue,shape=square", "visual:color=green,shape=star", "visual:color=red,shape=circle",
        "word:word=apple", "word:word=river", "sound:sound=noise", "sound:sound=tone:high",
        "joint:color=blue,shape=square,word=apple", "joint:color=blue,shape=square,word=river",
        "joint:color=green,shape=star,word=river", "joint:color=red,shape=circle,word=apple",
    ])
    blue_river = queries["joint:color=blue,shape=square,word=river"]
    assert blue_river.text == "a blue square while someone says river"
    assert [(s.clip_id, s.t_start, s.t_end) for s in blue_river.segments] == [("a", 3.0, 7.0)]
    # distractors: blue square without river (a 7-9, b 0-4) and river without a blue square (b 4-6)
    assert blue_river.n_distractors == 3
    assert queries["word:word=apple"].segments[0].word_span == (1.0, 1.5)
    blue = queries["visual:color=blue,shape=square"]
    assert len(blue.segments) == 3


def test_relevance_is_overlap_with_a_matching_segment():
    q = {q.query_id: q for q in generate_queries(MANIFEST)}["joint:color=blue,shape=square,word=river"]
    assert is_relevant(q, "a", 0.0, 5.0)  # overlaps 3-7
    assert is_relevant(q, "a", 5.0, 9.0)
    assert not is_relevant(q, "a", 7.0, 9.0)  # blue square but the beep segment
    assert not is_relevant(q, "a", 0.0, 3.0)  # touching is not overlapping
    assert not is_relevant(q, "b", 0.0, 5.0)  # blue square + apple, then river + green star: a distractor
    assert [s.t_start for s in relevant_segments(q, "a", 0.0, 10.0)] == [3.0]
