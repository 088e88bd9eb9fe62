"""The AVEB-lite ablations (DESIGN 7): each one is a change to the model config and/or the AlignConfig, trained from
the same starting model with the same budget (steps of every stage, batch, learning rates) and the same seed as the
`full` run, then evaluated on the same corpus.

    full         the base configuration (causal frame mask, the base model's diversity lambda)
    no_sync      audio pooled over the whole clip instead of per-frame synced slots, WindowConfig.audio_sync="clip"
    no_causal    no causal module (the causal Q-Former's frame attention skipped), mask_mode="none"
    released     the published checkpoint's frame mask (a frame sees itself and LATER frames), mask_mode="released"
    div_0 / div_0.01 / div_0.1 / div_1.0   diversity lambda (FavorConfig.diversity_weight) 0 / 0.01 / 0.1 / 1.0

A run whose effective configuration equals an earlier run's (e.g. div_0.01 when the base lambda is 0.01, i.e. the
`full` run) is not trained twice: it is recorded as {"status": "same_as", "same_as": "full", ...} with that run's
metrics.

QA: when the starting checkpoint holds a QA model (or a QA budget is given), every run also trains the QA stage
(favor_ops.training.qa_train) on its own aligned checkpoint with the same QATrainConfig (steps, batch, lr, seed), so
the "what is said while" claims compare QA models that differ only by the ablation.

How a model change reaches training: the base model (a preset or FAVOR checkpoint) is loaded with the changed
config (`load_favor_model(spec, mask_mode=...)`, `config.replace(windows=..audio_sync.., diversity_weight=...)`; the weights are the same
seeded init) and saved as a FAVOR checkpoint in the run dir; that checkpoint is AlignConfig.model of the run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

@dataclass(frozen=True)
class Ablation:
    name: str
    description: str
    model_changes: dict = field(default_factory=dict)  # "mask_mode", "audio_sync", "diversity_weight"
    align_changes: dict = field(default_factory=dict)  # AlignConfig fields
    missing: str | None = None  # why it cannot run (a model switch that does not exist)

    @property
    def available(self) -> bool:
        return self.missing is None


ABLATIONS: tuple[Ablation, ...] = (
    Ablation("full", "base configuration: causal frame mask, per-frame synced audio"),
    Ablation("no_sync", "audio pooled over the whole clip instead of per-frame slots",
             model_changes={"audio_sync": "clip"}),
    Ablation("no_causal", "no causal module (no frame attention in the causal Q-Former)",
             model_changes={"mask_mode": "none"}),
    Ablation("released", "released frame mask (a frame sees itself and later frames)",
             model_changes={"mask_mode": "released"}),
    Ablation("div_0", "diversity lambda 0", model_changes={"diversity_weight": 0.0}),
    Ablation("div_0.01", "diversity lambda 0.01", model_changes={"diversity_weight": 0.01}),
    Ablation("div_0.1", "diversity lambda 0.1", model_changes={"diversity_weight": 0.1}),
    Ablation("div_1.0", "diversity lambda 1.0", model_changes={"diversity_weight": 1.0}),
)
ABLATION_NAMES = tuple(a.name for a in ABLATIONS)
MODEL_CHANGE_KEYS = ("mask_mode", "audio_sync", "diversity_weight")


def get_ablations(names=None) -> list[Ablation]:
    """The named ablations in list order (all when names is None); ValueError on an unknown name."""
    if not names:
        return list(ABLATIONS)
    unknown = sorted(set(names) - set(ABLATION_NAMES))
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; known: {', '.join(ABLATION_NAMES)}")
    return [a for a in ABLATIONS if a.name in set(names)]


def load_base_align_config(model_spec: str, **overrides):
    """The AlignConfig the ablations share: `<ckpt>/align_config.json` when `model_spec` is a trained aligned
    checkpoint (its budget, seed and starting model), else AlignConfig(model=model_spec); then `overrides`."""
    from favor_ops.training.align import TRAIN_CONFIG_FILE, AlignConfig

    path = Path(model_spec) / TRAIN_CONFIG_FILE
    base = AlignConfig(model=str(model_spec))
    if path.is_file():
        saved = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(AlignConfig)}
        base = dataclasses.replace(AlignConfig(), **{k: v for k, v in saved.items() if k in known})
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def load_base_qa_config(model_spec: str, steps: int | None = None):
    """The QATrainConfig the ablations share: the one `<ckpt>/qa/qa_training_state.pt` was trained with when
    `model_spec` holds a QA model, else the defaults; `steps` overrides. None (no QA stage) when steps == 0, or when
    steps is None and the checkpoint holds no QA model."""
    import torch

    from favor_ops.qa.qa_model import qa_dir
    from favor_ops.training.qa_train import QA_TRAINING_STATE_FILE, QATrainConfig

    state_path = qa_dir(model_spec) / QA_TRAINING_STATE_FILE if Path(model_spec).is_dir() else None
    saved = None
    if state_path is not None and state_path.is_file():
        saved = torch.load(state_path, weights_only=False, map_location="cpu").get("config")
    if steps == 0 or (steps is None and saved is None):
        return None
    known = {f.name for f in dataclasses.fields(QATrainConfig)}
    cfg = QATrainConfig(**{k: v for k, v in (saved or {}).items() if k in known})
    return dataclasses.replace(cfg, steps=steps) if steps is not None else cfg


def effective_model_config(base_model: str, ablation: Ablation) -> dict:
    """The model settings an ablation trains with (base values where it changes nothing)."""
    from favor_ops.models.checkpoint import is_favor_checkpoint, read_favor_config
    from favor_ops.models.presets import PRESETS, preset_config

    if base_model in PRESETS:
        cfg = preset_config(base_model)
    elif Path(base_model).is_dir() and is_favor_checkpoint(base_model):
        cfg = read_favor_config(base_model)
    else:
        raise ValueError(f"ablations need a preset or FAVOR checkpoint to start from, got {base_model!r}")
    current = {"mask_mode": cfg.causal_qformer.mask_mode, "audio_sync": cfg.windows.audio_sync,
               "diversity_weight": float(cfg.diversity_weight)}
    unknown = set(ablation.model_changes) - set(MODEL_CHANGE_KEYS)
    if unknown:
        raise ValueError(f"ablation {ablation.name}: unsupported model changes {sorted(unknown)}")
    return {**current, **ablation.model_changes}


def build_base_model(base_model: str, settings: dict, out_dir: Path) -> str:
    """Save `base_model` with `settings` (mask_mode, diversity_weight) as a FAVOR checkpoint; returns its path."""
    from favor_ops.models.loading import load_favor_model

    favor = load_favor_model(base_model, mask_mode=settings["mask_mode"])
    windows = dataclasses.replace(favor.config.windows, audio_sync=settings.get("audio_sync", "frame"))
    favor.config = favor.config.replace(windows=windows, diversity_weight=float(settings["diversity_weight"]))
    favor.save_pretrained(out_dir)
    return str(out_dir)


def run_ablations(train_corpus: str | Path, out_dir: str | Path, base_cfg, evaluate: Callable[[str], dict],
                  names=None, progress: bool = False, keep_cache: bool = False, log=None, qa_cfg=None) -> dict:
    """Train and evaluate each ablation under out_dir/<name>/ (ckpt/, base_model/).

    evaluate(checkpoint_dir) -> a run's metrics (aveb.evaluate_model). Returns {"train_corpus", "budget",
    "runs": {name: {"description", "status": ok | same_as | unavailable | failed, "settings", "align_changes",
    "tasks", ... the evaluated run's keys, "train": train_align summary, "train_qa": train_qa summary}}}. With
    qa_cfg (a QATrainConfig) each run's checkpoint also gets a QA model trained with it before the evaluation. A run
    that raises is recorded as {"status": "failed", "error": ...} and the others still run.
    """
    from favor_ops.training.align import train_align
    from favor_ops.training.qa_train import train_qa

    out = Path(out_dir)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    runs: dict[str, dict] = {}
    done: dict[str, str] = {}  # configuration signature -> run name
    for ab in get_ablations(names):
        entry: dict = {"description": ab.description}
        if not ab.available:
            runs[ab.name] = {**entry, "status": "unavailable", "missing": ab.missing}
            log(f"ablation {ab.name}: unavailable ({ab.missing.split(':')[0]})")
            continue
        settings = effective_model_config(base_cfg.model, ab)
        cfg = dataclasses.replace(base_cfg, **ab.align_changes, progress=progress, cache_dir=None)
        entry.update(settings=settings, align_changes=dict(ab.align_changes))
        signature = json.dumps({"settings": settings, "align": dataclasses.asdict(cfg),
                                "qa": dataclasses.asdict(qa_cfg) if qa_cfg else None}, sort_keys=True)
        if signature in done:
            same = runs[done[signature]]
            runs[ab.name] = {**same, **entry, "status": "same_as", "same_as": done[signature]}
            log(f"ablation {ab.name}: same configuration as {done[signature]}, not trained again")
            continue
        run_dir = out / ab.name
        t0 = time.time()
        model_spec = base_cfg.model
        if ab.model_changes:
            model_spec = build_base_model(base_cfg.model, settings, run_dir / "base_model")
        cfg = dataclasses.replace(cfg, model=model_spec)
        qa_steps = f" + {qa_cfg.steps} QA steps" if qa_cfg else ""
        log(f"ablation {ab.name}: training ({cfg.visual_steps}+{cfg.speech_steps}+{cfg.steps} steps{qa_steps}, "
            f"seed {cfg.seed})")
        qa_summary = None
        try:
            summary = train_align(train_corpus, run_dir / "ckpt", cfg)
            if qa_cfg is not None:
                qa_summary = train_qa(train_corpus, str(run_dir / "ckpt"), None, qa_cfg, progress=progress)
            metrics = evaluate(str(run_dir / "ckpt"))
        except Exception as exc:  # noqa: BLE001 - one broken run must not lose the others; it is reported
            runs[ab.name] = {**entry, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            log(f"ablation {ab.name}: failed: {type(exc).__name__}: {exc}")
            continue
        finally:
            if not keep_cache:
                shutil.rmtree(run_dir / "ckpt" / "window_cache", ignore_errors=True)
                shutil.rmtree(run_dir / "ckpt" / "qa_cache", ignore_errors=True)
        runs[ab.name] = {**entry, "status": "ok", **metrics, "train": summary,
                         **({"train_qa": qa_summary} if qa_summary else {}), "elapsed_s": round(time.time() - t0, 2)}
        done[signature] = ab.name
    budget_keys = ("model", "steps", "batch_windows", "lr", "head_lr", "visual_steps", "speech_steps", "seed",
                   "train_frame_attention", "max_files")
    budget = {k: getattr(base_cfg, k) for k in budget_keys}
    if qa_cfg is not None:
        budget.update(qa_steps=qa_cfg.steps, qa_batch_questions=qa_cfg.batch_questions, qa_lr=qa_cfg.lr,
                      qa_seed=qa_cfg.seed)
    return {"train_corpus": str(Path(train_corpus).resolve()), "budget": budget, "runs": runs}
