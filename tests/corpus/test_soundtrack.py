import numpy as np

from favor_ops.corpus.plan import AudioPlan, ClipPlan, CorpusConfig, SegmentPlan, VariantSpec
from favor_ops.corpus.soundtrack import (
    non_silent_extent,
    place_segment_audio,
    render_soundtrack,
    resample_linear,
    spoken_word,
    tone,
)

CFG = CorpusConfig()
RATE = CFG.sample_rate_hz


def test_non_silent_extent_exact():
    x = np.zeros(100, np.float32)
    x[10] = 0.5
    x[40] = -1.0
    x[60] = 0.005  # below 2% of the peak
    assert non_silent_extent(x, 0.02) == (10, 41)
    assert non_silent_extent(np.zeros(5, np.float32), 0.02) == (0, 0)


def test_resample_linear_length_and_values():
    y = resample_linear(np.array([0.0, 1.0, 2.0, 3.0], np.float32), 2, 4)
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0])


def test_tone_is_a_sine_at_its_pitch():
    y = tone(880, 0.5, RATE)
    assert len(y) == RATE // 2
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * RATE / len(y) == 880.0


def test_segment_events_are_exact_and_inside_the_segment():
    audio = AudioPlan(word="apple", sound="tone", tone_hz=440, sound_first=False, onset_fraction=0.0, sound_duration_s=0.3)
    seg = SegmentPlan(2.0, 5.0, None, audio)
    track = np.zeros(6 * RATE, np.float32)
    events = place_segment_audio(seg, track, CFG)
    word_len = len(spoken_word("apple", RATE))
    assert events[0] == {"type": "word", "word": "apple", "t_start": 2.1, "t_end": round((2.1 * RATE + word_len) / RATE, 6)}
    tone_start = events[0]["t_end"] + 0.2
    assert events[1]["type"] == "tone" and events[1]["hz"] == 440
    assert abs(events[1]["t_start"] - tone_start) < 1e-6 and abs(events[1]["t_end"] - (tone_start + 0.3)) < 1e-6
    # the samples say the same: the word's first and last loud samples are the event bounds
    first, stop = non_silent_extent(track[: int(events[1]["t_start"] * RATE)], 0.02)
    assert first == int(2.1 * RATE) and stop == int(2.1 * RATE) + word_len
    assert not track[: 2 * RATE].any() and not track[int(5.0 * RATE) :].any()


def test_silence_event_covers_segment_and_track_is_silent():
    clip = ClipPlan(0, "x", VariantSpec("audio_only", "wav", None, "pcm_s16le", None, None, None), 2.0,
                    (SegmentPlan(0.0, 2.0, None, AudioPlan(word=None, sound="silence", tone_hz=None)),))
    track, events = render_soundtrack(clip, CFG)
    assert track.shape == (2 * RATE,) and not track.any()
    assert events == [[{"type": "silence", "t_start": 0.0, "t_end": 2.0}]]
