"""Speech event stage of alignment: teach the (randomly initialised) Whisper encoder what is said and heard.

Why: a random-init Whisper encoder's output is dominated by its sinusoidal positions; mean features over a spoken
word classify the word at chance (measured: 1.7% nearest-centroid accuracy over 38 words). Before the window stage,
Whisper and the speech Linear train on the corpus's audio events (words, beeps, noise bursts):

    file waveform (<= 30 s chunks) -> Whisper + Linear (the inference path, encode_speech) -> (A, D) at 50 Hz
    event [t_start, t_end) -> mean of its frames -> event head (Linear D -> E, unit-norm)
    loss = multi-positive masked softmax against the text head's "someone says apple" / "a high beep" captions

Time-shift augmentation (`shift_events`, on by default): each sampled file's waveform is rotated by a random
offset and its event spans move with it (events cut by the rotation are left out of that step). The corpus voice
is fixed, so a word sounds the same in every file; without the shift the encoder also learns where in its 30 s
chunk each training word happened to be (a random-init Whisper's output is dominated by its positions) and fails
on the same words at other positions in held-out files.

The event head is auxiliary (not saved). Afterwards every file's Whisper frames are recomputed (inference path).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from favor_ops.retrieval.queries import n_variants, query_text
from favor_ops.training.contrastive import NEGATIVE, POSITIVE, multi_positive_nce
from favor_ops.training.optimizer_step import optimizer_step


@dataclass(frozen=True)
class SpeechPretrainConfig:
    steps: int = 100
    batch_files: int = 6  # one <= 30 s Whisper chunk each
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    shift_events: bool = True  # rotate each sampled waveform by a random offset (see module doc)


def rotate_events(
    waveform: np.ndarray, events: list[tuple[float, float, tuple]], shift_s: float, sample_rate_hz: int
) -> tuple[np.ndarray, list[tuple[float, float, tuple]]]:
    """(T,) waveform rotated right by shift_s seconds, and the events that stay whole, moved with it."""
    n = len(waveform)
    duration_s = n / sample_rate_hz
    shift = int(round(shift_s * sample_rate_hz)) % max(n, 1)
    moved = []
    for t0, t1, attrs in events:
        u0, u1 = t0 + shift / sample_rate_hz, t1 + shift / sample_rate_hz
        if u1 <= duration_s:
            moved.append((u0, u1, attrs))
        elif u0 >= duration_s:
            moved.append((u0 - duration_s, u1 - duration_s, attrs))
        # else: the rotation cuts the event in two: left out
    return np.roll(waveform, shift), moved


def audio_events(dataset) -> tuple[dict[int, list[tuple[float, float, tuple]]], list[tuple]]:
    """file index -> [(t_start, t_end, attribute set)] of its word and sound events; and the sorted vocabulary."""
    index = {f.clip_id: i for i, f in enumerate(dataset.files) if f.audio is not None}
    out: dict[int, list] = {}
    for seg in dataset.segments:
        fi = index.get(seg.clip_id)
        if fi is None:
            continue
        if seg.word_span is not None and "word" in seg.attrs:
            out.setdefault(fi, []).append((*seg.word_span, (("word", seg.attrs["word"]),)))
        if seg.sound_span is not None and "sound" in seg.attrs:
            out.setdefault(fi, []).append((*seg.sound_span, (("sound", seg.attrs["sound"]),)))
    vocab = sorted({a for events in out.values() for _, _, a in events})
    return out, vocab


def pretrain_speech(aligned, dataset, cfg: SpeechPretrainConfig, rng: np.random.Generator, log=None,
                    progress: bool = True) -> dict:
    favor = aligned.favor
    events, vocab = audio_events(dataset)
    files = sorted(events)
    if len(files) < 1 or len(vocab) < 2:
        return {"files": len(files), "steps": 0}
    speech = favor.speech
    for p in speech.parameters():
        p.requires_grad_(True)
    head = nn.Linear(favor.config.modality_width, aligned.embed_dim).to(aligned.device)
    params = list(speech.parameters()) + list(head.parameters()) + list(aligned.heads.text_proj.parameters())
    params.append(aligned.heads.logit_scale)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    variants = {a: n_variants(dict(a)) for a in vocab}
    aligned.text_sentences([query_text(dict(a), v) for a in vocab for v in range(variants[a])])
    index = {a: j for j, a in enumerate(vocab)}
    rate = favor.config.speech.frame_rate_hz
    sample_rate_hz = favor.config.speech.sample_rate_hz
    speech.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="align: speech events", unit="step", file=sys.stderr)
    n_events = sum(len(v) for v in events.values())
    last = float("nan")
    for step in range(cfg.steps):
        pick = rng.choice(len(files), size=min(cfg.batch_files, len(files)), replace=False)
        pooled, labels_of = [], []
        for i in pick:
            fi = files[int(i)]
            waveform, file_events = dataset.files[fi].audio.astype(np.float32), events[fi]
            if cfg.shift_events and len(waveform):
                waveform, file_events = rotate_events(waveform, file_events,
                                                      float(rng.uniform(0.0, len(waveform) / sample_rate_hz)),
                                                      sample_rate_hz)
            frames = speech(waveform)  # (A, D)
            for t0, t1, attrs in file_events:
                a, b = int(math.floor(t0 * rate)), int(math.ceil(t1 * rate))
                if b > a and a < len(frames):
                    pooled.append(frames[a:b].mean(dim=0))
                    labels_of.append(attrs)
        if len(pooled) < 2:
            continue
        vecs = nn.functional.normalize(head(torch.stack(pooled)), dim=-1)  # (B, E)
        texts = [query_text(dict(a), int(rng.integers(variants[a]))) for a in vocab]
        text_vecs = aligned.heads.text(aligned.text_sentences(texts))  # (T, E)
        labels = torch.full((len(pooled), len(vocab)), NEGATIVE, dtype=torch.long, device=aligned.device)
        for r, a in enumerate(labels_of):
            labels[r, index[a]] = POSITIVE
        loss = multi_positive_nce(aligned.heads.scale() * vecs @ text_vecs.t(), labels)
        last = optimizer_step(loss, optimizer, params, cfg.grad_clip)
        if log is not None:
            log({"stage": "speech_events", "step": step + 1, "event_loss": round(last, 5)})
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{last:.3f}")
    if bar:
        bar.close()
    speech.eval()
    for p in speech.encoder.parameters():
        p.requires_grad_(False)
    refresh_whisper_frames(favor, dataset)
    return {"files": len(files), "events": n_events, "steps": cfg.steps, "last_loss": last}


@torch.no_grad()
def refresh_whisper_frames(favor, dataset) -> None:
    """Recompute every file's Whisper frames with the (now trained) encoder through the inference path."""
    for f in dataset.files:
        if f.whisper is not None and f.audio is not None:
            f.whisper = favor.speech.whisper_frames(f.audio.astype(np.float32)).half().cpu()
