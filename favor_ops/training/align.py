"""Alignment training: FAVOR query tokens <-> MiniLM text, and audio <-> video, on a synthetic corpus.

    favor train --stage align --corpus DIR --out CKPT [--model demo] [--steps N] [--resume]

Four stages (encoders included: the demo preset starts from random init):
  1. visual frame stage (frame_pretrain): vision tower + visual Q-Former learn colours/shapes on single frames
     against "a red circle" captions (a random-init visual encoder maps every frame to nearly the same tokens);
  2. speech event stage (speech_pretrain): Whisper + the speech Linear learn words/beeps on their event spans
     against "someone says apple" / "a high beep" captions (random Whisper features classify words at chance);
  3. window stage: the causal Q-Former's query side (queries, self/cross attention, MLPs) + the retrieval heads on
     whole windows. By default (fast path, slot_state_cache) the slot side (slot LayerNorm + positions, frame
     attentions) and the speech Linear are frozen after stage 2 and each window's slot states are cached, so a step
     costs only the query side; `train_frame_attention=True` (CLI --full) trains the whole causal Q-Former instead.
  4. frame vector stage (frame_vector_stage): the two per-frame heads (RetrievalHeadsConfig.frame_vectors) learn
     what each 0.5 s frame shows and says against the same captions, everything else frozen; they read the encoders
     and score against the text head the window stage trained, so they train after it (and again after a resumed
     run's window steps). `frame_vector_steps=0` leaves them out.
The encoders are frozen during the window stage (FAVOR freezes them too) and their per-file outputs cached.

Loss per step over a batch of windows (weights in AlignConfig):
    text      MaxSim multi-positive contrastive, full pass tokens vs the texts of every attribute set in play
              (positives: what the window really shows/says; negatives: the whole single-attribute vocabulary,
              joint captions of other windows, and cross-segment joint captions of the same window: a visual and
              a word that occur in the window but not at the same moment)
    modal     the same on the audio-only pass (word/sound texts) and the video-only pass (visual texts)
    av        InfoNCE audio_vec <-> visual_vec of the same window (in-batch negatives); the vectors come from the
              window's frames (what is heard and seen at each moment, RetrievalHeadsConfig.av_frames)
    diversity FAVOR's diversity loss of the full pass (lambda from the model config)

Out dir: the aligned checkpoint itself (AlignedModel.save) + training_state.pt (optimizer, step, RNG) +
train_log.jsonl (one line per logged step). Checkpoints every `checkpoint_every` steps; `resume=True` continues
from the last one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from favor_ops.retrieval.queries import query_kind, query_text, n_variants
from favor_ops.training.contrastive import IGNORED, NEGATIVE, POSITIVE, av_matching_loss, maxsim_scores, \
    multi_positive_nce

TRAINING_STATE_FILE = "training_state.pt"
TRAIN_LOG_FILE = "train_log.jsonl"
TRAIN_CONFIG_FILE = "align_config.json"


@dataclass(frozen=True)
class AlignConfig:
    model: str = "demo"  # preset or FAVOR checkpoint to start from
    steps: int = 600  # window stage steps (300 measured worse on held-out joint queries: R@1 0.50 vs 0.62)
    batch_windows: int = 32  # windows per step
    lr: float = 1e-3  # query side of the causal Q-Former (5e-4 measured clearly worse at 300 steps)
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    embed_dim: int = 128  # E
    text_hidden_dim: int = 512  # text MLP width (0 = Linear)
    text_weight: float = 1.0
    modal_text_weight: float = 0.5
    av_weight: float = 0.5
    av_frames: bool = True  # audio/visual vectors from the window's frames (RetrievalHeadsConfig.av_frames); False:
    #                         from the single-modality passes' mean query token (held-out AV match 0.62 vs 0.90-0.96)
    av_frame_kernel: int = 3  # frames each frame's audio/visual features see (RetrievalHeadsConfig.av_frame_kernel)
    joint_negatives_per_window: int = 4  # random joint captions added as negatives per window
    checkpoint_every: int = 100
    log_every: int = 5
    seed: int = 0
    num_threads: int = 1  # torch intra-op threads: on the shared 2-core CPU 1 thread measured 4-7x faster than 2
    train_frame_attention: bool = False  # False: fast path (frozen frame attention + speech Linear, cached slot
    #                                      states, see slot_state_cache); True: the whole causal Q-Former trains
    # visual frame stage steps before the window stage (0 = skip; see frame_pretrain). About 5 steps/s on the 2-core
    # CPU; 400 instead of 120 took held-out visual R@1 from 0.86 to 0.96 (120 training clips, see docs/evaluation.md)
    visual_steps: int = 400
    visual_batch_frames: int = 64
    visual_lr: float = 1e-3
    # speech event stage steps (0 = skip; see speech_pretrain). About 1 s/step; 500 instead of 200 took held-out
    # word R@1 from 0.81 to 0.97 (40 clips) and 0.76 to 0.92 (30 clips), see docs/evaluation.md
    speech_steps: int = 500
    speech_batch_files: int = 6
    speech_lr: float = 1e-3
    speech_shift: bool = True  # speech stage: rotate each waveform by a random offset (see speech_pretrain)
    # frame vector stage after the window stage (0 = no frame vectors; see frame_vector_stage): per-frame heard/seen
    # vectors for QA grounding inside a window. Held-out (40 clips): docs/evaluation.md, "Question answering: frame
    # grounding"
    frame_vector_steps: int = 600
    frame_vector_batch_windows: int = 64
    frame_vector_lr: float = 1e-3
    cache_dir: str | None = None  # per-file feature cache; None = <out>/window_cache
    max_files: int | None = None  # use only the first files of the manifest (tests)
    progress: bool = True


class AlignTrainingError(ValueError):
    """The corpus or the out dir cannot be used for alignment training."""


def _build_aligned(cfg: AlignConfig):
    from favor_ops.models.loading import load_favor_model
    from favor_ops.retrieval.aligned_model import AlignedModel
    from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig

    favor = load_favor_model(cfg.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        L = favor.config.windows.frames_per_window
        per_frame = cfg.av_frames or cfg.frame_vector_steps > 0
        heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=favor.config.causal_qformer.hidden_size,
                                                    embed_dim=cfg.embed_dim, text_hidden_dim=cfg.text_hidden_dim,
                                                    av_frames=L if cfg.av_frames else 0,
                                                    modality_dim=favor.config.modality_width if per_frame else 0,
                                                    av_frame_kernel=cfg.av_frame_kernel,
                                                    frame_vectors=cfg.frame_vector_steps > 0))
    return AlignedModel(favor, heads)


def set_trainable(aligned, train_frame_attention: bool = False) -> list[torch.nn.Parameter]:
    """Freeze the encoders (vision tower, visual Q-Former, Whisper) and the LLM projection; in the fast path also the
    slot side of the causal Q-Former (slot LayerNorm, positions, frame attentions) and the speech Linear."""
    from favor_ops.training.slot_state_cache import frozen_slot_parameters

    aligned.favor.freeze_encoders()
    for p in aligned.favor.llm_proj.parameters():
        p.requires_grad_(False)  # not used by retrieval
    if not train_frame_attention:
        for p in frozen_slot_parameters(aligned.favor):
            p.requires_grad_(False)
    return [p for p in aligned.parameters() if p.requires_grad]


class TextSampler:
    """Text candidates of a step and their label matrix against the batch windows.

    Candidates: every single-attribute set of the corpus (visual, word, sound), the attribute sets the batch windows
    touch, the cross-segment joint sets of each window (a visual and a word both in the window, not at the same
    moment: the joint queries' distractors), and `joint_negatives` random joint sets per window from `joint_pool`.
    Each text is one of its paraphrases, drawn at random. `all_texts()` lists every text it can emit, so the frozen
    text tower can embed them all once before training.
    """

    def __init__(self, vocabulary: list[tuple], joint_pool: list[tuple], rng: random.Random, joint_negatives: int):
        self.vocabulary = vocabulary
        self.joint_pool = joint_pool
        self.rng = rng
        self.joint_negatives = joint_negatives

    def all_texts(self) -> list[str]:
        return [query_text(dict(a), v) for a in self.vocabulary + self.joint_pool for v in range(n_variants(dict(a)))]

    def sample(self, windows) -> tuple[list[tuple], list[str], np.ndarray, np.ndarray]:
        """(attribute sets, texts, labels (B, T), text-direction labels (B, T): partial positives negative)."""
        attrs: dict[tuple, None] = dict.fromkeys(self.vocabulary)
        for w in windows:
            for a in sorted(w.positives) + sorted(w.ignored) + cross_segment_joints(w):
                attrs.setdefault(a)
            for _ in range(self.joint_negatives if self.joint_pool else 0):
                attrs.setdefault(self.rng.choice(self.joint_pool))
        keys = list(attrs)
        texts = [query_text(dict(a), self.rng.randrange(n_variants(dict(a)))) for a in keys]
        labels = np.full((len(windows), len(keys)), NEGATIVE, dtype=np.int64)
        index = {a: j for j, a in enumerate(keys)}
        for i, w in enumerate(windows):
            for a in w.ignored:
                labels[i, index[a]] = IGNORED
            for a in w.positives:
                labels[i, index[a]] = POSITIVE
        text_labels = labels.copy()
        for i, w in enumerate(windows):
            for a in w.partial:
                text_labels[i, index[a]] = NEGATIVE
        return keys, texts, labels, text_labels


def cross_segment_joints(window) -> list[tuple]:
    """Joint attribute sets made of a visual and a word that the window shows / says, minus its real joints."""
    vis = sorted(a for a in window.positives if query_kind(dict(a)) == "visual")
    words = sorted(a for a in window.positives if query_kind(dict(a)) == "word")
    real = window.positives | window.ignored
    out = []
    for v in vis:
        for w in words:
            key = tuple(sorted(dict(v + w).items()))
            if key not in real:
                out.append(key)
    return out


def joint_pool_of(dataset) -> list[tuple]:
    """Every joint attribute set of the corpus's segments and every cross-segment joint of its windows, sorted."""
    from favor_ops.retrieval.queries import project_attrs

    pool = set()
    for seg in dataset.segments:
        proj = project_attrs(seg.attrs, "joint")
        if proj is not None:
            pool.add(tuple(sorted(proj.items())))
    for w in dataset.windows:
        pool.update(cross_segment_joints(w))
    return sorted(pool)


def modality_labels(labels: np.ndarray, keys: list[tuple], keep_kinds: tuple[str, ...]) -> np.ndarray:
    """Labels with texts of other kinds ignored (for the audio-only / video-only passes)."""
    out = labels.copy()
    for j, a in enumerate(keys):
        if query_kind(dict(a)) not in keep_kinds:
            out[:, j] = IGNORED
    return out


def _lr_factor(step: int, cfg: AlignConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def step_passes(aligned, dataset, indices, cache=None):
    """(ModalityPasses, av_inputs, has_audio (B,), has_video (B,), window_mask (B,)) of dataset windows `indices`;
    av_inputs: what the audio / visual heads read (AlignedModel.av_head_inputs), for every window."""
    from favor_ops.retrieval.aligned_model import ModalityPasses
    from favor_ops.retrieval.frame_features import frame_modality_means
    from favor_ops.training.slot_state_cache import query_tokens_from_states
    from favor_ops.training.window_dataset import build_training_batch

    dev = aligned.device
    if cache is None:
        batch, has_audio, has_video = build_training_batch(aligned.favor, dataset, indices)
        window_mask = (batch.visual_mask | batch.audio_mask).any(dim=1)
        passes = aligned.modality_passes(batch)
        frames = frame_modality_means(batch, aligned.favor.config.modality_width)  # (B, L, D) audio, visual
    else:
        cached, frames, has_audio, has_video = cache.gather(indices)
        cq = aligned.favor.causal_qformer
        tokens = {p: query_tokens_from_states(cq, [s.to(dev) for s in c.states], c.key_valid.to(dev))
                  for p, c in cached.items()}
        passes = ModalityPasses(full=tokens["full"], audio_only=tokens["audio_only"],
                                visual_only=tokens["visual_only"])
        frames = tuple(f.to(dev).float() for f in frames)
        has_audio, has_video = has_audio.to(dev), has_video.to(dev)
        window_mask = has_audio | has_video
    av_inputs = frames if aligned.heads.cfg.av_frames else (passes.audio_only, passes.visual_only)
    return passes, av_inputs, has_audio, has_video, window_mask


def train_step_losses(aligned, dataset, indices, sampler: TextSampler, cfg: AlignConfig, cache=None
                      ) -> dict[str, torch.Tensor]:
    windows = [dataset.windows[int(i)] for i in indices]
    passes, av_inputs, has_audio, has_video, window_mask = step_passes(aligned, dataset, indices, cache)
    keys, texts, labels_np, text_labels_np = sampler.sample(windows)
    text_vecs = aligned.heads.text(aligned.text_sentences(texts))  # (T, E)
    scale = aligned.heads.scale()
    dev = aligned.device

    def text_loss(query_tokens, labels, text_labels=None):
        scores = maxsim_scores(aligned.heads.window_tokens(query_tokens), text_vecs)  # (B, T)
        return multi_positive_nce(scale * scores, torch.as_tensor(labels, device=dev),
                                  None if text_labels is None else torch.as_tensor(text_labels, device=dev))

    losses = {"text": text_loss(passes.full, labels_np, text_labels_np)}
    audio_rows = has_audio.cpu().numpy()
    video_rows = has_video.cpu().numpy()
    la = modality_labels(labels_np, keys, ("word", "sound"))
    la[~audio_rows] = IGNORED
    lv = modality_labels(labels_np, keys, ("visual",))
    lv[~video_rows] = IGNORED
    lv_text = modality_labels(text_labels_np, keys, ("visual",))
    lv_text[~video_rows] = IGNORED
    losses["modal"] = 0.5 * (text_loss(passes.audio_only, la) + text_loss(passes.visual_only, lv, lv_text))
    both = has_audio & has_video
    real = None  # (B, L) bool: the windows' real frames, for the per-frame AV heads
    if aligned.heads.cfg.av_frames:
        n_real = torch.tensor([w.n_frames for w in windows], device=dev)
        real = torch.arange(aligned.heads.cfg.av_frames, device=dev)[None, :] < n_real[:, None]
    losses["av"] = av_matching_loss(aligned.heads.audio(av_inputs[0], real), aligned.heads.visual(av_inputs[1], real),
                                    aligned.heads.av_scale(), both)
    losses["diversity"] = aligned.favor.diversity_loss(passes.full, window_mask)
    losses["loss"] = (cfg.text_weight * losses["text"] + cfg.modal_text_weight * losses["modal"]
                      + cfg.av_weight * losses["av"] + losses["diversity"])
    return losses


def train_align(corpus_dir: str | Path, out_dir: str | Path, cfg: AlignConfig = AlignConfig(), resume: bool = False
                ) -> dict:
    """Train (or resume) an aligned checkpoint in out_dir; returns a summary dict."""
    from favor_ops.retrieval.aligned_model import is_aligned_checkpoint, load_aligned_model
    from favor_ops.training.window_dataset import WindowDataset

    torch.set_num_threads(cfg.num_threads)
    t0 = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / TRAINING_STATE_FILE
    start_step = 0
    if resume and state_path.is_file() and is_aligned_checkpoint(out):
        aligned = load_aligned_model(str(out))
        state = torch.load(state_path, weights_only=False)
        start_step = int(state["step"])
    else:
        if resume:
            print(f"favor train: nothing to resume in {out}; starting fresh", file=sys.stderr)
        state = None
        aligned = _build_aligned(cfg)
        # dropout and the encoder stages' auxiliary heads draw from torch's global generator: seed it, so one seed
        # gives one model (a resumed run restores the generator's state instead, below)
        torch.manual_seed(cfg.seed)
        (out / TRAIN_LOG_FILE).unlink(missing_ok=True)
    (out / TRAIN_CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True))
    params = set_trainable(aligned, cfg.train_frame_attention)
    head_ids = {id(p) for p in aligned.heads.parameters()}
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if id(p) not in head_ids], "lr": cfg.lr},
         {"params": [p for p in params if id(p) in head_ids], "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay)
    base_lrs = [cfg.lr, cfg.head_lr]

    dataset = WindowDataset(corpus_dir, aligned.favor, cfg.cache_dir or out / "window_cache", progress=cfg.progress,
                            max_files=cfg.max_files)
    trainable = dataset.trainable_indices()
    if len(trainable) < 2:
        raise AlignTrainingError(f"{corpus_dir}: only {len(trainable)} windows with ground truth; need >= 2")
    rng = random.Random(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["python_rng"])
        np_rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
    sampler = TextSampler(dataset.attribute_vocabulary(), joint_pool_of(dataset), rng, cfg.joint_negatives_per_window)
    aligned.text_sentences(sampler.all_texts())  # embed every candidate text once (frozen tower, cached)
    log = open(out / TRAIN_LOG_FILE, "a", encoding="utf-8")

    def write_log(row: dict) -> None:
        if row.get("step", 0) % cfg.log_every == 0:
            log.write(json.dumps(row) + "\n")
            log.flush()

    visual_summary = None
    if cfg.visual_steps > 0 and not (state or {}).get("encoder_stages_done", False):
        from favor_ops.training.frame_pretrain import FramePretrainConfig, pretrain_visual

        visual_summary = pretrain_visual(
            aligned, dataset, FramePretrainConfig(steps=cfg.visual_steps, batch_frames=cfg.visual_batch_frames,
                                                  lr=cfg.visual_lr), np_rng, log=write_log, progress=cfg.progress)
        aligned.favor.freeze_encoders()
    speech_summary = None
    if cfg.speech_steps > 0 and not (state or {}).get("encoder_stages_done", False):
        from favor_ops.training.speech_pretrain import SpeechPretrainConfig, pretrain_speech

        speech_summary = pretrain_speech(
            aligned, dataset, SpeechPretrainConfig(steps=cfg.speech_steps, batch_files=cfg.speech_batch_files,
                                                   lr=cfg.speech_lr, shift_events=cfg.speech_shift), np_rng, log=write_log, progress=cfg.progress)
        aligned.favor.freeze_encoders()
        if not cfg.train_frame_attention:
            for p in aligned.favor.speech.proj.parameters():
                p.requires_grad_(False)
    if visual_summary is not None or speech_summary is not None:
        _checkpoint(aligned, optimizer, start_step, rng, np_rng, out)
    cache = None
    if not cfg.train_frame_attention:
        from favor_ops.training.slot_state_cache import SlotStateCache

        cache = SlotStateCache(aligned.favor, dataset, trainable, progress=cfg.progress)

    aligned.train()
    aligned.favor.visual.eval()  # frozen, no dropout
    aligned.favor.speech.encoder.eval()
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc="align: windows", unit="step", file=sys.stderr)
    last: dict[str, float] = {}
    frame_summary = None
    try:
        for step in range(start_step, cfg.steps):
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * _lr_factor(step, cfg)
            indices = np_rng.choice(trainable, size=min(cfg.batch_windows, len(trainable)), replace=False)
            losses = train_step_losses(aligned, dataset, indices, sampler, cfg, cache)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            last = {k: float(v.detach()) for k, v in losses.items()}
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                row = {"stage": "windows", "step": done, **{k: round(v, 5) for k, v in last.items()},
                       "lr": optimizer.param_groups[0]["lr"], "elapsed_s": round(time.time() - t0, 2)}
                log.write(json.dumps(row) + "\n")
                log.flush()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.3f}", text=f"{last['text']:.3f}", av=f"{last['av']:.3f}")
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                _checkpoint(aligned, optimizer, done, rng, np_rng, out)
        # the frame heads read the frozen encoders but score against the text head, which the window stage trains:
        # they (re)train whenever window steps ran, and once on a resumed run that stopped before them
        if aligned.heads.cfg.frame_vectors and (start_step < cfg.steps
                                                or not (state or {}).get("frame_vectors_done", False)):
            from favor_ops.training.frame_vector_stage import FrameVectorConfig, train_frame_vectors

            aligned.eval()
            frame_summary = train_frame_vectors(
                aligned, dataset, FrameVectorConfig(steps=cfg.frame_vector_steps,
                                                    batch_windows=cfg.frame_vector_batch_windows,
                                                    lr=cfg.frame_vector_lr),
                np_rng, log=write_log, progress=cfg.progress)
            _checkpoint(aligned, optimizer, max(start_step, cfg.steps), rng, np_rng, out, frame_vectors_done=True)
    finally:
        log.close()
        if bar:
            bar.close()
    if start_step >= cfg.steps and not (out / TRAINING_STATE_FILE).is_file():
        _checkpoint(aligned, optimizer, start_step, rng, np_rng, out)
    aligned.eval()
    return {"out": str(out), "steps": cfg.steps, "start_step": start_step, "windows": len(dataset),
            "train_windows": int(len(trainable)), "files": len(dataset.files),
            "elapsed_s": round(time.time() - t0, 2), "last": last, "visual_stage": visual_summary,
            "speech_stage": speech_summary, "frame_vector_stage": frame_summary}


def _checkpoint(aligned, optimizer, step: int, rng: random.Random, np_rng, out: Path,
                frame_vectors_done: bool = False) -> None:
    was_training = aligned.training
    aligned.eval()
    aligned.save(out)
    state = {"step": step, "encoder_stages_done": True, "frame_vectors_done": frame_vectors_done,
             "optimizer": optimizer.state_dict(), "python_rng": rng.getstate(),
             "numpy_rng": np_rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
    tmp = out / (TRAINING_STATE_FILE + ".part")
    torch.save(state, tmp)
    tmp.replace(out / TRAINING_STATE_FILE)
    aligned.train(was_training)
    if was_training:
        aligned.favor.visual.eval()
        aligned.favor.speech.encoder.eval()
