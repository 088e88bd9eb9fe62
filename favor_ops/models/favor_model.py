"""FAVOR: synchronised visual + speech encoders, causal Q-Former over windows, projection to the LLM width.

The inference API is a set of separately callable stages so a Beam job can batch and place each one:

    load_favor_model(spec, device)                             (favor_ops.models.loading)
    model.config.decode_config()                               frames/audio the model wants
    model.preprocess_frames(frames_rgb (F,H,W,3) uint8)        -> (F, 3, H', W') float32, normalised
    model.encode_frames(pixel_values)                          -> (F, Nq, D)    visual query tokens per frame
    model.encode_speech(waveform (T,) float32 @ 16 kHz)        -> (A, D)        50 Hz, 30 s chunks, stitched
    model.encode_windows(visual, speech, ...)                  -> FavorWindowOutput (W, Nq, H) + [t_start, t_end)
    model.iter_encode_windows(frame_chunks, audio_chunks, ...) -> iterator of FavorWindowOutput (bounded memory)
    model.project(query_tokens)                                -> (W, Nq, llm_hidden)

Sync (per frame k at k / fps): Nq visual slots and the frame's ceil(50 / fps) speech frames, each padded to
S = max(Nq, ceil(50 / fps)) slots and joined on the feature axis -> (S, 2D). Windows of L frames every `stride`
frames -> (W, L*S, 2D) with modality masks. Audio-only input: visual halves zero and masked. Still image:
the image is repeated over the audio's duration. Video without audio: audio halves masked.

On GPU the stages run under autocast (bf16 by default); on CPU in fp32. Outputs are float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from favor_ops.errors import StageError
from favor_ops.media.sync import frame_audio_index, gather_audio_slots
from favor_ops.media.windowing import num_windows, window_frame_index, window_spans
from favor_ops.models.causal_qformer import CausalQFormer
from favor_ops.models.config import FavorConfig
from favor_ops.models.diversity_loss import weighted_diversity_loss
from favor_ops.models.host_transfer import to_device
from favor_ops.models.outputs import FavorForwardOutput, FavorWindowOutput, WindowBatch
from favor_ops.models.speech_encoder import SpeechEncoder
from favor_ops.models.visual_encoder import VisualEncoder


class ModelInputError(StageError):
    """An input handed to the model has the wrong shape, dtype or order."""

    stage = "encode"


class FavorModel(nn.Module):
    def __init__(self, config: FavorConfig, visual: VisualEncoder | None = None, speech: SpeechEncoder | None = None):
        """Build every block from `config` (random init), or adopt prebuilt (pretrained) encoders."""
        super().__init__()
        self.visual = visual if visual is not None else VisualEncoder(config.visual)
        self.speech = speech if speech is not None else SpeechEncoder(config.speech, config.modality_width)
        # Pretrained encoders carry the sizes of their checkpoints: the config follows them.
        config = config.replace(visual=self.visual.cfg, speech=self.speech.cfg)
        self.config = config
        self.causal_qformer = CausalQFormer(config.causal_qformer, config.slot_width)
        self.llm_proj = nn.Linear(config.causal_qformer.hidden_size, config.llm_hidden_size)  # H -> LLM width
        nn.init.normal_(self.llm_proj.weight, std=config.causal_qformer.initializer_range)
        nn.init.zeros_(self.llm_proj.bias)
        mean = torch.tensor(config.visual.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(config.visual.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("pixel_mean", mean, persistent=False)  # (1, 3, 1, 1)
        self.register_buffer("pixel_std", std, persistent=False)  # (1, 3, 1, 1)

    # ------------------------------------------------------------------ plumbing
    @property
    def device(self) -> torch.device:
        return self.llm_proj.weight.device

    def autocast(self):
        """bf16/fp16 autocast on GPU, nothing (fp32) on CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=getattr(torch, self.config.gpu_dtype))
        return contextlib.nullcontext()

    def set_mask_mode(self, mode: str) -> None:
        """Switch the causal Q-Former's frame mask: "causal" (default), "released" (published checkpoint) or "none" (no causal module, ablation)."""
        cq = dataclasses.replace(self.config.causal_qformer, mask_mode=mode)  # validates the mode
        self.config = self.config.replace(causal_qformer=cq)
        self.causal_qformer.mask_mode = mode

    def set_instruction_ids(self, token_ids) -> None:
        self.visual.set_instruction_ids(token_ids)
        self.config = self.config.replace(visual=self.visual.cfg)

    def freeze_encoders(self) -> None:
        """Freeze what FAVOR freezes: vision tower, visual Q-Former + its queries, Whisper. The speech Linear,
        causal Q-Former and LLM projection stay trainable."""
        for module in (self.visual, self.speech.encoder):
            for p in module.parameters():
                p.requires_grad_(False)

    def save_pretrained(self, directory: str | Path) -> Path:
        from favor_ops.models.checkpoint import save_favor_checkpoint

        return save_favor_checkpoint(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "FavorModel":
        from favor_ops.models.checkpoint import load_favor_checkpoint

        return load_favor_checkpoint(directory, device=device)

    # ------------------------------------------------------------------ visual stream
    def preprocess_frames(self, frames_rgb: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 RGB -> (F, 3, S, S) float32 normalised, resized to image_size if needed."""
        arr = np.asarray(frames_rgb)
        if arr.ndim != 4 or arr.shape[-1] != self.config.visual.num_channels or arr.dtype != np.uint8:
            raise ModelInputError("<frames>", f"expected (F, H, W, {self.config.visual.num_channels}) uint8 frames, "
                                              f"got shape {arr.shape} dtype {arr.dtype}")
        x = to_device(torch.from_numpy(np.ascontiguousarray(arr)), self.device)  # (F, H, W, 3) uint8, pinned on CUDA
        x = x.permute(0, 3, 1, 2).float() / 255.0  # (F, 3, H, W) in [0, 1]
        size = self.config.visual.image_size
        if x.shape[0] and x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        return (x - self.pixel_mean) / self.pixel_std  # (F, 3, S, S)

    @torch.no_grad()
    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(F, 3, S, S) -> (F, Nq, D) float32 visual query tokens (batched frame_batch_size at a time)."""
        cfg = self.config.visual
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (cfg.num_channels, cfg.image_size, cfg.image_size):
            raise ModelInputError("<frames>", f"expected (F, {cfg.num_channels}, {cfg.image_size}, {cfg.image_size}) "
                                              f"pixel values, got {tuple(pixel_values.shape)}")
        out = []
        with self.autocast():
            for start in range(0, pixel_values.shape[0], cfg.frame_batch_size):
                batch = pixel_values[start:start + cfg.frame_batch_size].to(self.device)  # (f, 3, S, S)
                out.append(self.visual(batch).float())  # (f, Nq, D)
        if not out:
            return torch.zeros((0, cfg.num_query_tokens, self.config.modality_width), device=self.device)
        return torch.cat(out)  # (F, Nq, D)

    # ------------------------------------------------------------------ speech stream
    @torch.no_grad()
    def encode_speech(self, waveform: np.ndarray) -> torch.Tensor:
        """(T,) float32 mono @ sample_rate_hz -> (A, D) float32, A = ceil(T / 320) frames at 50 Hz."""
        arr = np.asarray(waveform)
        if arr.ndim != 1:
            raise ModelInputError("<audio>", f"expected a mono (T,) waveform, got shape {arr.shape}")
        with self.autocast():
            return self.speech(arr.astype(np.float32, copy=False)).float()  # (A, D)

    # ------------------------------------------------------------------ sync + windows
    def frames_from_audio(self, n_audio_frames: int) -> int:
        """Video frames needed to cover n_audio_frames speech frames."""
        return math.ceil(n_audio_frames * self.config.windows.fps / self.config.speech.frame_rate_hz - 1e-9)

    def count_frames(self, n_visual_frames: int, n_audio_frames: int, has_video: bool, has_audio: bool) -> int:
        """Frames on the window grid: the longer of the video and the audio (a still image repeats)."""
        return max(n_visual_frames if has_video else 0, self.frames_from_audio(n_audio_frames) if has_audio else 0)

    def build_window_batch(
        self,
        window_ids: np.ndarray,
        n_frames: int,
        visual: torch.Tensor | None,
        speech: torch.Tensor | None,
        *,
        n_visual_frames: int,
        n_audio_frames: int,
        visual_base: int = 0,
        speech_base: int = 0,
        is_still_image: bool = False,
        duration_s: float | None = None,
        t0_s: float = 0.0,
    ) -> WindowBatch:
        """Synced slots of the windows `window_ids` of a media with `n_frames` frames on the window grid.

        visual: (F', Nq, D) holding frames [visual_base, visual_base + F') of the media's n_visual_frames.
        speech: (A', D) holding speech frames [speech_base, speech_base + A') of its n_audio_frames.
        Differentiable in `visual` and `speech` (index + mask only).
        """
        cfg = self.config
        spec = cfg.windows.window_spec()
        Nq, D, S, S_a = cfg.visual.num_query_tokens, cfg.modality_width, cfg.slots_per_frame, cfg.audio_slots_per_frame
        window_ids = np.asarray(window_ids, dtype=np.int64)
        index_all, frame_mask_all = window_frame_index(n_frames, spec)  # (W_all, L)
        index, frame_mask = index_all[window_ids], frame_mask_all[window_ids]  # (W, L)
        W, L = index.shape
        frames = index.reshape(-1)  # (W*L,)
        real = frame_mask.reshape(-1)  # (W*L,)
        ref = visual if visual is not None else speech
        device = ref.device if ref is not None else self.device
        dtype = ref.dtype if ref is not None else torch.float32

        # Visual half: the frame's Nq query tokens, padded to S slots.
        if visual is not None and n_visual_frames > 0:
            src = np.minimum(frames, n_visual_frames - 1) if is_still_image else frames  # a still image repeats
            present = real & (is_still_image | (frames < n_visual_frames))  # (W*L,)
            rows = torch.as_tensor(np.where(present, src - visual_base, 0), device=device)
            keep = torch.as_tensor(present, device=device)
            v = visual[rows] * keep[:, None, None].to(dtype)  # (W*L, Nq, D)
        else:
            present = np.zeros_like(real)
            v = torch.zeros((W * L, Nq, D), device=device, dtype=dtype)
        v = F.pad(v, (0, 0, 0, S - Nq))  # (W*L, S, D)
        visual_mask = torch.as_tensor(present[:, None] & (np.arange(S) < Nq)[None, :], device=device)  # (W*L, S)

        # Audio half: the speech frames of the frame's time slice, padded to S slots.
        if speech is not None and n_audio_frames > 0 and W > 0:
            a_index, a_mask = frame_audio_index(int(frames.max()) + 1, n_audio_frames, cfg.windows.fps,
                                                cfg.speech.frame_rate_hz)  # (frames, S_a)
            a_index, a_mask = a_index[frames], a_mask[frames] & real[:, None]  # (W*L, S_a)
            a = gather_audio_slots(speech, np.where(a_mask, a_index - speech_base, 0), a_mask)  # (W*L, S_a, D)
            if cfg.windows.audio_sync == "clip":  # no-sync ablation: the clip's mean speech in every real slot
                a = speech.mean(dim=0).to(a.dtype)[None, None, :] * torch.as_tensor(a_mask, device=device)[..., None]
        else:
            a_mask = np.zeros((W * L, S_a), dtype=bool)
            a = torch.zeros((W * L, S_a, D), device=device, dtype=dtype)
        a = F.pad(a, (0, 0, 0, S - S_a))  # (W*L, S, D)
        audio_mask = torch.as_tensor(np.pad(a_mask, ((0, 0), (0, S - S_a))), device=device)  # (W*L, S)

        slots = torch.cat([v, a], dim=-1).reshape(W, L * S, 2 * D)  # (W, L*S, 2D)
        t_start, t_end = window_spans(n_frames, cfg.windows.fps, spec, duration_s=duration_s, t0_s=t0_s)  # (W_all,)
        return WindowBatch(
            slots=slots,
            visual_mask=visual_mask.reshape(W, L * S),
            audio_mask=audio_mask.reshape(W, L * S),
            frame_mask=torch.as_tensor(frame_mask, device=device),
            t_start_s=t_start[window_ids],
            t_end_s=t_end[window_ids],
            window_index=window_ids,
        )

    def forward(self, slots: torch.Tensor, visual_mask: torch.Tensor, audio_mask: torch.Tensor,
                window_mask: torch.Tensor | None = None) -> FavorForwardOutput:
        """Training forward over a batch of windows: (B, L*S, 2D) -> query tokens, LLM tokens, diversity loss."""
        out = self.causal_qformer(slots, visual_mask, audio_mask, self.config.slots_per_frame)
        if window_mask is None:
            window_mask = (visual_mask | audio_mask).any(dim=1)  # (B,)
        return FavorForwardOutput(
            query_tokens=out.query_tokens,
            llm_tokens=self.llm_proj(out.query_tokens),
            diversity_loss=weighted_diversity_loss(out.query_tokens, window_mask, self.config.diversity_weight),
        )

    def run_window_batch(self, batch: WindowBatch, has_video: bool, has_audio: bool) -> FavorWindowOutput:
        with self.autocast():
            out = self.causal_qformer(batch.slots.to(self.device), batch.visual_mask.to(self.device),
                                      batch.audio_mask.to(self.device), self.config.slots_per_frame)
        return FavorWindowOutput(
            query_tokens=out.query_tokens.float(),  # (W, Nq, H)
            t_start_s=batch.t_start_s,
            t_end_s=batch.t_end_s,
            window_mask=batch.frame_mask.any(dim=1),
            frame_mask=batch.frame_mask,
            window_index=batch.window_index,
            has_video=has_video,
            has_audio=has_audio,
        )

    def empty_window_output(self, has_video: bool, has_audio: bool) -> FavorWindowOutput:
        cq, L = self.config.causal_qformer, self.config.windows.frames_per_window
        return FavorWindowOutput(
            query_tokens=torch.zeros((0, cq.num_query_tokens, cq.hidden_size), device=self.device),
            t_start_s=np.zeros(0), t_end_s=np.zeros(0),
            window_mask=torch.zeros(0, dtype=torch.bool, device=self.device),
            frame_mask=torch.zeros((0, L), dtype=torch.bool, device=self.device),
            window_index=np.zeros(0, dtype=np.int64), has_video=has_video, has_audio=has_audio,
        )

    @torch.no_grad()
    def encode_windows(
        self,
        visual: torch.Tensor | None,
        speech: torch.Tensor | None,
        *,
        has_video: bool | None = None,
        has_audio: bool | None = None,
        is_still_image: bool = False,
        duration_s: float | None = None,
        t0_s: float = 0.0,
    ) -> FavorWindowOutput:
        """Whole-input path: visual (F, Nq, D) and speech (A, D) of one media -> per-window query tokens.

        has_video / has_audio default to "the tensor is given and non-empty". Windows run window_batch_size at a
        time, so only one batch of slots is ever materialised.
        """
        has_video = bool(visual is not None and len(visual)) if has_video is None else has_video
        has_audio = bool(speech is not None and len(speech)) if has_audio is None else has_audio
        n_visual = len(visual) if (has_video and visual is not None) else 0
        n_audio = len(speech) if (has_audio and speech is not None) else 0
        n_frames = self.count_frames(n_visual, n_audio, has_video, has_audio)
        n_win = num_windows(n_frames, self.config.windows.window_spec())
        step = self.config.windows.window_batch_size
        parts = []
        for start in range(0, n_win, step):
            batch = self.build_window_batch(
                np.arange(start, min(n_win, start + step)), n_frames,
                visual if n_visual else None, speech if n_audio else None,
                n_visual_frames=n_visual, n_audio_frames=n_audio, is_still_image=is_still_image,
                duration_s=duration_s, t0_s=t0_s,
            )
            parts.append(self.run_window_batch(batch, has_video, has_audio))
        return FavorWindowOutput.concat(parts) if parts else self.empty_window_output(has_video, has_audio)

    @torch.no_grad()
    def iter_encode_windows(
        self,
        frame_chunks: Iterable | None,
        audio_chunks: Iterable | None,
        *,
        has_video: bool = True,
        has_audio: bool = True,
        is_still_image: bool = False,
        duration_s: float | None = None,
        t0_s: float = 0.0,
        trace: dict | None = None,
    ) -> Iterator[FavorWindowOutput]:
        """Streaming path with bounded memory: decoded chunks in, runs of windows out, in time order.

        frame_chunks: iterable of objects with `.frames_rgb` (N, H, W, 3) uint8 (and optionally `.first_index`),
            e.g. favor_ops.media.decode.iter_frames; or plain arrays.
        audio_chunks: iterable of objects with `.samples` (T,) float32, e.g. iter_audio; or plain arrays.
        Frames and audio are pulled in time lockstep; a window is emitted once all its frames and speech frames
        are encoded, and buffers keep only what unfinished windows need. Outputs equal encode_windows' on the
        whole input. `trace`, if given, receives the peak buffer sizes (frames, speech frames, samples).
        """
        cfg = self.config
        spec = cfg.windows.window_spec()
        fps, rate = cfg.windows.fps, cfg.speech.frame_rate_hz
        L, stride, step = cfg.windows.frames_per_window, cfg.windows.stride_frames, cfg.windows.window_batch_size
        sr, chunk_samples = cfg.speech.sample_rate_hz, cfg.speech.chunk_samples
        frames_it = iter(frame_chunks if (has_video and frame_chunks is not None) else ())
        audio_it = iter(audio_chunks if (has_audio and audio_chunks is not None) else ())
        state = {"frames_done": not has_video, "audio_done": not has_audio}
        vis_buf = torch.zeros((0, cfg.visual.num_query_tokens, cfg.modality_width), device=self.device)
        aud_buf = torch.zeros((0, cfg.modality_width), device=self.device)
        vis_base = aud_base = n_vis = n_aud = samples_seen = 0
        pending = np.zeros(0, dtype=np.float32)  # samples not yet encoded (< one 30 s chunk)
        next_w = 0
        peak = {"frames": 0, "speech_frames": 0, "pending_samples": 0}

        while True:
            both_done = state["frames_done"] and state["audio_done"]
            if both_done:
                n_frames = self.count_frames(n_vis, n_aud, has_video, has_audio)
                last = num_windows(n_frames, spec)
            else:  # only windows whose frames and speech are complete and certain to exist
                vis_ok = math.inf if state["frames_done"] else n_vis
                aud_ok = math.inf if state["audio_done"] else math.floor(n_aud * fps / rate + 1e-9)
                n_frames = int(min(vis_ok, aud_ok, self.count_frames(n_vis, n_aud, has_video, has_audio)))
                last = (n_frames - L) // stride + 1 if n_frames >= L else 0
            if last > next_w:
                for start in range(next_w, last, step):
                    batch = self.build_window_batch(
                        np.arange(start, min(last, start + step)), n_frames,
                        vis_buf if n_vis else None, aud_buf if n_aud else None,
                        n_visual_frames=n_vis, n_audio_frames=n_aud, visual_base=vis_base, speech_base=aud_base,
                        is_still_image=is_still_image, duration_s=duration_s, t0_s=t0_s,
                    )
                    yield self.run_window_batch(batch, has_video, has_audio)
                next_w = last
                # Drop what no later window needs (a still image keeps its last frame).
                first_frame = next_w * stride
                keep_from = min(first_frame, max(n_vis - 1, 0)) if is_still_image else min(first_frame, n_vis)
                if keep_from > vis_base:
                    vis_buf, vis_base = vis_buf[keep_from - vis_base:].clone(), keep_from
                first_audio = min(math.ceil(first_frame * rate / fps - 1e-9), n_aud)
                if first_audio > aud_base:
                    aud_buf, aud_base = aud_buf[first_audio - aud_base:].clone(), first_audio
            if both_done:
                break

            pull_frames = not state["frames_done"] and (state["audio_done"] or n_vis / fps <= samples_seen / sr)
            if pull_frames:
                chunk = next(frames_it, None)
                if chunk is None:
                    state["frames_done"] = True
                    continue
                frames = getattr(chunk, "frames_rgb", chunk)
                first = getattr(chunk, "first_index", n_vis)
                if first != n_vis:
                    raise ModelInputError("<frames>", f"frame chunk starts at {first}, expected {n_vis}")
                tokens = self.encode_frames(self.preprocess_frames(frames))  # (f, Nq, D)
                vis_buf = torch.cat([vis_buf, tokens])
                n_vis += len(tokens)
            else:
                chunk = next(audio_it, None)
                if chunk is None:
                    state["audio_done"] = True
                    to_encode, pending = pending, np.zeros(0, dtype=np.float32)
                else:
                    samples = np.asarray(getattr(chunk, "samples", chunk), dtype=np.float32).reshape(-1)
                    samples_seen += len(samples)
                    pending = np.concatenate([pending, samples])
                    n_full = len(pending) // chunk_samples * chunk_samples  # whole 30 s chunks only
                    to_encode, pending = pending[:n_full], pending[n_full:]
                if len(to_encode):
                    feats = self.encode_speech(to_encode)  # (a, D)
                    aud_buf = torch.cat([aud_buf, feats])
                    n_aud += len(feats)
            peak["frames"] = max(peak["frames"], len(vis_buf))
            peak["speech_frames"] = max(peak["speech_frames"], len(aud_buf))
            peak["pending_samples"] = max(peak["pending_samples"], len(pending))
            if trace is not None:
                trace.update(peak)

    @torch.no_grad()
    def project(self, query_tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, H) -> (W, Nq, llm_hidden) float32 LLM input tokens; windows stay in time order."""
        with self.autocast():
            return self.llm_proj(query_tokens.to(self.device)).float()

    def diversity_loss(self, query_tokens: torch.Tensor, window_mask: torch.Tensor | None = None) -> torch.Tensor:
        """lambda-weighted diversity loss of (B, Nq, H) query outputs, padded windows excluded."""
        return weighted_diversity_loss(query_tokens, window_mask, self.config.diversity_weight)

    # ------------------------------------------------------------------ convenience
    @torch.no_grad()
    def encode_decoded(self, decoded, duration_s: float | None = None) -> FavorWindowOutput:
        """Whole-file path over a favor_ops.media.decode.DecodedMedia (short clips, tests)."""
        info = getattr(decoded, "info", None)
        has_video = bool(decoded.has_video) and len(decoded.frames_rgb) > 0
        has_audio = bool(decoded.has_audio) and len(decoded.audio) > 0
        visual = self.encode_frames(self.preprocess_frames(decoded.frames_rgb)) if has_video else None
        speech = self.encode_speech(decoded.audio) if has_audio else None
        if duration_s is None and info is not None:
            duration_s = getattr(info, "duration_s", None)
        return self.encode_windows(visual, speech, has_video=has_video, has_audio=has_audio,
                                   is_still_image=bool(getattr(info, "is_still_image", False)), duration_s=duration_s)

    def num_parameters(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        parts = {
            "vision_tower": count(self.visual.vision_model),
            "visual_qformer": count(self.visual.qformer) + self.visual.query_tokens.numel(),
            "whisper_encoder": count(self.speech.encoder),
            "speech_proj": count(self.speech.proj),
            "causal_qformer": count(self.causal_qformer),
            "llm_proj": count(self.llm_proj),
        }
        parts["total"] = sum(parts.values())
        return parts
