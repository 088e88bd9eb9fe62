"""AlignedModel: a FavorModel plus retrieval heads and the frozen MiniLM text tower; one checkpoint directory.

Checkpoint layout (an aligned checkpoint is a FAVOR checkpoint with two more files):

    <dir>/favor_config.json        FavorModel.save_pretrained
    <dir>/model.safetensors        FavorModel.save_pretrained (encoders included)
    <dir>/retrieval_config.json    {"format": "favor-retrieval", "version": 1, "heads": RetrievalHeadsConfig,
                                    "text_tower": TextTowerConfig}
    <dir>/retrieval.safetensors    RetrievalHeads state dict

`load_aligned_model(spec)` also accepts a preset name or a plain FAVOR checkpoint: it then returns identity heads
(E = H) so that search runs (with meaningless scores) instead of crashing.

Window vectors (what the index stores per window, all unit-norm float32):
    tokens    (W, Nq, E)  window_proj of the full (audio + video) pass's query tokens
    pooled    (W, E)      mean of tokens, re-normalised
    audio_vec (W, E)      audio head of the window's per-frame audio means (heads.cfg.av_frames), or of the
                          mean query token of the audio-only pass (video slots masked): `av_head_inputs`
    visual_vec(W, E)      the same for the picture (per-frame visual means, or the video-only pass)
    frame_audio (W, L, E) / frame_visual (W, L, E)   each frame's heard / seen vector (heads.cfg.frame_vectors;
                          None otherwise): `frame_vectors`
A missing modality (and a padded frame) gives an all-zero vector (cosine 0 with everything).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from favor_ops.models.outputs import WindowBatch
from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig, identity_heads
from favor_ops.retrieval.text_tower import TextTowerConfig, shared_text_tower

RETRIEVAL_CONFIG_FILE = "retrieval_config.json"
RETRIEVAL_WEIGHTS_FILE = "retrieval.safetensors"
RETRIEVAL_FORMAT = "favor-retrieval"
RETRIEVAL_FORMAT_VERSION = 1


def is_aligned_checkpoint(directory: str | Path) -> bool:
    from favor_ops.models.checkpoint import is_favor_checkpoint

    d = Path(directory)
    return (d.is_dir() and is_favor_checkpoint(d) and (d / RETRIEVAL_CONFIG_FILE).is_file()
            and (d / RETRIEVAL_WEIGHTS_FILE).is_file())


@dataclass
class ModalityPasses:
    """Query tokens of one batch of windows under three masks of the same causal Q-Former."""

    full: torch.Tensor  # (W, Nq, H) audio + video
    audio_only: torch.Tensor | None  # (W, Nq, H) video slots zeroed and masked; None when not computed
    visual_only: torch.Tensor | None  # (W, Nq, H) audio slots zeroed and masked


@dataclass
class MediaVectors:
    """Window vectors of one media file, in time order."""

    tokens: np.ndarray  # (W, Nq, E) float32 unit-norm
    pooled: np.ndarray  # (W, E)
    audio_vec: np.ndarray  # (W, E) zeros without audio
    visual_vec: np.ndarray  # (W, E) zeros without video
    t_start_s: np.ndarray  # (W,) float64 absolute window start
    t_end_s: np.ndarray  # (W,) float64 absolute window end (exclusive)
    has_audio: bool
    has_video: bool
    frame_audio: np.ndarray | None = None  # (W, L, E) per-frame heard vectors (heads.cfg.frame_vectors), else None
    frame_visual: np.ndarray | None = None  # (W, L, E) per-frame seen vectors

    def __len__(self) -> int:
        return len(self.t_start_s)


@dataclass
class QueryEncoding:
    """A media query (audio clip, image, video clip) in the retrieval space."""

    vector: np.ndarray  # (E,) unit-norm: the query's modality vector (audio_vec / visual_vec / pooled) averaged
    pooled: np.ndarray  # (E,) unit-norm mean of the full-pass pooled vectors
    tokens: np.ndarray  # (W*Nq, E) unit-norm full-pass tokens of every window (a multivector for MaxSim)


def mask_modality(batch: WindowBatch, modality_width: int, *, keep_visual: bool, keep_audio: bool) -> WindowBatch:
    """The same windows with the visual and/or audio halves zeroed and masked (D = modality_width)."""
    slots = batch.slots
    visual_mask, audio_mask = batch.visual_mask, batch.audio_mask
    if not keep_visual:
        slots = torch.cat([torch.zeros_like(slots[..., :modality_width]), slots[..., modality_width:]], dim=-1)
        visual_mask = torch.zeros_like(visual_mask)
    if not keep_audio:
        slots = torch.cat([slots[..., :modality_width], torch.zeros_like(slots[..., modality_width:])], dim=-1)
        audio_mask = torch.zeros_like(audio_mask)
    return dataclasses.replace(batch, slots=slots, visual_mask=visual_mask, audio_mask=audio_mask)


class AlignedModel(nn.Module):
    def __init__(self, favor, heads: RetrievalHeads, text_cfg: TextTowerConfig = TextTowerConfig()):
        super().__init__()
        if heads.cfg.window_dim != favor.config.causal_qformer.hidden_size:
            raise ValueError(f"heads expect H={heads.cfg.window_dim}, model has "
                             f"{favor.config.causal_qformer.hidden_size}")
        self.favor = favor
        self.heads = heads
        self.text_cfg = text_cfg

    # ------------------------------------------------------------------ sizes
    @property
    def embed_dim(self) -> int:
        return self.heads.cfg.embed_dim

    @property
    def device(self) -> torch.device:
        return self.favor.device

    @property
    def text_tower(self):
        return shared_text_tower(self.text_cfg)

    # ------------------------------------------------------------------ differentiable pieces (training)
    def query_tokens(self, batch: WindowBatch) -> torch.Tensor:
        """(W, L*S, 2D) slots -> (W, Nq, H) query tokens (differentiable; favor.forward)."""
        return self.favor(batch.slots, batch.visual_mask, batch.audio_mask).query_tokens

    def modality_passes(self, batch: WindowBatch, *, audio_only: bool = True, visual_only: bool = True
                        ) -> ModalityPasses:
        D = self.favor.config.modality_width
        full = self.query_tokens(batch)
        a = self.query_tokens(mask_modality(batch, D, keep_visual=False, keep_audio=True)) if audio_only else None
        v = self.query_tokens(mask_modality(batch, D, keep_visual=True, keep_audio=False)) if visual_only else None
        return ModalityPasses(full=full, audio_only=a, visual_only=v)

    def av_head_inputs(self, batch: WindowBatch, has_audio: bool, has_video: bool, run_pass=None
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What the audio / visual heads read for these windows (None for a modality the media lacks):
        per-frame slot means (W, L, D) when heads.cfg.av_frames, else the query tokens (W, Nq, H) of the
        audio-only and video-only passes, computed by run_pass(masked batch, has_video, has_audio) -> (W, Nq, H)
        (default: self.query_tokens)."""
        D = self.favor.config.modality_width
        if self.heads.cfg.av_frames:
            from favor_ops.retrieval.frame_features import frame_modality_means

            audio, visual = frame_modality_means(batch, D)
            return (audio if has_audio else None), (visual if has_video else None)
        run_pass = run_pass or (lambda masked, _has_video, _has_audio: self.query_tokens(masked))
        audio = run_pass(mask_modality(batch, D, keep_visual=False, keep_audio=True), False, True) if has_audio else None
        visual = run_pass(mask_modality(batch, D, keep_visual=True, keep_audio=False), True, False) if has_video else None
        return audio, visual

    def text_sentences(self, texts: list[str]) -> torch.Tensor:
        """(B, 384) frozen MiniLM sentence embeddings (cached) on the model's device."""
        return self.text_tower.encode(list(texts)).to(self.device)

    # ------------------------------------------------------------------ the contract
    @torch.no_grad()
    def window_vectors(self, query_tokens: torch.Tensor, audio_only_tokens: torch.Tensor | None = None,
                       visual_only_tokens: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None
                       ) -> dict[str, torch.Tensor]:
        """(W, Nq, H) query tokens (+ the audio / visual heads' inputs from av_head_inputs, None if that modality is
        absent; frame_mask (W, L) bool: the windows' real frames, None = all) -> dict(tokens (W, Nq, E),
        pooled (W, E), audio_vec (W, E), visual_vec (W, E)), unit-norm float32."""
        dev = self.device
        tokens = self.heads.window_tokens(query_tokens.to(dev).float())  # (W, Nq, E)
        W, E = tokens.shape[0], self.embed_dim
        zeros = torch.zeros((W, E), device=dev)
        return {
            "tokens": tokens,
            "pooled": self.heads.pooled(tokens),
            "audio_vec": zeros if audio_only_tokens is None else self.heads.audio(audio_only_tokens.to(dev).float(),
                                                                                  frame_mask),
            "visual_vec": zeros if visual_only_tokens is None else self.heads.visual(
                visual_only_tokens.to(dev).float(), frame_mask),
        }

    @torch.no_grad()
    def frame_vectors(self, batch: WindowBatch, has_audio: bool, has_video: bool) -> dict[str, torch.Tensor]:
        """dict(frame_audio (W, L, E), frame_visual (W, L, E)) unit-norm float32 per-frame vectors of the batch's
        windows (heads.cfg.frame_vectors); zeros for a modality the media lacks and for padded frames."""
        from favor_ops.retrieval.frame_features import frame_modality_means

        audio, visual = frame_modality_means(batch, self.favor.config.modality_width)  # (W, L, D) each
        real = batch.frame_mask.to(self.device).unsqueeze(-1).float()  # (W, L, 1)
        fa = self.heads.frame_audio(audio.to(self.device)) * real * float(has_audio)  # (W, L, E)
        fv = self.heads.frame_visual(visual.to(self.device)) * real * float(has_video)
        return {"frame_audio": fa, "frame_visual": fv}

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """list of B texts -> (B, E) unit-norm float32."""
        return self.heads.text(self.text_sentences(texts))

    @torch.no_grad()
    def encode_media(self, frames_rgb: np.ndarray | None, audio: np.ndarray | None, *, duration_s: float | None,
                     is_still_image: bool = False) -> MediaVectors:
        """Whole-file path: frames (F, H, W, 3) uint8 at the model's FPS (None / empty = no video) and 16 kHz mono
        audio (None / empty = no audio) -> window vectors of every window (the same windows the index job cuts)."""
        favor, cfg = self.favor, self.favor.config
        has_video = frames_rgb is not None and len(frames_rgb) > 0
        has_audio = audio is not None and len(audio) > 0
        if not has_video and not has_audio:
            E, Nq = self.embed_dim, cfg.causal_qformer.num_query_tokens
            return MediaVectors(np.zeros((0, Nq, E), np.float32), np.zeros((0, E), np.float32),
                                np.zeros((0, E), np.float32), np.zeros((0, E), np.float32),
                                np.zeros(0), np.zeros(0), False, False)
        visual = favor.encode_frames(favor.preprocess_frames(frames_rgb)) if has_video else None  # (F, Nq, D)
        speech = favor.encode_speech(audio) if has_audio else None  # (A, D)
        n_vis = len(visual) if has_video else 0
        n_aud = len(speech) if has_audio else 0
        fps = cfg.windows.fps
        if duration_s is not None and duration_s > 0:
            n_frames = max(1, math.ceil(duration_s * fps - 1e-6))
        else:
            n_frames = favor.count_frames(n_vis, n_aud, has_video, has_audio)
        from favor_ops.media.windowing import num_windows

        n_win = num_windows(n_frames, cfg.windows.window_spec())
        parts = []
        for start in range(0, n_win, cfg.windows.window_batch_size):
            ids = np.arange(start, min(start + cfg.windows.window_batch_size, n_win))
            batch = favor.build_window_batch(ids, n_frames, visual, speech, n_visual_frames=n_vis,
                                             n_audio_frames=n_aud, is_still_image=is_still_image,
                                             duration_s=duration_s if duration_s else None)
            with favor.autocast():
                full = self.query_tokens(batch)
                audio_in, visual_in = self.av_head_inputs(batch, has_audio, has_video)
            vec = self.window_vectors(full, audio_in, visual_in, batch.frame_mask)
            if self.heads.cfg.frame_vectors:
                vec.update(self.frame_vectors(batch, has_audio, has_video))
            parts.append((vec, batch.t_start_s, batch.t_end_s))
        cat = lambda k: torch.cat([p[0][k] for p in parts]).float().cpu().numpy()  # noqa: E731
        return MediaVectors(tokens=cat("tokens"), pooled=cat("pooled"), audio_vec=cat("audio_vec"),
                            visual_vec=cat("visual_vec"), t_start_s=np.concatenate([p[1] for p in parts]),
                            t_end_s=np.concatenate([p[2] for p in parts]), has_audio=has_audio, has_video=has_video,
                            frame_audio=cat("frame_audio") if self.heads.cfg.frame_vectors else None,
                            frame_visual=cat("frame_visual") if self.heads.cfg.frame_vectors else None)

    def encode_decoded(self, decoded) -> MediaVectors:
        """favor_ops.media.decode.DecodedMedia -> MediaVectors."""
        info = getattr(decoded, "info", None)
        return self.encode_media(decoded.frames_rgb if decoded.has_video else None,
                                 decoded.audio if decoded.has_audio else None,
                                 duration_s=getattr(info, "duration_s", None),
                                 is_still_image=bool(getattr(info, "is_still_image", False)))

    def _query(self, vectors: MediaVectors, key: str) -> QueryEncoding:
        def mean_unit(x: np.ndarray) -> np.ndarray:
            m = x.mean(axis=0) if len(x) else np.zeros(self.embed_dim, np.float32)
            return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)

        return QueryEncoding(vector=mean_unit(getattr(vectors, key)), pooled=mean_unit(vectors.pooled),
                             tokens=vectors.tokens.reshape(-1, self.embed_dim))

    def encode_audio_query(self, waveform: np.ndarray) -> QueryEncoding:
        """(T,) float32 16 kHz audio clip -> QueryEncoding; `vector` is the mean audio_vec (compare with visual_vec
        for audio -> video matching, or audio_vec for audio -> audio)."""
        duration_s = len(waveform) / self.favor.config.speech.sample_rate_hz
        return self._query(self.encode_media(None, waveform, duration_s=duration_s), "audio_vec")

    def encode_image_query(self, frames_rgb: np.ndarray) -> QueryEncoding:
        """(H, W, 3) or (F, H, W, 3) uint8 image(s) -> QueryEncoding; `vector` is the mean visual_vec."""
        frames = np.asarray(frames_rgb)
        if frames.ndim == 3:
            frames = frames[None]
        duration_s = len(frames) / self.favor.config.windows.fps
        return self._query(self.encode_media(frames, None, duration_s=duration_s), "visual_vec")

    def encode_video_query(self, decoded) -> QueryEncoding:
        """DecodedMedia clip -> QueryEncoding; `vector` is the mean pooled full-pass vector."""
        return self._query(self.encode_decoded(decoded), "pooled")

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        d = self.favor.save_pretrained(directory)
        payload = {"format": RETRIEVAL_FORMAT, "version": RETRIEVAL_FORMAT_VERSION,
                   "heads": self.heads.cfg.to_dict(), "text_tower": dataclasses.asdict(self.text_cfg)}
        (Path(d) / RETRIEVAL_CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
        state = {k: v.detach().contiguous().cpu() for k, v in self.heads.state_dict().items()}
        save_file(state, str(Path(d) / RETRIEVAL_WEIGHTS_FILE), metadata={"format": RETRIEVAL_FORMAT})
        return Path(d)


def load_retrieval_heads(directory: str | Path) -> tuple[RetrievalHeads, TextTowerConfig]:
    from safetensors.torch import load_file

    payload = json.loads((Path(directory) / RETRIEVAL_CONFIG_FILE).read_text())
    if payload.get("format") != RETRIEVAL_FORMAT:
        raise ValueError(f"{directory}: {RETRIEVAL_CONFIG_FILE} is not a {RETRIEVAL_FORMAT} file")
    heads = RetrievalHeads(RetrievalHeadsConfig.from_dict(payload["heads"]))
    heads.load_state_dict(load_file(str(Path(directory) / RETRIEVAL_WEIGHTS_FILE)), strict=True)
    text_cfg = TextTowerConfig(**payload.get("text_tower", {}))
    return heads.eval(), text_cfg


def load_aligned_model(spec: str, device: str | torch.device = "cpu") -> AlignedModel:
    """Aligned checkpoint dir -> trained heads; preset name or plain FAVOR checkpoint -> identity heads (E = H)."""
    from favor_ops.models.loading import load_favor_model

    favor = load_favor_model(str(spec), device=device)
    if is_aligned_checkpoint(spec):
        heads, text_cfg = load_retrieval_heads(spec)
    else:
        heads, text_cfg = identity_heads(favor.config.causal_qformer.hidden_size), TextTowerConfig()
    return AlignedModel(favor, heads, text_cfg).to(device).eval()
