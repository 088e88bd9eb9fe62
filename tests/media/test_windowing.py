import math

import numpy as np
import pytest

from favor_ops.media.windowing import WindowSpec, gather_windows, num_windows, window_frame_index, window_spans


@pytest.mark.parametrize("n_frames", [0, 1, 9, 10, 11, 20, 25, 359, 360])
def test_non_overlapping_window_count_is_ceil(n_frames):
    assert num_windows(n_frames, WindowSpec(10, 10)) == math.ceil(n_frames / 10)


def test_last_window_is_padded_and_masked():
    index, mask = window_frame_index(23, WindowSpec(10, 10))
    assert index.shape == (3, 10)
    np.testing.assert_array_equal(index[0], np.arange(10))
    np.testing.assert_array_equal(index[2, :3], [20, 21, 22])
    assert mask[:2].all() and mask[2].tolist() == [True] * 3 + [False] * 7
    assert (index[~mask] == 0).all()


def test_overlapping_windows_cover_every_frame():
    spec = WindowSpec(frames_per_window=4, stride_frames=2)
    index, mask = window_frame_index(9, spec)
    # starts 0, 2, 4, 6 (the window at 6 holds 6, 7, 8 + one pad)
    assert index[:, 0].tolist() == [0, 2, 4, 6]
    assert set(index[mask].tolist()) == set(range(9))
    assert mask[-1].tolist() == [True, True, True, False]


def test_spans_are_absolute_and_clipped_to_duration():
    t_start, t_end = window_spans(23, fps=2.0, spec=WindowSpec(10, 10), duration_s=11.3, t0_s=0.0)
    np.testing.assert_allclose(t_start, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(t_end, [5.0, 10.0, 11.3])
    t_start, t_end = window_spans(20, fps=2.0, spec=WindowSpec(10, 10), t0_s=100.0)
    np.testing.assert_allclose(t_start, [100.0, 105.0])
    np.testing.assert_allclose(t_end, [105.0, 110.0])


def test_other_fps_and_lengths_are_configuration():
    t_start, t_end = window_spans(7, fps=1.0, spec=WindowSpec(3, 3))
    np.testing.assert_allclose(t_start, [0.0, 3.0, 6.0])
    np.testing.assert_allclose(t_end, [3.0, 6.0, 7.0])


def test_gather_windows_pads_with_zeros():
    values = np.arange(1, 24, dtype=np.float32)[:, None].repeat(2, axis=1)  # (23, 2), no zeros
    windows, mask = gather_windows(values, WindowSpec(10, 10))
    assert windows.shape == (3, 10, 2)
    np.testing.assert_array_equal(windows[2, :3, 0], [21, 22, 23])
    assert (windows[2, 3:] == 0).all()


def test_invalid_specs_are_refused():
    with pytest.raises(ValueError):
        WindowSpec(0, 1)
    with pytest.raises(ValueError):
        WindowSpec(4, 5)
