"""Audio rendering: espeak-ng words, sine beeps, noise bursts and silence, mixed at exact sample offsets.

Every event's onset and offset come from the samples actually placed: a spoken
word is synthesised with espeak-ng, trimmed to its non-silent extent (first and
last sample above `word_trim_threshold` of its peak), resampled to the corpus
rate, and placed at an integer sample offset, so
`t_start = offset / sample_rate_hz` and `t_end = (offset + len) / sample_rate_hz`
are exact for the rendered track.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from favor_ops.corpus.plan import AudioPlan, ClipPlan, CorpusConfig, SegmentPlan
from favor_ops.errors import FavorError


@dataclass(frozen=True)
class VoiceConfig:
    """espeak-ng settings and the loudness of each event type (peak amplitude in [-1, 1])."""

    voice: str = "en-us"
    words_per_minute: int = 150
    word_peak: float = 0.7
    word_trim_threshold: float = 0.02  # fraction of the word's peak that counts as sound
    tone_peak: float = 0.5
    noise_peak: float = 0.3
    ramp_s: float = 0.005              # raised-cosine fade in/out of tones and noise


class SpeechSynthesisError(FavorError):
    """espeak-ng failed to speak a word."""


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """(T,) float32 in [-1, 1] (first channel) and the sample rate of a 16-bit PCM wav."""
    with wave.open(path, "rb") as w:
        rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        raise SpeechSynthesisError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)[:, 0]
    return samples.astype(np.float32) / 32768.0, rate


def write_wav(path: str, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write (T,) float samples in [-1, 1] as mono 16-bit PCM."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate_hz))
        w.writeframes(pcm.tobytes())


def resample_linear(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """(T,) -> (round(T * to_hz / from_hz),) float32 by linear interpolation."""
    if from_hz == to_hz or len(samples) == 0:
        return samples.astype(np.float32)
    n_out = int(round(len(samples) * to_hz / from_hz))
    t_out = np.arange(n_out, dtype=np.float64) * (from_hz / to_hz)
    return np.interp(t_out, np.arange(len(samples), dtype=np.float64), samples).astype(np.float32)


def non_silent_extent(samples: np.ndarray, threshold: float) -> tuple[int, int]:
    """[first, last + 1) sample indices whose |amplitude| exceeds threshold * peak; (0, 0) if silent."""
    mag = np.abs(samples)
    peak = float(mag.max()) if len(mag) else 0.0
    if peak <= 0.0:
        return 0, 0
    loud = np.flatnonzero(mag > threshold * peak)
    return int(loud[0]), int(loud[-1]) + 1


@lru_cache(maxsize=256)
def spoken_word(word: str, sample_rate_hz: int, voice: VoiceConfig = VoiceConfig()) -> np.ndarray:
    """(T,) float32 at sample_rate_hz: the word spoken by espeak-ng, trimmed to its non-silent extent."""
    fd, path = tempfile.mkstemp(suffix=".wav", prefix="favor-word-")
    os.close(fd)
    try:
        proc = subprocess.run(
            ["espeak-ng", "-v", voice.voice, "-s", str(voice.words_per_minute), "-w", path, word],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SpeechSynthesisError(f"espeak-ng failed for {word!r}: {proc.stderr.strip() or proc.returncode}")
        samples, rate = read_wav(path)
    finally:
        os.unlink(path)
    first, stop = non_silent_extent(samples, voice.word_trim_threshold)
    if stop <= first:
        raise SpeechSynthesisError(f"espeak-ng produced silence for {word!r}")
    trimmed = resample_linear(samples[first:stop], rate, sample_rate_hz)
    first, stop = non_silent_extent(trimmed, voice.word_trim_threshold)  # re-trim after interpolation
    trimmed = trimmed[first:stop]
    return (trimmed * (voice.word_peak / float(np.abs(trimmed).max()))).astype(np.float32)


def _ramp(n_samples: int, ramp_samples: int) -> np.ndarray:
    """(n_samples,) envelope: raised-cosine fade in and out."""
    env = np.ones(n_samples, dtype=np.float64)
    r = min(ramp_samples, n_samples // 2)
    if r > 0:
        fade = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
        env[:r] = fade
        env[-r:] = fade[::-1]
    return env


def tone(hz: int, duration_s: float, sample_rate_hz: int, voice: VoiceConfig = VoiceConfig()) -> np.ndarray:
    """(round(duration_s * rate),) float32 sine beep with short fades."""
    n = int(round(duration_s * sample_rate_hz))
    t = np.arange(n, dtype=np.float64) / sample_rate_hz
    wave_ = np.sin(2.0 * np.pi * hz * t) * _ramp(n, int(voice.ramp_s * sample_rate_hz))
    return (voice.tone_peak * wave_).astype(np.float32)


def noise_burst(duration_s: float, seed: int, sample_rate_hz: int, voice: VoiceConfig = VoiceConfig()) -> np.ndarray:
    """(round(duration_s * rate),) float32 white noise, seeded."""
    n = int(round(duration_s * sample_rate_hz))
    rng = np.random.default_rng(int(seed))
    wave_ = rng.uniform(-1.0, 1.0, n) * _ramp(n, int(voice.ramp_s * sample_rate_hz))
    return (voice.noise_peak * wave_).astype(np.float32)


def _segment_pieces(audio: AudioPlan, rate: int, voice: VoiceConfig) -> list[tuple[dict, np.ndarray]]:
    """(event fields without times, samples) in play order."""
    pieces: list[tuple[dict, np.ndarray]] = []
    if audio.word:
        pieces.append(({"type": "word", "word": audio.word}, spoken_word(audio.word, rate, voice)))
    if audio.sound == "tone":
        pieces.append(({"type": "tone", "hz": int(audio.tone_hz)}, tone(int(audio.tone_hz), audio.sound_duration_s, rate, voice)))
    elif audio.sound == "noise":
        pieces.append(({"type": "noise"}, noise_burst(audio.sound_duration_s, audio.noise_seed, rate, voice)))
    if audio.sound_first and len(pieces) == 2:
        pieces.reverse()
    return pieces


def place_segment_audio(
    segment: SegmentPlan, track: np.ndarray, cfg: CorpusConfig, voice: VoiceConfig = VoiceConfig()
) -> list[dict]:
    """Mix the segment's events into track (T,) float32 in place; return its audio_events (absolute seconds)."""
    audio = segment.audio
    rate = cfg.sample_rate_hz
    if audio is None:
        return []
    if audio.sound == "silence" and not audio.word:
        return [{"type": "silence", "t_start": segment.t_start, "t_end": segment.t_end}]
    pieces = _segment_pieces(audio, rate, voice)
    seg_start = int(round(segment.t_start * rate))
    seg_stop = int(round(segment.t_end * rate))
    total = sum(len(p) for _, p in pieces)
    margin, gap = int(round(cfg.event_margin_s * rate)), int(round(cfg.event_gap_s * rate))
    gaps = gap * (len(pieces) - 1)
    slack = (seg_stop - seg_start) - 2 * margin - gaps - total
    if slack < 0:  # tight segment (the plan avoids this): drop margins and gaps before giving up
        margin = gap = 0
        slack = (seg_stop - seg_start) - total
        if slack < 0:
            raise ValueError(
                f"segment [{segment.t_start}, {segment.t_end}) is too short for its audio events ({total / rate:.3f} s)"
            )
    cursor = seg_start + margin + int(audio.onset_fraction * slack)
    events: list[dict] = []
    for fields, samples in pieces:
        track[cursor : cursor + len(samples)] += samples
        events.append({**fields, "t_start": round(cursor / rate, 6), "t_end": round((cursor + len(samples)) / rate, 6)})
        cursor += len(samples) + gap
    return events


def render_soundtrack(clip: ClipPlan, cfg: CorpusConfig, voice: VoiceConfig = VoiceConfig()) -> tuple[np.ndarray, list[list[dict]]]:
    """The clip's whole audio track (round(duration_s * rate),) float32 and each segment's audio_events."""
    track = np.zeros(int(round(clip.duration_s * cfg.sample_rate_hz)), dtype=np.float32)
    events = [place_segment_audio(seg, track, cfg, voice) for seg in clip.segments]
    np.clip(track, -1.0, 1.0, out=track)
    return track, events
