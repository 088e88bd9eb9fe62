"""Synchronisation on real decoded audio: a beep at a known time lands in the right frame's slots.

A synthetic corpus records every tone's exact onset and offset. After encoding
to AAC/Opus/Vorbis and decoding back at 16 kHz, the energy at the tone's pitch,
measured per 20 ms speech-encoder frame and gathered into per-video-frame slots
by favor_ops.media.sync, must peak in the video frame whose time slice holds
the tone, and stay low in frames that hold no tone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from favor_ops.corpus.manifest import read_manifest
from favor_ops.corpus.synth import synthesize_corpus
from favor_ops.media.decode import DecodeConfig, decode
from favor_ops.media.sync import WHISPER_FRAME_RATE_HZ, frame_audio_index, gather_audio_slots

CFG = DecodeConfig(fps=2.0, image_size=32)
SAMPLES_PER_SPEECH_FRAME = int(CFG.sample_rate_hz / WHISPER_FRAME_RATE_HZ)  # 320 samples = 20 ms


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync_corpus")
    synthesize_corpus(out, n_videos=12, seed=3, include_bad=False, max_duration_s=20, progress=False)
    return out, read_manifest(out)


def tone_energy_per_speech_frame(audio: np.ndarray, tone_hz: float) -> np.ndarray:
    """(A,) energy at tone_hz of each 20 ms frame (projection on a complex exponential)."""
    n = len(audio) // SAMPLES_PER_SPEECH_FRAME
    frames = audio[: n * SAMPLES_PER_SPEECH_FRAME].reshape(n, SAMPLES_PER_SPEECH_FRAME)  # (A, 320)
    t = np.arange(SAMPLES_PER_SPEECH_FRAME) / CFG.sample_rate_hz
    basis = np.exp(-2j * np.pi * tone_hz * t)  # (320,)
    return np.abs(frames @ basis) ** 2  # (A,)


def test_every_beep_lands_in_the_slots_of_its_frame(corpus):
    root, records = corpus
    checked = 0
    for record in records:
        if not record["has_audio"]:
            continue
        tones = [e for s in record["segments"] for e in s.get("audio_events", []) if e["type"] == "tone"]
        if not tones:
            continue
        media = decode(str(root / record["file"]), CFG)
        n_frames = max(1, math.ceil(media.info.duration_s * CFG.fps - 1e-6))
        for tone in tones:
            energy = tone_energy_per_speech_frame(media.audio, tone["hz"])[:, None]  # (A, 1)
            index, mask = frame_audio_index(n_frames, len(energy), CFG.fps)
            slots = gather_audio_slots(energy, index, mask)[..., 0]  # (N, S_a)
            per_frame = slots.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)  # (N,) mean tone energy per frame
            mid_s = (tone["t_start"] + tone["t_end"]) / 2
            expected_frame = int(mid_s * CFG.fps)
            # Frames that overlap no tone of this pitch at all.
            quiet = [
                k for k in range(n_frames)
                if all(k / CFG.fps >= e["t_end"] or (k + 1) / CFG.fps <= e["t_start"] for e in tones if e["hz"] == tone["hz"])
            ]
            assert quiet, record["file"]
            assert per_frame[expected_frame] > 20 * np.median(per_frame[quiet]), (record["file"], tone)
            # The frame holding most of the tone has the most tone energy among frames the tone touches.
            touched = [k for k in range(n_frames) if k / CFG.fps < tone["t_end"] and (k + 1) / CFG.fps > tone["t_start"]]
            overlap = {k: min((k + 1) / CFG.fps, tone["t_end"]) - max(k / CFG.fps, tone["t_start"]) for k in touched}
            assert int(np.argmax(per_frame[touched])) == touched.index(max(overlap, key=overlap.get)), (record["file"], tone)
            checked += 1
    assert checked >= 2, "the corpus should hold at least two tones to check"
