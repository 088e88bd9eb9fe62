"""Speech stream: Whisper encoder + a trainable Linear to the Q-Former width, 50 Hz, any length.

    waveform (T,) @ 16 kHz -> 30 s chunks -> log-mel (C, M, 3000) -> Whisper encoder (C, 1500, d_model)
        -> keep each chunk's frames that cover real audio, stitch in time order (A, d_model) -> Linear (A, D)

A = ceil(T / 320): one frame per 20 ms, never truncated. Whisper only takes 30 s of context, so longer audio is
encoded in consecutive 30 s chunks (the last one zero-padded, its padding frames dropped). Log-mel features are
transformers' WhisperFeatureExtractor built from the config's values (no download).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn

from favor_ops.models.config import SpeechConfig
from favor_ops.models.host_transfer import to_device


class SpeechEncoder(nn.Module):
    def __init__(self, cfg: SpeechConfig, out_width: int):
        super().__init__()
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.cfg = cfg
        self.encoder = WhisperEncoder(cfg.whisper_hf_config())
        self.proj = nn.Linear(cfg.d_model, out_width)  # trainable: d_model -> D
        self._feature_extractor = None

    @property
    def feature_extractor(self):
        if self._feature_extractor is None:
            from transformers import WhisperFeatureExtractor

            self._feature_extractor = WhisperFeatureExtractor(
                feature_size=self.cfg.num_mel_bins,
                sampling_rate=self.cfg.sample_rate_hz,
                hop_length=self.cfg.hop_length,
                chunk_length=self.cfg.chunk_s,
                n_fft=self.cfg.n_fft,
            )
        return self._feature_extractor

    # ---- stages ----
    def split_chunks(self, waveform: np.ndarray) -> list[np.ndarray]:
        """(T,) float32 -> consecutive chunks of at most chunk_s seconds (C = ceil(T / chunk_samples))."""
        n = self.cfg.chunk_samples
        return [waveform[i:i + n] for i in range(0, len(waveform), n)]

    def num_frames(self, n_samples: int) -> int:
        """Encoder frames covering n_samples of real audio: ceil(n / 320)."""
        return -(-int(n_samples) // self.cfg.samples_per_frame)

    def log_mel(self, chunks: list[np.ndarray]) -> torch.Tensor:
        """Chunks of <= 30 s -> (C, M, 3000) float32 log-mel features, each chunk zero-padded to 30 s."""
        features = self.feature_extractor(
            [np.asarray(c, dtype=np.float32) for c in chunks],
            sampling_rate=self.cfg.sample_rate_hz,
            padding="max_length",
            max_length=self.cfg.chunk_samples,
            truncation=True,
            return_tensors="np",
        )["input_features"]
        return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))  # (C, M, 3000)

    def whisper_frames(self, waveform: np.ndarray) -> torch.Tensor:
        """(T,) waveform -> (A, d_model) Whisper encoder frames at 50 Hz covering the real audio."""
        waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
        device = self.proj.weight.device
        chunks = self.split_chunks(waveform)
        if not chunks:
            return torch.zeros((0, self.cfg.d_model), device=device)
        kept = []
        batch = self.cfg.chunk_batch_size
        for start in range(0, len(chunks), batch):
            group = chunks[start:start + batch]
            mel = to_device(self.log_mel(group), device)  # (c, M, 3000), pinned on CUDA
            mel = mel.to(self.encoder.conv1.weight.dtype)
            hidden = self.encoder(input_features=mel).last_hidden_state  # (c, 1500, d_model)
            n_real = torch.tensor([self.num_frames(len(c)) for c in group], device=device)  # (c,)
            keep = torch.arange(hidden.shape[1], device=device)[None, :] < n_real[:, None]  # (c, 1500)
            kept.append(hidden[keep])  # (sum n_real, d): chunk-major, time order
        return torch.cat(kept)  # (A, d_model)

    def forward(self, waveform: np.ndarray) -> torch.Tensor:
        """(T,) waveform @ sample_rate_hz -> (A, D) projected speech frames."""
        return self.proj(self.whisper_frames(waveform))  # (A, D)

    # ---- pretrained weights ----
    @classmethod
    def from_pretrained(cls, source: str, cfg: SpeechConfig, out_width: int) -> "SpeechEncoder":
        """Build the Whisper encoder from a Whisper checkpoint (local dir or hub id) written by `save_pretrained`
        (WhisperModel or WhisperForConditionalGeneration); only encoder tensors are read."""
        from transformers import WhisperConfig

        from favor_ops.models.loading import load_prefixed_tensors

        hf_config = WhisperConfig.from_pretrained(source)
        cfg = dataclasses.replace(cfg.with_hf_sizes(hf_config), source=source)
        model = cls(cfg, out_width)
        tensors = load_prefixed_tensors(source, ("encoder.", "model.encoder."))
        tensors = {k.removeprefix("model.").removeprefix("encoder."): v for k, v in tensors.items()}
        missing, unexpected = model.encoder.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise KeyError(f"Whisper checkpoint {source}: missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
        return model
