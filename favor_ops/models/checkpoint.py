"""Our checkpoint format: a directory with the config and every tensor, loaded back bit-exactly.

    <dir>/favor_config.json     FavorConfig.to_json() (sizes, windows, instruction ids, mask mode, ...)
    <dir>/model.safetensors     the full state dict (encoders included), in the dtype it was saved in
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CONFIG_FILE = "favor_config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_NAME = "favor-checkpoint"
FORMAT_VERSION = 1


def is_favor_checkpoint(directory: str | Path) -> bool:
    d = Path(directory)
    return (d / CONFIG_FILE).is_file() and (d / WEIGHTS_FILE).is_file()


def save_favor_checkpoint(model, directory: str | Path) -> Path:
    """Write config + weights of a FavorModel to `directory` (created if missing)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    (d / CONFIG_FILE).write_text(json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": config},
                                            indent=2, sort_keys=True))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"format": FORMAT_NAME, "version": str(FORMAT_VERSION)})
    return d


def read_favor_config(directory: str | Path):
    from favor_ops.models.config import FavorConfig

    payload = json.loads((Path(directory) / CONFIG_FILE).read_text())
    if payload.get("format") != FORMAT_NAME:
        raise ValueError(f"{directory}: not a {FORMAT_NAME} directory")
    return FavorConfig.from_dict(payload["config"])


def load_favor_checkpoint(directory: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the FavorModel saved in `directory`: same config, same tensors (bit-exact), eval mode.

    The encoders are built from the saved sizes, not re-read from their sources: the checkpoint holds them.
    """
    from safetensors.torch import load_file

    from favor_ops.models.favor_model import FavorModel

    config = read_favor_config(directory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        model = FavorModel(config)
    state = load_file(str(Path(directory) / WEIGHTS_FILE))
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())  # a half-precision save loads back in half precision
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
