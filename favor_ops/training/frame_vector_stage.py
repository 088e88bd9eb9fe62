"""Frame vector stage of alignment: teach the per-frame heads what each 0.5 s frame shows and says.

Why: a window's 32 tokens say what its 5 s hold, not when inside them: "what is said while the red circle is shown"
and "which comes first" cannot be read from them when both events fall in one window (docs/evaluation.md,
"Question answering: frame grounding"). The encoders already tell frames apart (the visual frame and speech event
stages); these heads put each frame's audio mean and visual mean in the text head's space:

    window slots -> frame_modality_means -> audio, visual (W, L, D)
                 -> heads.frame_audio / heads.frame_visual (a temporal convolution) -> (W, L, E) unit-norm
    score(frame, caption) = cos(frame vector, text head("a red circle") / text head("someone says apple") / ...)
    loss = multi-positive masked softmax (favor_ops.training.contrastive), both directions, per modality

A frame's labels come from the manifest: its visual caption is the segment shown at its sampling time k / fps; its
audio caption is the word or sound whose event overlaps the frame's slice [k / fps, (k + 1) / fps) by at least
`min_overlap_s` (the longest overlap wins). An unlabelled frame (silence, a gap) is no caption's positive and every
caption's negative, so "someone says apple" scores low on silence: the caption -> frame direction is what makes
cosines comparable across frames, which grounding (a softmax over a video's frames) needs.

The encoders, the Q-Former and the text head are frozen here: the frame means are computed once, and only the two
frame heads train. Captions are the first template of each kind (favor_ops.retrieval.queries), the phrases QA
grounding scores frames with.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from favor_ops.retrieval.queries import project_attrs, query_text
from favor_ops.training.contrastive import NEGATIVE, POSITIVE, multi_positive_nce
from favor_ops.training.optimizer_step import optimizer_step

AUDIO_KINDS = ("word", "sound")


@dataclass(frozen=True)
class FrameVectorConfig:
    steps: int = 600
    batch_windows: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    temperature: float = 0.05  # fixed softmax temperature (cosine units)
    min_overlap_s: float = 0.1  # an audio event labels a frame when it covers this much of the frame's slice


@dataclass
class FrameLabels:
    """Caption index of each frame of each dataset window, -1 = none."""

    visual_captions: list[str]
    audio_captions: list[str]
    visual: np.ndarray  # (N_windows, L) int64
    audio: np.ndarray  # (N_windows, L) int64


def _event_spans(seg) -> list[tuple[str, tuple[float, float]]]:
    out = []
    for kind, span in (("word", seg.word_span), ("sound", seg.sound_span)):
        proj = project_attrs(seg.attrs, kind)
        if proj is not None and span is not None:
            out.append((query_text(proj, 0), span))
    return out


def frame_labels(dataset, cfg: FrameVectorConfig = FrameVectorConfig()) -> FrameLabels:
    """The visual and audio caption of every frame of every window of `dataset` (a WindowDataset)."""
    fps = dataset.cfg.windows.fps
    L = dataset.cfg.windows.frames_per_window
    visual_caps, audio_caps = set(), set()
    for seg in dataset.segments:
        proj = project_attrs(seg.attrs, "visual")
        if proj is not None:
            visual_caps.add(query_text(proj, 0))
        audio_caps.update(c for c, _ in _event_spans(seg))
    vis_list, aud_list = sorted(visual_caps), sorted(audio_caps)
    vis_id, aud_id = {c: i for i, c in enumerate(vis_list)}, {c: i for i, c in enumerate(aud_list)}
    visual = np.full((len(dataset.windows), L), -1, np.int64)
    audio = np.full((len(dataset.windows), L), -1, np.int64)
    for i, item in enumerate(dataset.windows):
        segs = [dataset.segments[j] for j in item.segment_ids]
        for k in range(item.n_frames):
            t0 = item.t_start_s + k / fps  # the frame's sampling time and the start of its slice (seconds)
            t1 = t0 + 1.0 / fps
            shown = next((s for s in segs if s.t_start <= t0 < s.t_end), None)
            proj = project_attrs(shown.attrs, "visual") if shown is not None else None
            if proj is not None:
                visual[i, k] = vis_id[query_text(proj, 0)]
            best, best_overlap = None, cfg.min_overlap_s
            for seg in segs:
                for caption, (a, b) in _event_spans(seg):
                    overlap = min(b, t1) - max(a, t0)
                    if overlap >= best_overlap:
                        best, best_overlap = caption, overlap
            if best is not None:
                audio[i, k] = aud_id[best]
    return FrameLabels(vis_list, aud_list, visual, audio)


@torch.no_grad()
def window_frame_means(aligned, dataset, indices: np.ndarray, batch_windows: int = 32
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(audio (N, L, D), visual (N, L, D), has_audio (N,), has_video (N,)) per-frame means of the windows."""
    from favor_ops.retrieval.frame_features import frame_modality_means
    from favor_ops.training.window_dataset import build_training_batch

    D = aligned.favor.config.modality_width
    audio, visual, has_a, has_v = [], [], [], []
    for start in range(0, len(indices), batch_windows):
        batch, a_ok, v_ok = build_training_batch(aligned.favor, dataset, indices[start:start + batch_windows])
        a, v = frame_modality_means(batch, D)
        audio.append(a)
        visual.append(v)
        has_a.append(a_ok)
        has_v.append(v_ok)
    return torch.cat(audio), torch.cat(visual), torch.cat(has_a), torch.cat(has_v)


def _labels_matrix(caption_ids: torch.Tensor, n_captions: int) -> torch.Tensor:
    """(F,) caption index or -1 -> (F, C) POSITIVE at the caption, NEGATIVE elsewhere."""
    labels = torch.full((len(caption_ids), n_captions), NEGATIVE, dtype=torch.long)
    has = caption_ids >= 0
    labels[has.nonzero().squeeze(1), caption_ids[has]] = POSITIVE
    return labels


def train_frame_vectors(aligned, dataset, cfg: FrameVectorConfig, rng: np.random.Generator, log=None,
                        progress: bool = True) -> dict:
    """Train aligned.heads.frame_audio_proj / frame_visual_proj (everything else frozen); returns a summary."""
    heads = aligned.heads
    labels = frame_labels(dataset, cfg)
    usable = np.array([i for i in range(len(dataset.windows))
                       if (labels.visual[i] >= 0).any() or (labels.audio[i] >= 0).any()], dtype=np.int64)
    if len(usable) < 2 or not labels.visual_captions or not labels.audio_captions:
        return {"windows": int(len(usable)), "steps": 0}
    dev = aligned.device
    audio, visual, has_a, has_v = window_frame_means(aligned, dataset, usable)  # (N, L, D) ...
    vis_lab = torch.from_numpy(labels.visual[usable])  # (N, L)
    aud_lab = torch.from_numpy(labels.audio[usable])
    with torch.no_grad():
        vis_text = aligned.encode_text(labels.visual_captions).float()  # (Cv, E)
        aud_text = aligned.encode_text(labels.audio_captions).float()  # (Ca, E)
    params = list(heads.frame_audio_proj.parameters()) + list(heads.frame_visual_proj.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    heads.frame_audio_proj.train()
    heads.frame_visual_proj.train()

    def modality_loss(frame_head, means, ok, lab, text) -> torch.Tensor:
        keep = ok.cpu()  # windows that hold the modality
        if int(keep.sum()) == 0:
            return text.new_zeros(())
        x = means[keep].to(dev).float()  # (B', L, D)
        vec = frame_head(x).flatten(0, 1)  # (B', L, E) -> (F, E) unit-norm
        ids = lab[keep].flatten()  # (F,)
        return multi_positive_nce(vec @ text.T / cfg.temperature, _labels_matrix(ids, len(text)).to(dev))

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="align: frame vectors", unit="step", file=sys.stderr)
    last = {}
    for step in range(cfg.steps):
        idx = torch.from_numpy(rng.choice(len(usable), size=min(cfg.batch_windows, len(usable)), replace=False))
        loss_a = modality_loss(heads.frame_audio, audio[idx], has_a[idx], aud_lab[idx], aud_text)
        loss_v = modality_loss(heads.frame_visual, visual[idx], has_v[idx], vis_lab[idx], vis_text)
        loss = loss_a + loss_v
        optimizer_step(loss, optimizer, params, cfg.grad_clip)
        last = {"frame_audio": float(loss_a.detach()), "frame_visual": float(loss_v.detach())}
        if log is not None:
            log({"stage": "frame_vectors", "step": step + 1, **{k: round(v, 5) for k, v in last.items()}})
        if bar:
            bar.update(1)
            bar.set_postfix(audio=f"{last['frame_audio']:.3f}", visual=f"{last['frame_visual']:.3f}")
    if bar:
        bar.close()
    for p in params:
        p.requires_grad_(False)
    heads.frame_audio_proj.eval()
    heads.frame_visual_proj.eval()
    return {"windows": int(len(usable)), "steps": cfg.steps, "visual_captions": len(labels.visual_captions),
            "audio_captions": len(labels.audio_captions), "last": last}
