"""Training windows of a synthetic corpus: decode every file once, cache per-file features, pair windows with text.

Per file (cached as one .pt under `cache_dir`, keyed by the file's sha256, the decode settings and a hash of the
frozen encoders' weights):
    frames        (F, S, S, 3) uint8    frames at the model's FPS and image size (the index job's decode)
    visual_tokens (F, Nq, D)  float16   frozen visual encoder output (model.encode_frames: the inference path)
    whisper       (A, d_model) float16  Whisper encoder frames at 50 Hz (the inference path before the speech
                                         Linear), 30 s chunks stitched like encode_speech
    audio         (T,) float16          the 16 kHz waveform (for the speech stage, which trains Whisper)
Windows follow the index job's grid: n_frames = max(1, ceil(duration_s * fps)), L-frame windows every stride.
A window of frames [k0, k0 + L) starts at k0 / fps seconds, i.e. at speech frame k0 * 50 / fps: slicing the
per-file arrays there and building the window as a standalone media gives exactly the slots the index builds.

Text pairing (attribute sets, see favor_ops.retrieval.queries) for each window and each segment it overlaps:
    positive  the window really shows / holds it: visual part when the overlap is >= min_visual_overlap_s
              (at least one frame), word / sound when >= min_event_fraction of the event lies in the window,
              joint when both hold for the same segment
    ignored   any other overlap (relevant under the evaluation's rule, but the evidence may be outside the window)
    partial   positives (visual, joint) whose segment covers less than `core_fraction` of the shorter of the window
              and the segment: positives for the window, but competitors when ranking windows for that text, so
              the window holding most of a segment ranks first (temporal IoU)
    negative  everything else
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from favor_ops.retrieval.queries import Segment, manifest_segments, overlap_s, project_attrs

FROZEN = tuple  # attribute set as sorted (key, value) pairs
CACHE_VERSION = "v2"


@dataclass(frozen=True)
class PairingConfig:
    min_visual_overlap_s: float = 0.5  # a frame every 1 / fps seconds: at least one frame of the segment
    min_event_fraction: float = 0.5  # share of a word / sound event that must lie inside the window
    core_fraction: float = 0.5  # overlap / min(window, segment) length for a visual positive to be "core"


@dataclass
class FileFeatures:
    clip_id: str
    duration_s: float
    frames: np.ndarray  # (F, S, S, 3) uint8
    visual_tokens: torch.Tensor | None  # (F, Nq, D) float16, None without video
    whisper: torch.Tensor | None  # (A, d_model) float16, None without audio
    is_still_image: bool = False
    audio: np.ndarray | None = None  # (T,) float16 16 kHz mono waveform (speech stage), None without audio


@dataclass
class WindowItem:
    file_index: int
    window_index: int
    t_start_s: float
    t_end_s: float
    n_frames: int  # real frames of the window (<= L)
    frame_start: int  # first frame of the window in its file
    audio_start: int  # first speech frame (50 Hz) of the window in its file
    positives: set = field(default_factory=set)  # attribute sets (FROZEN)
    ignored: set = field(default_factory=set)
    partial: set = field(default_factory=set)  # positives that only touch the window (see module doc)
    segment_ids: tuple = ()  # indices into WindowDataset.segments overlapped by the window


def _frozen(attrs: dict) -> FROZEN:
    return tuple(sorted(attrs.items()))


def encoder_fingerprint(model) -> str:
    """Hash of the frozen encoders' weights and the decode settings: the cache key of per-file features."""
    digest = hashlib.sha256(repr(sorted(model.config.decode_config().items())).encode())
    for module in (model.visual, model.speech.encoder):
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def window_pairing(window: tuple[float, float], segments: list[tuple[int, Segment]], cfg: PairingConfig
                   ) -> tuple[set, set, tuple, set]:
    """(positives, ignored, segment ids, partial positives) of one window span against its clip's segments."""
    t0, t1 = window
    pos: set = set()
    weak: set = set()
    core: set = set()
    ids = []
    for seg_id, seg in segments:
        ov = overlap_s(t0, t1, seg.t_start, seg.t_end)
        if ov <= 0:
            continue
        ids.append(seg_id)
        strong: dict[str, bool] = {}
        strong["visual"] = ov >= cfg.min_visual_overlap_s - 1e-9
        for kind, span in (("word", seg.word_span), ("sound", seg.sound_span)):
            if span is None or span[1] <= span[0]:
                strong[kind] = ov >= cfg.min_visual_overlap_s - 1e-9
            else:
                strong[kind] = overlap_s(t0, t1, *span) >= cfg.min_event_fraction * (span[1] - span[0]) - 1e-9
        strong["joint"] = strong["visual"] and strong["word"]
        is_core = ov >= cfg.core_fraction * min(t1 - t0, seg.t_end - seg.t_start) - 1e-9
        for kind in ("visual", "word", "sound", "joint"):
            proj = project_attrs(seg.attrs, kind)
            if proj is None:
                continue
            (pos if strong[kind] else weak).add(_frozen(proj))
            if strong[kind] and (is_core or kind in ("word", "sound")):
                core.add(_frozen(proj))
    return pos, weak - pos, tuple(ids), pos - core


class WindowDataset:
    """Every window of a corpus with its cached features and its text pairing."""

    def __init__(self, corpus_dir: str | Path, model, cache_dir: str | Path, pairing: PairingConfig = PairingConfig(),
                 progress: bool = True, max_files: int | None = None):
        from favor_ops.corpus.manifest import read_manifest

        self.corpus_dir = Path(corpus_dir)
        self.records = [r for r in read_manifest(self.corpus_dir) if r.get("kind") != "bad" and not r.get("broken")]
        if max_files is not None:
            self.records = self.records[:max_files]
        self.cfg = model.config
        self.pairing = pairing
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = encoder_fingerprint(model)
        self.files: list[FileFeatures] = []
        iterator = self.records
        if progress:
            import sys

            from tqdm import tqdm

            iterator = tqdm(self.records, desc="decode+encode corpus", unit="file", file=sys.stderr)
        for rec in iterator:
            self.files.append(self._features(rec, model))
        self.segments = manifest_segments(self.records)
        self.windows = self._windows()

    # ------------------------------------------------------------------ per file
    def _features(self, rec: dict, model) -> FileFeatures:
        path = self.cache_dir / f"{rec['sha256'][:24]}-{self.fingerprint}-{CACHE_VERSION}.pt"
        if path.is_file():
            data = torch.load(path, weights_only=False)
        else:
            data = self._encode_file(rec, model)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.part")  # one per process: runs may share a cache dir
            torch.save(data, tmp)
            tmp.replace(path)
        return FileFeatures(clip_id=rec["clip_id"], **data)

    def _encode_file(self, rec: dict, model) -> dict:
        from favor_ops.media.decode import DecodeConfig, decode

        decoded = decode(str(self.corpus_dir / rec["file"]), DecodeConfig(**model.config.decode_config()))
        has_video = bool(decoded.has_video) and len(decoded.frames_rgb) > 0
        has_audio = bool(decoded.has_audio) and len(decoded.audio) > 0
        with torch.no_grad():
            visual = None
            if has_video:
                visual = model.encode_frames(model.preprocess_frames(decoded.frames_rgb)).half().cpu()
            whisper = model.speech.whisper_frames(decoded.audio).half().cpu() if has_audio else None
        frames = decoded.frames_rgb if has_video else np.zeros((0, 1, 1, 3), np.uint8)
        return {"duration_s": float(decoded.info.duration_s), "frames": np.ascontiguousarray(frames),
                "visual_tokens": visual, "whisper": whisper,
                "is_still_image": bool(getattr(decoded.info, "is_still_image", False)),
                "audio": decoded.audio.astype(np.float16) if has_audio else None}

    # ------------------------------------------------------------------ windows
    def n_grid_frames(self, f: FileFeatures) -> int:
        fps = self.cfg.windows.fps
        if f.duration_s > 0:
            return max(1, math.ceil(f.duration_s * fps - 1e-6))
        return max(1, len(f.frames))

    def _windows(self) -> list[WindowItem]:
        from favor_ops.media.windowing import window_frame_index, window_spans

        spec = self.cfg.windows.window_spec()
        fps, rate = self.cfg.windows.fps, self.cfg.speech.frame_rate_hz
        by_clip: dict[str, list[tuple[int, Segment]]] = {}
        for i, seg in enumerate(self.segments):
            by_clip.setdefault(seg.clip_id, []).append((i, seg))
        items = []
        for fi, f in enumerate(self.files):
            n = self.n_grid_frames(f)
            index, frame_mask = window_frame_index(n, spec)
            t0, t1 = window_spans(n, fps, spec, duration_s=f.duration_s if f.duration_s > 0 else None)
            for w in range(len(index)):
                start = int(index[w, 0])
                span = (float(t0[w]), float(t1[w]))
                pos, weak, ids, partial = window_pairing(span, by_clip.get(f.clip_id, []), self.pairing)
                items.append(WindowItem(fi, w, span[0], span[1], int(frame_mask[w].sum()), start,
                                        int(round(start * rate / fps)), pos, weak, partial, ids))
        return items

    def __len__(self) -> int:
        return len(self.windows)

    def trainable_indices(self) -> np.ndarray:
        """Windows with at least one positive text."""
        return np.array([i for i, w in enumerate(self.windows) if w.positives], dtype=np.int64)

    def attribute_vocabulary(self) -> list[FROZEN]:
        """Every single-modality attribute set (visual, word, sound) seen in the corpus, sorted."""
        vocab = set()
        for seg in self.segments:
            for kind in ("visual", "word", "sound"):
                proj = project_attrs(seg.attrs, kind)
                if proj is not None:
                    vocab.add(_frozen(proj))
        return sorted(vocab)

    # ------------------------------------------------------------------ slots
    def window_inputs(self, item: WindowItem) -> tuple[torch.Tensor | None, torch.Tensor | None, int, int]:
        """(visual tokens (n, Nq, D) | None, whisper frames (a, d_model) | None, n_visual, n_audio) of one window."""
        f = self.files[item.file_index]
        L = self.cfg.windows.frames_per_window
        per_window_audio = int(round(L * self.cfg.speech.frame_rate_hz / self.cfg.windows.fps))
        vis = aud = None
        if f.visual_tokens is not None:
            if f.is_still_image:
                vis = f.visual_tokens[-1:].expand(item.n_frames, -1, -1)
            else:
                vis = f.visual_tokens[item.frame_start:item.frame_start + item.n_frames]
            if len(vis) == 0:
                vis = None
        if f.whisper is not None:
            aud = f.whisper[item.audio_start:item.audio_start + per_window_audio]
            if len(aud) == 0:
                aud = None
        return vis, aud, (0 if vis is None else len(vis)), (0 if aud is None else len(aud))


def build_training_batch(model, dataset: WindowDataset, indices, speech_proj=None):
    """Concatenated WindowBatch of dataset windows `indices`, built window by window with
    model.build_window_batch (differentiable in the speech Linear).

    Returns (WindowBatch, has_audio (B,) bool, has_video (B,) bool)."""
    from favor_ops.models.outputs import WindowBatch

    proj = speech_proj if speech_proj is not None else model.speech.proj
    dev = model.device
    parts, has_a, has_v = [], [], []
    for i in indices:
        item = dataset.windows[int(i)]
        vis, aud, n_vis, n_aud = dataset.window_inputs(item)
        vis_t = vis.to(dev).float() if vis is not None else None
        speech = proj(aud.to(dev).float()) if aud is not None else None  # (a, D)
        n_frames = max(item.n_frames, 1)
        b = model.build_window_batch(np.array([0]), n_frames, vis_t, speech, n_visual_frames=n_vis,
                                     n_audio_frames=n_aud, duration_s=item.t_end_s - item.t_start_s)
        parts.append(b)
        has_a.append(n_aud > 0)
        has_v.append(n_vis > 0)
    batch = WindowBatch(
        slots=torch.cat([p.slots for p in parts]),
        visual_mask=torch.cat([p.visual_mask for p in parts]),
        audio_mask=torch.cat([p.audio_mask for p in parts]),
        frame_mask=torch.cat([p.frame_mask for p in parts]),
        t_start_s=np.array([dataset.windows[int(i)].t_start_s for i in indices]),
        t_end_s=np.array([dataset.windows[int(i)].t_end_s for i in indices]),
        window_index=np.array([dataset.windows[int(i)].window_index for i in indices]),
    )
    return batch, torch.tensor(has_a, device=dev), torch.tensor(has_v, device=dev)
