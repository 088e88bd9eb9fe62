"""Load the released FAVOR checkpoint (github BriansIDP/AudioVisualLLM, `pytorch_model_*.pt`) into FavorModel.

The release saves only the trainable parameters of `OpenLLAMAPEFTModel` (model/openllama.py) with
`early_align=true, alignmode=2, speech_qformer=false, causal_attention=true` (inference.py):

    speech_pre_qformer_proj.{weight,bias}           Linear(whisper d_model -> 768)    -> speech.proj
    ln_video.{weight,bias}                          LayerNorm(1536) on joined slots   -> causal_qformer.ln_slots
    video_frame_position_embedding.weight           Embedding(4096, 1536)             -> causal_qformer.slot_position
    video_query_tokens                              (1, 32, 768)                      -> causal_qformer.query_tokens
    video_Qformer.bert.embeddings.LayerNorm.*       LayerNorm(768) on the queries     -> causal_qformer.ln_queries
    video_Qformer.bert.encoder.layer.{i}.           (model/Qformer.py BertLayer, cross_attention_freq=1)
        encoder_causal_attention.self.{query,key,value}, .output.{dense,LayerNorm}    -> layers.{i}.frame_attn
        attention.self.{query,key,value}, attention.output.{dense,LayerNorm}          -> layers.{i}.self_attn
        crossattention.self.{query,key,value}, crossattention.output.{dense,LayerNorm} -> layers.{i}.cross_attn
        intermediate_query.dense, output_query.{dense,LayerNorm}                      -> layers.{i}.mlp.{fc,proj,ln}
    llama_proj.{weight,bias}                        Linear(768 -> 5120)               -> llm_proj
    llama_model.*lora_*                             LoRA (r 32) of Vicuna's q/k/v/o    -> returned for the LLM side

In alignmode 2 `joint_Qformer`, `joint_query_tokens`, `llama_proj_joint`, `ln_joint`,
`joint_frame_position_embedding` (and `speech_Qformer`, `speech_query_tokens`, `llama_proj_speech`, `ln_speech`)
are the same modules under other names; a checkpoint saved through DeepSpeed ZeRO-3 repeats them under those
names. They are accepted when they equal the primary copy. The frozen EVA-ViT / InstructBLIP Q-Former and Whisper
are not in the file: they come from their own checkpoints (VisualConfig.source, SpeechConfig.source).

The released causal mask is `torch.triu` over frames (a frame sees itself and later frames): load the checkpoint
with `mask_mode="released"` to reproduce it, or keep "causal" to fine-tune towards causal attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from favor_ops.errors import StageError

LLM_PREFIX = "llama_model."
# Other names the release gives the same modules (alignmode 2, speech_qformer false).
ALIASES = {
    "joint_Qformer.": "video_Qformer.",
    "speech_Qformer.": "video_Qformer.",
    "joint_query_tokens": "video_query_tokens",
    "speech_query_tokens": "video_query_tokens",
    "llama_proj_joint.": "llama_proj.",
    "llama_proj_speech.": "llama_proj.",
    "ln_joint.": "ln_video.",
    "ln_speech.": "ln_video.",
    "joint_frame_position_embedding.": "video_frame_position_embedding.",
}
# Buffers, not weights: present in ZeRO-3 saves, nothing to load.
IGNORED_SUFFIXES = ("embeddings.position_ids",)

_ATTENTION_PARTS = {
    "self.query": "query",
    "self.key": "key",
    "self.value": "value",
    "output.dense": "dense",
    "output.LayerNorm": "ln",
}
_BLOCKS = {
    "encoder_causal_attention": "frame_attn",
    "attention": "self_attn",
    "crossattention": "cross_attn",
}
_MLP_PARTS = {
    "intermediate_query.dense": "mlp.fc",
    "output_query.dense": "mlp.proj",
    "output_query.LayerNorm": "mlp.ln",
}


class OfficialCheckpointError(StageError):
    """The official checkpoint does not match the model (missing, unexpected or mis-shaped tensors)."""

    stage = "model"


@dataclass
class OfficialLoadReport:
    loaded: list[str] = field(default_factory=list)  # our parameter names that were set
    aliases_checked: list[str] = field(default_factory=list)  # official alias keys verified equal to the primary
    ignored: list[str] = field(default_factory=list)  # buffers skipped
    llm_state_dict: dict[str, torch.Tensor] = field(default_factory=dict)  # LoRA tensors for the LLM side


def official_key_map(num_layers: int) -> dict[str, str]:
    """Official parameter name -> our parameter name, for a causal Q-Former of `num_layers` layers."""
    mapping = {
        "speech_pre_qformer_proj.weight": "speech.proj.weight",
        "speech_pre_qformer_proj.bias": "speech.proj.bias",
        "ln_video.weight": "causal_qformer.ln_slots.weight",
        "ln_video.bias": "causal_qformer.ln_slots.bias",
        "video_frame_position_embedding.weight": "causal_qformer.slot_position.weight",
        "video_query_tokens": "causal_qformer.query_tokens",
        "video_Qformer.bert.embeddings.LayerNorm.weight": "causal_qformer.ln_queries.weight",
        "video_Qformer.bert.embeddings.LayerNorm.bias": "causal_qformer.ln_queries.bias",
        "llama_proj.weight": "llm_proj.weight",
        "llama_proj.bias": "llm_proj.bias",
    }
    for i in range(num_layers):
        theirs, ours = f"video_Qformer.bert.encoder.layer.{i}.", f"causal_qformer.layers.{i}."
        for block, our_block in _BLOCKS.items():
            for part, our_part in _ATTENTION_PARTS.items():
                for tensor in ("weight", "bias"):
                    mapping[f"{theirs}{block}.{part}.{tensor}"] = f"{ours}{our_block}.{our_part}.{tensor}"
        for part, our_part in _MLP_PARTS.items():
            for tensor in ("weight", "bias"):
                mapping[f"{theirs}{part}.{tensor}"] = f"{ours}{our_part}.{tensor}"
    return mapping


def _primary_name(key: str) -> str:
    for alias, primary in ALIASES.items():
        if key.startswith(alias):
            return primary + key[len(alias):]
    return key


def convert_official_state_dict(
    official: dict[str, torch.Tensor], model
) -> tuple[dict[str, torch.Tensor], OfficialLoadReport]:
    """Official state dict -> (our state-dict entries, report). Raises OfficialCheckpointError on any mismatch."""
    mapping = official_key_map(model.config.causal_qformer.num_hidden_layers)
    ours_expected = model.state_dict()
    report = OfficialLoadReport()
    converted: dict[str, torch.Tensor] = {}
    unexpected, mis_shaped = [], []
    primaries = {k: v for k, v in official.items() if _primary_name(k) == k}
    for key, tensor in official.items():
        if key.startswith(LLM_PREFIX):
            report.llm_state_dict[key] = tensor
            continue
        if key.endswith(IGNORED_SUFFIXES):
            report.ignored.append(key)
            continue
        primary = _primary_name(key)
        if primary != key:  # an alias: must repeat the primary copy (or stand in for it when that is absent)
            if primary in primaries:
                if not torch.equal(primaries[primary], tensor):
                    raise OfficialCheckpointError(key, f"alias differs from {primary}")
                report.aliases_checked.append(key)
                continue
            primaries[primary] = tensor
        ours = mapping.get(primary)
        if ours is None:
            unexpected.append(key)
            continue
        if tuple(ours_expected[ours].shape) != tuple(tensor.shape):
            mis_shaped.append(f"{key} {tuple(tensor.shape)} vs {ours} {tuple(ours_expected[ours].shape)}")
            continue
        converted[ours] = tensor
    missing = sorted(set(mapping.values()) - set(converted))
    if unexpected or mis_shaped or missing:
        reason = (f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}; "
                  f"mis-shaped {mis_shaped[:2]}; missing {missing[:4]}{'...' if len(missing) > 4 else ''}")
        raise OfficialCheckpointError("<official checkpoint>", reason)
    report.loaded = sorted(converted)
    return converted, report


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """torch.load the released .pt (a flat state dict, possibly under "model"/"state_dict")."""
    payload = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "module"):
        if isinstance(payload, dict) and key in payload and isinstance(payload[key], dict):
            payload = payload[key]
    if not isinstance(payload, dict):
        raise OfficialCheckpointError(str(path), "not a state dict")
    return payload


def load_official_checkpoint(model, source: str | Path | dict[str, torch.Tensor]) -> OfficialLoadReport:
    """Copy the official checkpoint's tensors into `model` (cast to the model's dtype); every FAVOR tensor must
    map and be present. Returns a report whose `llm_state_dict` holds the LoRA tensors for the LLM side."""
    official = source if isinstance(source, dict) else read_official_checkpoint(source)
    converted, report = convert_official_state_dict(official, model)
    params = model.state_dict()
    with torch.no_grad():
        for ours, tensor in converted.items():
            params[ours].copy_(tensor.to(params[ours].dtype))
    return report
