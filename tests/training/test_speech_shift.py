"""favor_ops/training/speech_pretrain.py `rotate_events`: the waveform and its event spans move together."""

import numpy as np

from favor_ops.training.speech_pretrain import rotate_events

RATE = 10  # samples per second: small, exact numbers


def test_events_move_with_the_samples_and_cut_events_are_left_out():
    wave = np.zeros(100, np.float32)  # 10 s
    events = [(1.0, 2.0, ("w", "apple")), (5.0, 6.0, ("w", "river")), (8.0, 9.0, ("s", "tone"))]
    for start, stop, _ in events:
        wave[int(start * RATE):int(stop * RATE)] = start  # each event's samples carry its start time
    rotated, moved = rotate_events(wave, events, 3.5, RATE)
    assert len(rotated) == len(wave)
    # apple 1-2 s -> 4.5-5.5 s, river 5-6 s -> 8.5-9.5 s, tone 8-9 s -> 11.5-12.5 s = 1.5-2.5 s after wrapping
    assert moved == [(4.5, 5.5, ("w", "apple")), (8.5, 9.5, ("w", "river")), (1.5, 2.5, ("s", "tone"))]
    for (u0, u1, _), (t0, _t1, _) in zip(moved, events):
        np.testing.assert_array_equal(rotated[round(u0 * RATE):round(u1 * RATE)], t0)


def test_an_event_the_rotation_cuts_in_two_is_left_out():
    wave = np.arange(100, dtype=np.float32)
    rotated, moved = rotate_events(wave, [(9.0, 10.0, ("w", "x")), (2.0, 3.0, ("w", "y"))], 0.5, RATE)
    assert moved == [(2.5, 3.5, ("w", "y"))]  # 9-10 s would span the wrap point
    assert rotated[5] == 0.0 and rotated[0] == 95.0
