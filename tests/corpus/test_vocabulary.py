import itertools

import numpy as np

from favor_ops.corpus import vocabulary as vocab
from favor_ops.corpus.soundtrack import spoken_word


def _dist(a, b):
    return float(np.linalg.norm(np.array(a, float) - np.array(b, float)))


def test_vocabulary_sizes():
    assert len(vocab.COLORS) >= 6
    assert len(vocab.SHAPES) >= 4
    assert len(set(vocab.WORDS)) == len(vocab.WORDS) >= 30
    assert [t.hz for t in vocab.TONES] == [440, 880, 1760]
    assert vocab.TONE_NAME_BY_HZ == {440: "low", 880: "mid", 1760: "high"}


def test_colours_far_apart_and_from_backgrounds():
    min_colour = min(_dist(a, b) for a, b in itertools.combinations(vocab.COLORS.values(), 2))
    min_bg = min(_dist(c, b) for c in vocab.COLORS.values() for b in vocab.BACKGROUNDS.values())
    assert min_colour >= 90.0, min_colour
    assert min_bg >= 120.0, min_bg


def test_words_do_not_collide_with_other_caption_terms():
    others = set(vocab.COLORS) | set(vocab.SHAPES) | set(vocab.SOUNDS) | {"beep", "noise", "low", "mid", "high"}
    assert not others & set(vocab.WORDS)


def test_every_word_is_spoken_short_enough_for_a_one_second_segment():
    # A 1 s segment keeps 0.1 s margins, so every trimmed word must be <= 0.8 s at 48 kHz.
    lengths_s = {w: len(spoken_word(w, 48000)) / 48000 for w in vocab.WORDS}
    assert max(lengths_s.values()) <= 0.8, max(lengths_s.items(), key=lambda kv: kv[1])
    assert min(lengths_s.values()) >= 0.2, min(lengths_s.items(), key=lambda kv: kv[1])


def test_motion_and_background_phrases():
    assert vocab.motion_phrase("static") == ""
    assert vocab.motion_phrase("left_to_right") == "moving left to right"
    assert vocab.background_phrase("dark_blue") == "dark blue"
