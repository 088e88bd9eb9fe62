from favor_ops.retrieval.queries import Segment
from favor_ops.training.window_dataset import PairingConfig, window_pairing

RED = {"color": "red", "shape": "circle"}
BLUE = {"color": "blue", "shape": "square"}


def _key(d):
    return tuple(sorted(d.items()))


def test_positive_ignored_and_partial_pairs():
    segments = [
        (0, Segment("a", 0.0, 4.5, {**RED, "word": "apple"}, word_span=(1.0, 1.6))),
        (1, Segment("a", 4.5, 9.0, {**BLUE, "word": "river"}, word_span=(8.0, 8.6))),
        (2, Segment("b", 0.0, 9.0, {**BLUE, "sound": "noise"}, sound_span=(0.2, 0.6))),  # another clip: skipped
    ]
    pos, ignored, ids, partial = window_pairing((0.0, 5.0), segments[:2], PairingConfig())
    assert ids == (0, 1)
    # red circle: 4.5 s of the window; apple said inside; joint red circle + apple
    # blue square: 0.5 s (one frame) -> positive visual, but "partial" (0.5 < 0.5 * min(5, 4.5))
    # river is said at 8.0-8.6, outside the window -> ignored (the segment overlaps), joint blue+river ignored too
    assert pos == {_key(RED), _key({"word": "apple"}), _key({**RED, "word": "apple"}), _key(BLUE)}
    assert ignored == {_key({"word": "river"}), _key({**BLUE, "word": "river"})}
    assert partial == {_key(BLUE)}

    pos, ignored, _, partial = window_pairing((5.0, 9.0), segments[:2], PairingConfig())
    assert pos == {_key(BLUE), _key({"word": "river"}), _key({**BLUE, "word": "river"})}
    assert ignored == set() and partial == set()
