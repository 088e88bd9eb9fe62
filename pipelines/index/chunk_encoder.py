"""Encode MediaChunks with a FavorModel: visual + speech encoders, sync, causal Q-Former.

No Beam here (the ModelHandler calls it), so tests can run it directly. The
frames of every chunk in a batch go through the visual encoder in one call;
speech and the Q-Former run per chunk. Each window gets its query tokens
(the `tokens` multivector), a pooled vector, and an audio-only and a
visual-only vector (the same Q-Former with the other modality masked) for
cross-modal matching.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import torch

from favor_ops.media.decode import DecodeConfig
from favor_ops.media.sync import first_audio_frame
from favor_ops.media.windowing import WindowSpec
from favor_ops.store.catalog import content_sha256
from pipelines.index.elements import MediaChunk, WindowRows


@dataclass(frozen=True)
class ModelDescription:
    """What the driver needs to know about a model without loading its weights."""

    spec: str
    model_version: str  # changes whenever the weights or the config change: a new version re-indexes
    dim: int  # D of the stored vectors
    n_query_tokens: int
    decode_config: DecodeConfig
    window_spec: WindowSpec


def describe_model(spec: str) -> ModelDescription:
    """Preset name or checkpoint dir -> ModelDescription (reads the config and hashes the weights file)."""
    from favor_ops.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, is_favor_checkpoint
    from favor_ops.models.config import FavorConfig
    from favor_ops.models.loading import ModelLoadError
    from favor_ops.models.presets import PRESETS, preset_config

    if spec in PRESETS:
        config = preset_config(spec)
        version = f"{spec}-{hashlib.sha256(config.to_json().encode()).hexdigest()[:12]}"
    elif Path(spec).is_dir() and is_favor_checkpoint(spec):
        saved = json.loads((Path(spec) / CONFIG_FILE).read_text())
        config = FavorConfig.from_dict(saved["config"])
        weights = str(Path(spec) / WEIGHTS_FILE)
        version = f"{config.name}-{content_sha256(fsspec.filesystem('file'), weights, 1 << 20)[:12]}"
    else:
        raise ModelLoadError(spec, f"not a preset ({', '.join(sorted(PRESETS))}) nor a FAVOR checkpoint directory")
    return ModelDescription(
        spec=spec,
        model_version=version,
        dim=config.causal_qformer.hidden_size,
        n_query_tokens=config.causal_qformer.num_query_tokens,
        decode_config=DecodeConfig(**config.decode_config()),
        window_spec=config.windows.window_spec(),
    )


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


def _masked_run(model, batch, *, keep_visual: bool, keep_audio: bool, has_video: bool, has_audio: bool) -> torch.Tensor:
    """Pooled (W, D) query tokens with one modality masked out (and zeroed)."""
    D = model.config.modality_width
    slots = batch.slots.clone()
    visual_mask, audio_mask = batch.visual_mask, batch.audio_mask
    if not keep_visual:
        slots[..., :D] = 0
        visual_mask = torch.zeros_like(visual_mask)
    if not keep_audio:
        slots[..., D:] = 0
        audio_mask = torch.zeros_like(audio_mask)
    masked = dataclasses.replace(batch, slots=slots, visual_mask=visual_mask, audio_mask=audio_mask)
    out = model.run_window_batch(masked, has_video and keep_visual, has_audio and keep_audio)
    return _normalise(out.query_tokens.mean(dim=1))  # (W, D)


def encode_media_chunk_batch(model, chunks: list[MediaChunk]) -> list[WindowRows]:
    """Encode a batch of chunks (any videos) into WindowRows, one per chunk, in input order."""
    cfg = model.config
    # Visual encoder: every frame of the batch in one call.
    frame_counts = [len(c.frames_rgb) if c.has_video else 0 for c in chunks]
    visual_all = None
    if sum(frame_counts):
        frames = np.concatenate([c.frames_rgb for c, n in zip(chunks, frame_counts) if n])  # (sum F, H, W, 3)
        visual_all = model.encode_frames(model.preprocess_frames(frames))  # (sum F, Nq, D)
    results, offset = [], 0
    for chunk, n_vis in zip(chunks, frame_counts):
        visual = visual_all[offset : offset + n_vis] if n_vis else None
        offset += n_vis
        results.append(_encode_chunk(model, chunk, visual))
    return results


def _encode_chunk(model, chunk: MediaChunk, visual: torch.Tensor | None) -> WindowRows:
    cfg = model.config
    spec = cfg.windows.window_spec()
    fps = chunk.fps
    has_audio = chunk.has_audio and len(chunk.audio) > 0
    has_video = chunk.has_video and visual is not None
    speech = model.encode_speech(chunk.audio) if has_audio else None  # (A', D)
    speech_base = first_audio_frame(chunk.first_frame, fps, cfg.speech.frame_rate_hz)
    n_audio_frames = speech_base + (len(speech) if speech is not None else 0)
    # The window grid of the whole video: its frame count follows the video (audio for audio-only files).
    n_frames = max(1, math.ceil(chunk.duration_s * fps - 1e-6))
    window_ids = np.arange(chunk.first_window, chunk.first_window + chunk.n_windows)
    batch = model.build_window_batch(
        window_ids,
        n_frames,
        visual if has_video else None,
        speech,
        n_visual_frames=chunk.first_frame + len(chunk.frames_rgb) if has_video else 0,
        n_audio_frames=n_audio_frames if has_audio else 0,
        visual_base=chunk.first_frame,
        speech_base=speech_base,
        is_still_image=False,
        duration_s=chunk.duration_s if chunk.duration_s > 0 else None,  # a still image spans one frame slice
    )
    out = model.run_window_batch(batch, has_video, has_audio)
    tokens = out.query_tokens  # (K, Nq, D)
    zeros = torch.zeros((len(window_ids), tokens.shape[-1]), device=tokens.device)
    audio_vec = _masked_run(model, batch, keep_visual=False, keep_audio=True, has_video=has_video,
                            has_audio=has_audio) if has_audio else zeros
    visual_vec = _masked_run(model, batch, keep_visual=True, keep_audio=False, has_video=has_video,
                             has_audio=has_audio) if has_video else zeros
    return WindowRows(
        video_id=chunk.video_id,
        chunk_idx=chunk.chunk_idx,
        window_idx=window_ids.astype(np.int32),
        t_start=np.asarray(out.t_start_s, dtype=np.float64),
        t_end=np.asarray(out.t_end_s, dtype=np.float64),
        tokens=tokens.cpu().numpy().astype(np.float32),
        pooled=_normalise(tokens.mean(dim=1)).cpu().numpy().astype(np.float32),
        audio_vec=audio_vec.cpu().numpy().astype(np.float32),
        visual_vec=visual_vec.cpu().numpy().astype(np.float32),
        has_audio=has_audio,
        has_video=has_video,
        transcripts=[""] * len(window_ids),
    )
