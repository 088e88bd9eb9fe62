"""FAVOR model: synchronised visual + speech encoders, causal Q-Former over windows, projection to the LLM.

Import the pieces from their modules (kept lazy here so `import favor_ops.models` stays cheap):

    from favor_ops.models.loading import load_favor_model
    from favor_ops.models.config import FavorConfig
    from favor_ops.models.outputs import FavorWindowOutput
"""

from __future__ import annotations

__all__ = ["load_favor_model", "FavorConfig", "FavorModel", "FavorWindowOutput", "preset_config"]


def __getattr__(name: str):
    if name == "load_favor_model":
        from favor_ops.models.loading import load_favor_model

        return load_favor_model
    if name == "FavorConfig":
        from favor_ops.models.config import FavorConfig

        return FavorConfig
    if name == "FavorModel":
        from favor_ops.models.favor_model import FavorModel

        return FavorModel
    if name == "FavorWindowOutput":
        from favor_ops.models.outputs import FavorWindowOutput

        return FavorWindowOutput
    if name == "preset_config":
        from favor_ops.models.presets import preset_config

        return preset_config
    raise AttributeError(name)
