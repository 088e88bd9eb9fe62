"""window_transcripts on hand-made segments: words go to the window they overlap most, in time order."""

from __future__ import annotations

import numpy as np
import pytest

from favor_ops.asr import (
    ASR_CHOICES,
    AsrUnavailableError,
    Segment,
    Word,
    asr_version,
    load_transcriber,
    resample_to_16k,
    window_transcripts,
)

STARTS = [0.0, 5.0, 10.0]
ENDS = [5.0, 10.0, 12.5]  # the last window clipped at the duration


def seg(*words: tuple[float, float, str]) -> Segment:
    return Segment(words[0][0], words[-1][1], " ".join(w[2] for w in words), tuple(Word(*w) for w in words))


def test_each_word_goes_to_the_window_that_contains_it():
    segments = [seg((0.5, 1.0, "apple"), (1.2, 1.6, "river")), seg((6.0, 6.4, "tiger")), seg((11.0, 11.5, "zebra"))]
    assert window_transcripts(segments, STARTS, ENDS) == ["apple river", "tiger", "zebra"]


def test_a_word_across_a_boundary_goes_to_the_larger_overlap_and_a_tie_to_the_earlier_window():
    assert window_transcripts([seg((4.0, 5.5, "early"))], STARTS, ENDS) == ["early", "", ""]
    assert window_transcripts([seg((4.6, 6.0, "late"))], STARTS, ENDS) == ["", "late", ""]
    assert window_transcripts([seg((4.5, 5.5, "tie"))], STARTS, ENDS) == ["tie", "", ""]


def test_words_of_one_segment_can_land_in_different_windows():
    segments = [seg((3.0, 3.5, "garden"), (5.2, 5.8, "robot"), (10.1, 10.4, "pencil"))]
    assert window_transcripts(segments, STARTS, ENDS) == ["garden", "robot", "pencil"]


def test_a_segment_without_word_timestamps_is_assigned_whole():
    segments = [Segment(1.0, 3.0, " hello  there "), Segment(4.0, 8.0, "mostly second")]
    assert window_transcripts(segments, STARTS, ENDS) == ["hello there", "mostly second", ""]


def test_a_zero_length_word_goes_to_the_window_containing_its_instant():
    assert window_transcripts([seg((5.0, 5.0, "edge"))], STARTS, ENDS) == ["", "edge", ""]


def test_words_outside_every_window_go_to_the_nearest_one():
    segments = [seg((-0.8, -0.2, "before")), seg((12.6, 13.4, "after"))]
    assert window_transcripts(segments, STARTS, ENDS) == ["before", "", "after"]


def test_words_are_ordered_by_time_and_blank_words_dropped():
    segments = [seg((7.0, 7.5, "second")), seg((5.5, 6.0, "first"), (6.1, 6.2, "  "))]
    assert window_transcripts(segments, STARTS, ENDS) == ["", "first second", ""]


def test_no_segments_give_empty_transcripts_and_no_windows_give_none():
    assert window_transcripts([], STARTS, ENDS) == ["", "", ""]
    assert window_transcripts([seg((0.0, 1.0, "lost"))], [], []) == []


def test_mismatched_window_arrays_are_refused():
    with pytest.raises(ValueError):
        window_transcripts([], [0.0, 5.0], [5.0])


def test_shifted_moves_the_segment_and_its_words():
    moved = seg((1.0, 2.0, "a"), (2.5, 3.0, "b")).shifted(30.0)
    assert (moved.t_start_s, moved.t_end_s) == (31.0, 33.0)
    assert [(w.t_start_s, w.t_end_s, w.text) for w in moved.words] == [(31.0, 32.0, "a"), (32.5, 33.0, "b")]
    assert window_transcripts([moved], [30.0, 32.5], [32.5, 35.0]) == ["a", "b"]


def test_resample_to_16k_keeps_the_duration_and_passes_16k_through():
    x = np.sin(np.linspace(0, 20, 48000)).astype(np.float32)  # 1 s at 48 kHz
    y = resample_to_16k(x, 48000)
    assert y.dtype == np.float32 and len(y) == 16000
    np.testing.assert_allclose(y[::100], x[::300], atol=1e-3)
    np.testing.assert_array_equal(resample_to_16k(x[:16000], 16000), x[:16000])


def test_asr_version_names_the_transcriber_and_is_stable():
    version = asr_version("whisper-tiny-en")
    assert version.startswith("whisper-tiny-en-") and version == asr_version("whisper-tiny-en")
    assert ASR_CHOICES == ("whisper-tiny-en",)


def test_unknown_asr_names_are_configuration_errors():
    with pytest.raises(AsrUnavailableError, match="unknown ASR"):
        asr_version("whisper-large")
    with pytest.raises(ValueError, match="unknown ASR"):  # the CLI reports it as bad input (exit 2)
        load_transcriber("nope")
