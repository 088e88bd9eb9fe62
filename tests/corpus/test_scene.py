import numpy as np
import pytest

from favor_ops.corpus import vocabulary as vocab
from favor_ops.corpus.plan import CorpusConfig, SegmentPlan, VisualPlan
from favor_ops.corpus.scene import (
    frame_index_range,
    iter_segment_frames,
    shape_mask,
    shape_offset,
    shape_side_px,
    sounding_side_px,
    sounding_spans,
)

CFG = CorpusConfig()


def test_shape_masks_exact_small_cases():
    assert shape_mask("square", 3).all()
    circle = shape_mask("circle", 4)
    # corners of a 4x4 circle fall outside the unit disc, the inner 2x2 inside
    assert not circle[0, 0] and not circle[3, 3] and circle[1:3, 1:3].all()
    tri = shape_mask("triangle", 4)
    assert tri[3].all() and not tri[0, 0] and not tri[0, 3]


@pytest.mark.parametrize("shape", vocab.SHAPES)
@pytest.mark.parametrize("size", [(160, 120), (320, 240), (1920, 1080), (360, 640), (426, 240)])
def test_shape_covers_at_least_15_percent_and_fits(shape, size):
    width, height = size
    side = shape_side_px(shape, width, height, CFG)
    assert side <= min(width, height)
    fraction = shape_mask(shape, side).sum() / (width * height)
    assert 0.15 <= fraction <= 0.25, fraction


def test_frame_index_range_exact():
    assert list(frame_index_range(0.0, 1.0, 24)) == list(range(0, 24))
    assert list(frame_index_range(2.5, 3.0, 25)) == list(range(63, 75))  # frame 62 is at 2.48 s
    assert len(frame_index_range(0.0, 12.0, 30)) == 360


def test_static_segment_frames_have_exact_colours():
    visual = VisualPlan(color="red", shape="square", motion="static", background="black")
    frames = list(iter_segment_frames(SegmentPlan(0.0, 0.5, visual, None), 320, 240, 10, CFG))
    assert len(frames) == 5
    f = frames[0]
    side = shape_side_px("square", 320, 240, CFG)
    assert tuple(f[120, 160]) == vocab.COLORS["red"]
    assert tuple(f[0, 0]) == vocab.BACKGROUNDS["black"]
    assert (np.all(f == np.array(vocab.COLORS["red"], np.uint8), axis=-1)).sum() == side * side


def test_moving_shape_travels_left_to_right_inside_frame():
    visual = VisualPlan(color="blue", shape="circle", motion="left_to_right", background="gray")
    seg = SegmentPlan(1.0, 2.0, visual, None)
    side = shape_side_px("circle", 320, 240, CFG)
    assert shape_offset(visual, side, 320, 240, 0.0) == (0, (240 - side) // 2)
    assert shape_offset(visual, side, 320, 240, 1.0) == (320 - side, (240 - side) // 2)
    xs = []
    for frame in iter_segment_frames(seg, 320, 240, 4, CFG):
        cols = np.flatnonzero(np.all(frame == np.array(vocab.COLORS["blue"], np.uint8), axis=-1).any(axis=0))
        xs.append((int(cols[0]), int(cols[-1])))
    assert len(xs) == 4
    lefts = [x[0] for x in xs]
    assert lefts == sorted(lefts) and lefts[0] < lefts[-1]
    assert xs[0][0] >= 0 and xs[-1][1] <= 319


def test_sounding_spans_pad_each_event_and_stay_inside_the_segment():
    cfg = CorpusConfig(sounding_pad_s=0.25)
    events = [{"type": "word", "word": "apple", "t_start": 1.1, "t_end": 1.6},
              {"type": "tone", "hz": 440, "t_start": 2.8, "t_end": 2.95},
              {"type": "silence", "t_start": 1.0, "t_end": 3.0}]
    assert sounding_spans(1.0, 3.0, events, cfg) == [[1.0, 1.85], [2.55, 3.0]]  # clipped at both segment edges
    assert sounding_spans(1.0, 3.0, [events[2]], cfg) == []  # silence makes no sound


def test_shape_is_larger_exactly_while_it_sounds():
    visual = VisualPlan(color="red", shape="square", motion="static", background="black")
    cfg = CorpusConfig(sounding_scale=1.5)
    red = np.array(vocab.COLORS["red"], np.uint8)
    side = shape_side_px("square", 320, 240, cfg)
    big = sounding_side_px(side, 320, 240, cfg)
    assert big == min(round(side * 1.5), 240)
    areas = [int(np.all(f == red, axis=-1).sum())
             for f in iter_segment_frames(SegmentPlan(0.0, 2.0, visual, None), 320, 240, 4, cfg, [[0.5, 1.0]])]
    assert areas == [side * side] * 2 + [big * big] * 2 + [side * side] * 4  # frames at 0.5 and 0.75 s sound


def test_sounding_shape_still_moves_inside_the_frame():
    visual = VisualPlan(color="blue", shape="circle", motion="left_to_right", background="gray")
    blue = np.array(vocab.COLORS["blue"], np.uint8)
    for frame in iter_segment_frames(SegmentPlan(0.0, 1.0, visual, None), 320, 240, 8, CFG, [[0.0, 1.0]]):
        cols = np.flatnonzero(np.all(frame == blue, axis=-1).any(axis=0))
        assert cols[0] >= 0 and cols[-1] <= 319 and len(cols) > shape_side_px("circle", 320, 240, CFG)
