"""Visual frame stage of alignment: teach the (randomly initialised) visual encoder what it sees, frame by frame.

Why: a random-init InstructBLIP vision tower + Q-Former maps every frame to nearly the same 32 tokens (the spread
across frames is ~1% of the spread across query tokens), so nothing downstream can read colour or shape. Before the
window stage, the vision tower, the visual Q-Former and its queries train on single frames:

    frame (3, S, S) -> visual encoder -> (Nq, D) -> frame head (Linear D -> E, per token, unit-norm)
    score(frame, text) = MaxSim over the Nq tokens with the text head's vector of "a red circle"-style captions
    loss = multi-positive masked softmax (favor_ops.training.contrastive) over every visual caption of the corpus
         + sounding_weight * BCE(sounding head(mean over Nq of the tokens), frame shows its shape sounding)

A frame's label is the visual attribute set of the segment holding its timestamp k / fps, and whether that time
lies in one of the segment's sounding spans (the shape drawn larger while its sound plays: corpus/scene.py). The
sounding label makes the visual tokens carry what the audio<->video matching of the window stage needs: when the
picture pulses. The frame and sounding heads are auxiliary (not saved); the text head it trains with is the retrieval
text head.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from favor_ops.retrieval.queries import n_variants, project_attrs, query_text
from favor_ops.training.contrastive import NEGATIVE, POSITIVE, maxsim_scores, multi_positive_nce
from favor_ops.training.optimizer_step import optimizer_step


@dataclass(frozen=True)
class FramePretrainConfig:
    steps: int = 120
    batch_frames: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    sounding_weight: float = 1.0  # weight of the sounding-frame BCE (0: captions only)


def labelled_frames(dataset) -> tuple[list[tuple[int, int, tuple, bool]], list[tuple]]:
    """(file index, frame index, visual attribute set, sounding) of every decoded frame inside a segment, and the
    sorted visual attribute vocabulary."""
    fps = dataset.cfg.windows.fps
    by_clip: dict[str, list] = {}
    for seg in dataset.segments:
        proj = project_attrs(seg.attrs, "visual")
        if proj is not None:
            by_clip.setdefault(seg.clip_id, []).append((seg, tuple(sorted(proj.items()))))
    out = []
    for fi, f in enumerate(dataset.files):
        if f.visual_tokens is None:
            continue
        segs = by_clip.get(f.clip_id, [])
        for k in range(len(f.frames)):
            t = k / fps
            hit = next(((s, a) for s, a in segs if s.t_start <= t < s.t_end), None)
            if hit is None and f.is_still_image and segs:
                hit = segs[0]
            if hit is not None:
                seg, label = hit
                out.append((fi, k, label, any(t0 <= t < t1 for t0, t1 in seg.sounding_spans)))
    return out, sorted({a for _, _, a, _ in out})


def pretrain_visual(aligned, dataset, cfg: FramePretrainConfig, rng: np.random.Generator, log=None,
                    progress: bool = True) -> dict:
    favor = aligned.favor
    frames, vocab = labelled_frames(dataset)
    if len(frames) < 2 or len(vocab) < 2:
        return {"frames": len(frames), "steps": 0}
    for p in favor.visual.parameters():
        p.requires_grad_(True)
    head = nn.Linear(favor.config.modality_width, aligned.embed_dim).to(aligned.device)
    sounding_head = nn.Linear(favor.config.modality_width, 1).to(aligned.device)
    params = list(favor.visual.parameters()) + list(head.parameters()) + list(aligned.heads.text_proj.parameters())
    params += list(sounding_head.parameters())
    params.append(aligned.heads.logit_scale)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    variants = {a: n_variants(dict(a)) for a in vocab}
    aligned.text_sentences([query_text(dict(a), v) for a in vocab for v in range(variants[a])])
    index = {a: j for j, a in enumerate(vocab)}
    favor.visual.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="align: visual frames", unit="step", file=sys.stderr)
    last = float("nan")
    for step in range(cfg.steps):
        pick = rng.choice(len(frames), size=min(cfg.batch_frames, len(frames)), replace=False)
        batch = [frames[int(i)] for i in pick]
        pixels = favor.preprocess_frames(np.stack([dataset.files[fi].frames[k] for fi, k, _, _ in batch]))
        visual = favor.visual(pixels)  # (B, Nq, D)
        tokens = nn.functional.normalize(head(visual), dim=-1)  # (B, Nq, E)
        texts = [query_text(dict(a), int(rng.integers(variants[a]))) for a in vocab]
        text_vecs = aligned.heads.text(aligned.text_sentences(texts))  # (T, E)
        labels = torch.full((len(batch), len(vocab)), NEGATIVE, dtype=torch.long, device=aligned.device)
        for i, (_, _, a, _) in enumerate(batch):
            labels[i, index[a]] = POSITIVE
        caption_loss = multi_positive_nce(aligned.heads.scale() * maxsim_scores(tokens, text_vecs), labels)
        sounding = torch.tensor([float(b[3]) for b in batch], device=aligned.device)  # (B,) 1 = shape sounding
        sounding_loss = nn.functional.binary_cross_entropy_with_logits(
            sounding_head(visual.mean(dim=1)).squeeze(-1), sounding)  # logits (B,)
        last = optimizer_step(caption_loss + cfg.sounding_weight * sounding_loss, optimizer, params, cfg.grad_clip)
        if log is not None:
            log({"stage": "visual_frames", "step": step + 1, "frame_loss": round(last, 5),
                 "sounding_loss": round(sounding_loss.item(), 5)})
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{last:.3f}")
    if bar:
        bar.close()
    favor.visual.eval()
    for p in favor.visual.parameters():
        p.requires_grad_(False)
    refresh_visual_tokens(favor, dataset)
    return {"frames": len(frames), "steps": cfg.steps, "last_loss": last}


@torch.no_grad()
def refresh_visual_tokens(favor, dataset) -> None:
    """Recompute every file's visual tokens with the (now trained) encoder through the inference path."""
    for f in dataset.files:
        if f.visual_tokens is not None and len(f.frames):
            f.visual_tokens = favor.encode_frames(favor.preprocess_frames(f.frames)).half().cpu()
