import numpy as np
import pytest
import torch

from favor_ops.media.sync import audio_slots_per_frame, frame_audio_index, frame_times_s, gather_audio_slots


@pytest.mark.parametrize(
    "fps, slots",
    [(2.0, 25), (1.0, 50), (0.5, 100), (3.0, 17), (4.0, 13), (25.0, 2), (50.0, 1), (60.0, 1), (2.5, 20)],
)
def test_slots_per_frame_is_ceil_of_rate_over_fps(fps, slots):
    assert audio_slots_per_frame(fps) == slots


def test_two_fps_assigns_25_consecutive_speech_frames_per_frame():
    index, mask = frame_audio_index(n_frames=3, n_audio_frames=75, fps=2.0)
    assert index.shape == (3, 25)
    assert mask.all()
    np.testing.assert_array_equal(index[0], np.arange(0, 25))
    np.testing.assert_array_equal(index[1], np.arange(25, 50))
    np.testing.assert_array_equal(index[2], np.arange(50, 75))


def test_non_integer_ratio_masks_the_slot_that_belongs_to_the_next_frame():
    # 3 FPS: frame k covers [k/3, (k+1)/3) s = speech frames [50k/3, 50(k+1)/3): 17, 17, 16 frames.
    index, mask = frame_audio_index(n_frames=3, n_audio_frames=50, fps=3.0)
    assert mask.sum(axis=1).tolist() == [17, 17, 16]
    assert index[0][mask[0]].tolist() == list(range(0, 17))
    assert index[1][mask[1]].tolist() == list(range(17, 34))
    assert index[2][mask[2]].tolist() == list(range(34, 50))
    # Every speech frame is used exactly once.
    assert sorted(index[mask].tolist()) == list(range(50))


def test_audio_shorter_than_video_masks_missing_slots():
    index, mask = frame_audio_index(n_frames=4, n_audio_frames=60, fps=2.0)
    assert mask.sum(axis=1).tolist() == [25, 25, 10, 0]
    assert (index[~mask] == 0).all()


def test_gather_zeroes_padding_numpy_and_torch_agree():
    feats = np.arange(30 * 2, dtype=np.float32).reshape(30, 2) + 1.0  # (A=30, D=2), no zeros
    index, mask = frame_audio_index(n_frames=2, n_audio_frames=30, fps=2.0)
    slots = gather_audio_slots(feats, index, mask)  # (2, 25, 2)
    assert slots.shape == (2, 25, 2)
    np.testing.assert_array_equal(slots[0], feats[:25])
    np.testing.assert_array_equal(slots[1, :5], feats[25:30])
    assert (slots[1, 5:] == 0).all()
    slots_t = gather_audio_slots(torch.from_numpy(feats), index, mask)
    np.testing.assert_array_equal(slots_t.numpy(), slots)


def test_gather_from_empty_audio_is_all_zero():
    index, mask = frame_audio_index(n_frames=2, n_audio_frames=0, fps=2.0)
    assert not mask.any()
    slots = gather_audio_slots(np.zeros((0, 4), np.float32), index, mask)
    assert slots.shape == (2, 25, 4) and not slots.any()


def test_frame_times():
    np.testing.assert_allclose(frame_times_s(4, 2.0, t0_s=10.0), [10.0, 10.5, 11.0, 11.5])
