"""QA training: `favor train --stage qa --corpus DIR --model CKPT [--out CKPT]`.

The LLM side learns to answer questions generated from the corpus manifest (favor_ops.qa.questions) from the window
tokens the aligned model produces, exactly the tokens the index stores. The FAVOR model and its retrieval heads are
frozen in this stage (the Q-Former and its diversity loss are trained by the align stage; changing them here would
change the stored tokens under the search heads). Trained: the projection (D -> LLM width), the window channels
(favor_ops.qa.window_channels, when the preset reads them) and the LLM (a scratch
Llama for the `demo` preset; LoRA adapters for an `lm_source` model). Loss: cross-entropy on the answer tokens only.

Each batch mixes the corpus's own clips with clips recombined from their windows (`recombined_share`,
favor_ops.qa.recombined_clips), so answers cannot be learnt per clip; a scratch LM as wide as the tokens starts with
its word embeddings in the retrieval text space (`text_space_init`, favor_ops.qa.text_space_init).

Out: `<out>/qa/` (qa_model.save) + `<out>/qa/qa_training_state.pt` (resume) + `<out>/qa/qa_train_log.jsonl`.
When OUT differs from the starting checkpoint, the aligned checkpoint is copied there first, so OUT holds both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

QA_TRAINING_STATE_FILE = "qa_training_state.pt"
QA_TRAIN_LOG_FILE = "qa_train_log.jsonl"


@dataclass(frozen=True)
class QATrainConfig:
    steps: int = 1200
    batch_questions: int = 16
    lr: float = 1e-3  # scratch LM; use ~2e-4 for LoRA on a pretrained LM
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    log_every: int = 10
    checkpoint_every: int = 200
    seed: int = 0
    num_threads: int = 1
    qa_preset: str | None = None  # QA_PRESETS name; None: the FAVOR config's name if it is one, else "demo"
    # share of each batch drawn from recombined windows (favor_ops.qa.recombined_clips) instead of the corpus's clips
    recombined_share: float = 0.8
    # a scratch LM as wide as the tokens starts with word embeddings from the text space (qa.text_space_init)
    text_space_init: bool = True
    # each training prompt's AV agreements are scaled by a factor drawn from [av_agreement_scale_min, 1]: the
    # training clips' own audio agrees more with their picture than a new clip's does (the aligned model was trained
    # on them), and a threshold learnt from the training values alone calls many new clips "no"; 1 = off
    av_agreement_scale_min: float = 0.6
    # a preset that reads window channels also reads heard words (favor_ops.qa.heard_words): the words spoken in the
    # training corpus, each scored against every window by the aligned text head
    heard_words: bool = True


def _model_version(spec: str) -> str:
    p = Path(spec)
    if p.is_dir():
        parts = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(p.glob("*.safetensors"))]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return spec


def _lr_at(step: int, cfg: QATrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def prepare_out(model_spec: str, out: str | Path | None) -> Path:
    """The checkpoint directory QA weights go into (a copy of the aligned checkpoint when OUT is elsewhere)."""
    from favor_ops.models.checkpoint import is_favor_checkpoint

    src = Path(model_spec)
    if out is None:
        if not (src.is_dir() and is_favor_checkpoint(src)):
            raise ValueError(f"--model {model_spec} is a preset: give --out DIR for the trained checkpoint")
        return src
    dst = Path(out)
    if src.is_dir() and src.resolve() != dst.resolve():
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, dst / f.name)
    return dst


def train_qa(corpus_dir: str | Path, model_spec: str, out: str | Path | None = None,
             cfg: QATrainConfig = QATrainConfig(), *, resume: bool = False, progress: bool = True) -> dict:
    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.qa.config import QA_PRESETS
    from favor_ops.qa.qa_model import FavorQAModel, qa_dir
    from favor_ops.qa.questions import corpus_questions, spoken_words
    from favor_ops.qa.recombined_clips import label_windows, recombined_clips_or_none
    from favor_ops.qa.text_space_init import can_init_from_text_space, init_from_text_space
    from favor_ops.qa.window_channels import QuestionMatcher, scaled_av_agreement
    from favor_ops.qa.window_features import ClipWindowFeatures
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.training.optimizer_step import optimizer_step

    started = time.perf_counter()
    torch.set_num_threads(cfg.num_threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out_dir = prepare_out(model_spec, out)
    aligned = load_aligned_model(model_spec)
    if not Path(model_spec).is_dir():
        aligned.save(out_dir)  # a preset: the starting weights become part of OUT
    favor_cfg = aligned.favor.config
    window_s = favor_cfg.windows.frames_per_window / favor_cfg.windows.fps
    records = [r for r in read_manifest(corpus_dir) if r.get("kind") != "bad" and not r.get("broken")]
    pairs = corpus_questions(records, window_s=window_s, seed=cfg.seed)
    if not pairs:
        raise ValueError(f"{corpus_dir}: the manifest yields no questions (no clips with both audio and video)")
    features = ClipWindowFeatures(aligned, corpus_dir, Path(out_dir) / "qa_cache", _model_version(model_spec),
                                  records)
    features.warm(pairs, progress=progress)

    preset = cfg.qa_preset or (favor_cfg.name if favor_cfg.name in QA_PRESETS else "demo")
    qa_cfg = QA_PRESETS[preset](window_dim=aligned.embed_dim)
    if cfg.heard_words and qa_cfg.window_channels:
        qa_cfg = dataclasses.replace(qa_cfg, heard_words=spoken_words(records))
    model = FavorQAModel.build(qa_cfg)
    model.question_matcher = QuestionMatcher.from_aligned(aligned)
    text_space_init = cfg.text_space_init and can_init_from_text_space(model)
    if text_space_init:
        init_from_text_space(model, aligned.encode_text)
    recombined = None
    if cfg.recombined_share > 0:
        av_records = [r for r in records if r.get("has_video") and r.get("has_audio")]
        recombined = recombined_clips_or_none(
            [w for r in av_records for w in label_windows(r, features.windows(r["clip_id"]))], window_s,
            mismatched=[w for r in av_records for w in features.windows(r["clip_id"], swapped_audio=True)])
    rng = random.Random(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    qdir = qa_dir(out_dir)
    qdir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = qdir / QA_TRAINING_STATE_FILE, qdir / QA_TRAIN_LOG_FILE
    start_step = 0
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_trainable_state(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
        random.setstate(state["python_rng"])
        if "sample_rng" in state:
            rng.setstate(state["sample_rng"])
        torch.set_rng_state(state["torch_rng"])
    elif log_path.exists():
        log_path.unlink()

    def save(step: int) -> None:
        model.save(out_dir)
        torch.save({"model": model.trainable_state(), "optimizer": optimizer.state_dict(), "step": step,
                    "python_rng": random.getstate(), "sample_rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                    "config": dataclasses.asdict(cfg)}, state_path)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc="QA training", unit="step", file=sys.stderr)
    model.train()
    order: list[int] = []
    last: dict = {}
    for step in range(start_step, cfg.steps):
        if len(order) < cfg.batch_questions:
            order += random.sample(range(len(pairs)), len(pairs))
        batch = [pairs[i] for i in order[:cfg.batch_questions]]
        del order[:cfg.batch_questions]
        prompts, answers = [], []
        for p in batch:
            if recombined is not None and rng.random() < cfg.recombined_share:
                windows, question, answer = recombined.sample(rng)
            else:
                windows, question, answer = (features.windows(p.clip_id, swapped_audio=p.swapped_audio), p.question,
                                             p.answer)
            if cfg.av_agreement_scale_min < 1.0:
                windows = scaled_av_agreement(windows, rng.uniform(cfg.av_agreement_scale_min, 1.0))
            prompts.append(model.prompt(windows, question))
            answers.append(answer)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = model.answer_loss(prompts, answers)
        optimizer_step(loss, optimizer, params, cfg.grad_clip)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            last = {"step": step + 1, "loss": round(float(loss.item()), 5), "lr": _lr_at(step, cfg),
                    "elapsed_s": round(time.perf_counter() - started, 1)}
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(last) + "\n")
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save(step + 1)
    if bar is not None:
        bar.close()
    model.eval()
    save(cfg.steps)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.qtype] = counts.get(p.qtype, 0) + 1
    return {"out": str(out_dir), "start_step": start_step, "steps": cfg.steps, "questions": len(pairs),
            "question_types": counts, "clips": len({p.clip_id for p in pairs}), "qa_preset": preset,
            "recombined_windows": len(recombined.pool) if recombined is not None else 0,
            "text_space_init": text_space_init, "heard_words": len(qa_cfg.heard_words),
            "last": last, "elapsed_s": round(time.perf_counter() - started, 1)}
