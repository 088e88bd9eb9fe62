"""`load_favor_model(spec, device)`: the one entry point workers use to get a FavorModel.

spec is a preset name ("tiny", "demo", "favor-13b") or a directory written by `FavorModel.save_pretrained`.

A preset is built from its config: encoders whose config names a `source` (hub id or local dir of an InstructBLIP /
Whisper checkpoint) are loaded from it, the rest is randomly initialised with the config's seed (so every worker
building the same preset holds the same weights), and `official_checkpoint`, when set, is loaded last.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from favor_ops.errors import StageError
from favor_ops.models.config import FavorConfig

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
TORCH_INDEX = "pytorch_model.bin.index.json"
TORCH_SINGLE = "pytorch_model.bin"


class ModelLoadError(StageError):
    """A model spec, checkpoint or encoder source cannot be loaded."""

    stage = "model"


def load_favor_model(spec: str, device: str | torch.device = "cpu", *, mask_mode: str | None = None,
                     overrides: dict | None = None):
    """Preset name or checkpoint dir -> FavorModel on `device`, eval mode.

    mask_mode: override the causal Q-Former mask ("causal" / "released").
    overrides: FavorConfig fields to replace before building a preset (e.g. {"official_checkpoint": path}).
    """
    from favor_ops.models.checkpoint import is_favor_checkpoint, load_favor_checkpoint
    from favor_ops.models.presets import PRESETS, preset_config

    if spec in PRESETS:
        config = preset_config(spec)
        if overrides:
            config = config.replace(**overrides)
        model = build_favor_model(config)
    elif Path(spec).is_dir() and is_favor_checkpoint(spec):
        model = load_favor_checkpoint(spec)
    else:
        raise ModelLoadError(spec, f"not a preset ({', '.join(sorted(PRESETS))}) nor a FAVOR checkpoint directory")
    if mask_mode is not None:
        model.set_mask_mode(mask_mode)
    return model.to(device).eval()


def build_favor_model(config: FavorConfig):
    """FavorModel from a config: pretrained encoders from their sources, seeded random init for the rest."""
    from favor_ops.models.favor_model import FavorModel
    from favor_ops.models.official_checkpoint import load_official_checkpoint
    from favor_ops.models.speech_encoder import SpeechEncoder
    from favor_ops.models.visual_encoder import VisualEncoder

    try:
        visual = VisualEncoder.from_pretrained(config.visual.source, config.visual) if config.visual.source else None
        speech = (SpeechEncoder.from_pretrained(config.speech.source, config.speech, config.modality_width)
                  if config.speech.source else None)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelLoadError(config.visual.source or config.speech.source or config.name,
                             f"cannot load encoder: {type(exc).__name__}: {exc}") from exc
    if speech is not None and visual is not None and speech.proj.out_features != visual.cfg.qformer_hidden_size:
        speech.proj = torch.nn.Linear(speech.cfg.d_model, visual.cfg.qformer_hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        model = FavorModel(config, visual=visual, speech=speech)
    if config.official_checkpoint:
        load_official_checkpoint(model, config.official_checkpoint)
    return model


# ---------------------------------------------------------------------- pretrained files (transformers layout)
def _is_local(source: str) -> bool:
    return Path(source).is_dir()


def _fetch(source: str, filename: str) -> Path | None:
    """Path of `filename` in a local dir or a hub repo (downloaded to the HF cache), None if absent."""
    if _is_local(source):
        path = Path(source) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename))
    except EntryNotFoundError:
        return None


def load_prefixed_tensors(source: str, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tensors of a transformers checkpoint (dir or hub id) whose names start with one of `prefixes`.

    Sharded checkpoints: only the shards holding such tensors are read (and, for a hub id, downloaded), so the
    LLM half of an InstructBLIP checkpoint is never touched.
    """
    from safetensors import safe_open

    wanted = lambda key: key.startswith(prefixes)  # noqa: E731
    index = _fetch(source, SAFETENSORS_INDEX)
    if index is not None:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted({shard for key, shard in weight_map.items() if wanted(key)})
        files = [_fetch(source, shard) for shard in shards]
    else:
        single = _fetch(source, SAFETENSORS_SINGLE)
        files = [single] if single is not None else []
    out: dict[str, torch.Tensor] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                if wanted(key):
                    out[key] = f.get_tensor(key)
    if files:
        return out
    # Legacy pickled checkpoints.
    index = _fetch(source, TORCH_INDEX)
    names = (sorted(set(json.loads(index.read_text())["weight_map"].values())) if index is not None else [TORCH_SINGLE])
    for name in names:
        path = _fetch(source, name)
        if path is None:
            continue
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        out.update({k: v for k, v in state.items() if wanted(k)})
    if not out:
        raise OSError(f"{source}: no tensors starting with {prefixes}")
    return out
