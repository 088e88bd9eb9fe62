"""Encode MediaChunks with an AlignedModel: visual + speech encoders, sync, causal Q-Former, retrieval heads.

No Beam here (the ModelHandler calls it), so tests can run it directly. The
frames of every chunk in a batch go through the visual encoder in one call;
speech and the Q-Former run per chunk. Each window gets the vectors of
`AlignedModel.window_vectors`: its projected query tokens (the `tokens`
multivector, E wide), a pooled vector, and an audio and a visual vector for
cross-modal matching (from the window's frames, or from the same Q-Former with
the other modality masked: `AlignedModel.av_head_inputs`). A preset or a plain FAVOR checkpoint has identity heads (E = H):
the stored tokens are then the Q-Former's own outputs, unit-normalised. Heads with per-frame vectors
(`RetrievalHeadsConfig.frame_vectors`) also give each window's `frame_audio` / `frame_visual` (L frames x E,
`AlignedModel.frame_vectors`); other heads leave them None (null in the store).

With a transcriber (`favor index --asr NAME`), each chunk's audio is also
transcribed and the words spread over its windows by time (`transcripts`). An
ASR failure is data: that chunk's transcripts stay empty and `asr_error` says
why (the ModelHandler counts and logs it); the windows are stored as usual.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import torch

from favor_ops.media.decode import DecodeConfig
from favor_ops.media.sync import WHISPER_FRAME_RATE_HZ, first_audio_frame
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
    asr: str | None = None  # transcriber name (None: no transcripts)


def describe_model(spec: str, asr: str | None = None) -> ModelDescription:
    """Preset name or checkpoint dir -> ModelDescription (reads the configs and hashes the weights files: the
    FAVOR weights and, for an aligned checkpoint, the retrieval heads, whose width E is the stored D).

    With `asr`, the model_version gains `+<asr_version>` (transcriber name + settings hash): the transcripts
    are part of what a version stores, so turning the ASR on, off or changing it re-indexes."""
    from favor_ops.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, is_favor_checkpoint
    from favor_ops.models.config import FavorConfig
    from favor_ops.models.loading import ModelLoadError
    from favor_ops.models.presets import PRESETS, preset_config
    from favor_ops.retrieval.aligned_model import RETRIEVAL_CONFIG_FILE, RETRIEVAL_WEIGHTS_FILE, \
        is_aligned_checkpoint

    if spec in PRESETS:
        config = preset_config(spec)
        dim = config.causal_qformer.hidden_size
        version = f"{spec}-{hashlib.sha256(config.to_json().encode()).hexdigest()[:12]}"
    elif Path(spec).is_dir() and is_favor_checkpoint(spec):
        saved = json.loads((Path(spec) / CONFIG_FILE).read_text())
        config = FavorConfig.from_dict(saved["config"])
        dim = config.causal_qformer.hidden_size
        fs = fsspec.filesystem("file")
        digest = content_sha256(fs, str(Path(spec) / WEIGHTS_FILE), 1 << 20)
        if is_aligned_checkpoint(spec):
            retrieval = json.loads((Path(spec) / RETRIEVAL_CONFIG_FILE).read_text())
            dim = int(retrieval["heads"]["embed_dim"])
            heads_digest = content_sha256(fs, str(Path(spec) / RETRIEVAL_WEIGHTS_FILE), 1 << 20)
            digest = hashlib.sha256(f"{digest}:{heads_digest}".encode()).hexdigest()
        version = f"{config.name}-{digest[:12]}"
    else:
        raise ModelLoadError(spec, f"not a preset ({', '.join(sorted(PRESETS))}) nor a FAVOR checkpoint directory")
    if asr:
        from favor_ops.asr import asr_version

        version = f"{version}+{asr_version(asr)}"
    return ModelDescription(
        spec=spec,
        model_version=version,
        dim=dim,
        n_query_tokens=config.causal_qformer.num_query_tokens,
        decode_config=DecodeConfig(**config.decode_config()),
        window_spec=config.windows.window_spec(),
        asr=asr or None,
    )


def as_aligned(model):
    """An AlignedModel as is; a bare FavorModel wrapped with identity heads (E = H)."""
    from favor_ops.retrieval.aligned_model import AlignedModel
    from favor_ops.retrieval.heads import identity_heads

    if isinstance(model, AlignedModel):
        return model
    return AlignedModel(model, identity_heads(model.config.causal_qformer.hidden_size).to(model.device)).eval()


def encode_media_chunk_batch(model, chunks: list[MediaChunk], transcriber=None) -> list[WindowRows]:
    """Encode a batch of chunks (any videos) into WindowRows, one per chunk, in input order.

    `model` is an AlignedModel (what the ModelHandler loads) or a bare FavorModel (identity heads);
    `transcriber` (a favor_ops.asr.Transcriber, optional) fills the windows' transcripts."""
    aligned = as_aligned(model)
    favor = aligned.favor
    # Visual encoder: every frame of the batch in one call.
    frame_counts = [len(c.frames_rgb) if c.has_video else 0 for c in chunks]
    visual_all = None
    if sum(frame_counts):
        frames = np.concatenate([c.frames_rgb for c, n in zip(chunks, frame_counts) if n])  # (sum F, H, W, 3)
        visual_all = favor.encode_frames(favor.preprocess_frames(frames))  # (sum F, Nq, D)
    results, offset = [], 0
    for chunk, n_vis in zip(chunks, frame_counts):
        visual = visual_all[offset : offset + n_vis] if n_vis else None
        offset += n_vis
        rows = _encode_chunk(aligned, chunk, visual)
        if transcriber is not None:
            transcribe_chunk(transcriber, chunk, rows)
        results.append(rows)
    return results


def chunk_audio_start_s(chunk: MediaChunk) -> float:
    """Absolute time of chunk.audio[0]: the first speech frame of the chunk's first video frame (as decoded)."""
    samples_per_speech_frame = chunk.sample_rate_hz / WHISPER_FRAME_RATE_HZ
    first_sample = int(round(first_audio_frame(chunk.first_frame, chunk.fps) * samples_per_speech_frame))
    return first_sample / chunk.sample_rate_hz


def transcribe_chunk(transcriber, chunk: MediaChunk, rows: WindowRows) -> WindowRows:
    """Fill rows.transcripts (in place) from the chunk's audio; on any ASR error leave them empty and set
    rows.asr_error. A chunk without audio is left untouched (empty transcripts, no error)."""
    from favor_ops.asr import resample_to_16k, window_transcripts

    n = len(rows.window_idx)
    rows.transcripts = [""] * n
    if not (chunk.has_audio and len(chunk.audio) > 0 and n):
        return rows
    started = time.perf_counter()
    try:
        audio = resample_to_16k(chunk.audio, chunk.sample_rate_hz)
        offset_s = chunk_audio_start_s(chunk)
        segments = [seg.shifted(offset_s) for seg in transcriber.transcribe(audio)]
        rows.transcripts = window_transcripts(segments, rows.t_start, rows.t_end)
    except Exception as err:  # noqa: BLE001 - errors are data: this chunk keeps empty transcripts
        rows.transcripts = [""] * n
        message = " ".join(str(err).split()) or type(err).__name__
        rows.asr_error = f"{type(err).__name__}: {message}"[:500]
    rows.asr_ms = int((time.perf_counter() - started) * 1000)
    return rows


def _encode_chunk(aligned, chunk: MediaChunk, visual: torch.Tensor | None) -> WindowRows:
    model = aligned.favor
    cfg = model.config
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
    # the audio / visual heads' inputs: per-frame slot means (K, L, D), or (K, Nq, H) single-modality pass tokens
    audio_in, visual_in = aligned.av_head_inputs(
        batch, has_audio, has_video,
        run_pass=lambda masked, has_v, has_a: model.run_window_batch(masked, has_v, has_a).query_tokens)
    vectors = aligned.window_vectors(out.query_tokens, audio_in, visual_in, batch.frame_mask)  # tokens (K, Nq, E), ...
    with_frames = aligned.heads.cfg.frame_vectors
    if with_frames:
        vectors.update(aligned.frame_vectors(batch, has_audio, has_video))  # frame_audio / frame_visual (K, L, E)
    as_np = lambda key: vectors[key].float().cpu().numpy().astype(np.float32)  # noqa: E731
    return WindowRows(
        video_id=chunk.video_id,
        chunk_idx=chunk.chunk_idx,
        window_idx=window_ids.astype(np.int32),
        t_start=np.asarray(out.t_start_s, dtype=np.float64),
        t_end=np.asarray(out.t_end_s, dtype=np.float64),
        tokens=as_np("tokens"),
        pooled=as_np("pooled"),
        audio_vec=as_np("audio_vec"),
        visual_vec=as_np("visual_vec"),
        has_audio=has_audio,
        has_video=has_video,
        transcripts=[""] * len(window_ids),
        frame_audio=as_np("frame_audio") if with_frames else None,
        frame_visual=as_np("frame_visual") if with_frames else None,
    )
