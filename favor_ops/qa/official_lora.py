"""The official FAVOR checkpoint's LoRA adapters -> a FavorQAModel with LoRA (the favor-13b path).

The release keeps the LLM's trainable tensors under `llama_model.` (favor_ops.models.official_checkpoint returns them
in `OfficialLoadReport.llm_state_dict`), in peft's saved naming:
    llama_model.base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
Older peft versions also wrote the adapter name (`lora_A.default.weight`); both forms are accepted.
"""

from __future__ import annotations

import torch

from favor_ops.qa.qa_model import FavorQAModel, load_lora_state

OFFICIAL_LLM_PREFIX = "llama_model."


def official_lora_state(llm_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official `llama_model.*lora_*` tensors -> peft's saved naming (other LLM tensors are not adapters)."""
    out = {}
    for key, tensor in llm_state_dict.items():
        if "lora_" not in key:
            continue
        name = key.removeprefix(OFFICIAL_LLM_PREFIX).replace(".default.", ".")
        out[name] = tensor
    return out


def load_official_lora(model: FavorQAModel, llm_state_dict: dict[str, torch.Tensor]) -> int:
    """Load the adapters into `model` (its LoRA config must match: r, target modules); returns tensors loaded."""
    state = official_lora_state(llm_state_dict)
    load_lora_state(model, {k: v.to(model.dtype) for k, v in state.items()})
    return len(state)
