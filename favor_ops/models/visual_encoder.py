"""Visual stream: InstructBLIP vision tower + instruction-conditioned InstructBLIP Q-Former, per frame.

    pixel_values (F, 3, H, W) -> vision tower -> (F, 1 + P, Dv) -> Q-Former(queries, instruction) -> (F, Nq, D)

Both are transformers modules (InstructBlipVisionModel, InstructBlipQFormerModel) named as in an InstructBLIP
checkpoint (`vision_model.*`, `qformer.*`, `query_tokens`), so a checkpoint's weights load by name. Loading reads
only those tensors from the checkpoint's safetensors shards: the LLM half of an InstructBLIP checkpoint
(Vicuna-13B) is never materialised.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from favor_ops.models.config import VisualConfig

VISUAL_PREFIXES = ("vision_model.", "qformer.", "query_tokens")


class VisualEncoder(nn.Module):
    def __init__(self, cfg: VisualConfig):
        super().__init__()
        from transformers import InstructBlipQFormerModel, InstructBlipVisionModel

        self.cfg = cfg
        self.vision_model = InstructBlipVisionModel(cfg.vision_hf_config())
        self.qformer = InstructBlipQFormerModel(cfg.qformer_hf_config())
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_query_tokens, cfg.qformer_hidden_size))
        nn.init.normal_(self.query_tokens, std=cfg.initializer_range)
        ids = torch.tensor(cfg.instruction_token_ids, dtype=torch.long)
        self.register_buffer("instruction_ids", ids[None, :], persistent=False)  # (1, T_i)

    def set_instruction_ids(self, token_ids) -> None:
        """Condition the Q-Former on a tokenised instruction (Q-Former vocabulary ids)."""
        ids = torch.as_tensor(list(token_ids), dtype=torch.long, device=self.query_tokens.device)
        self.instruction_ids = ids[None, :]  # (1, T_i)
        self.cfg = dataclasses.replace(self.cfg, instruction_token_ids=tuple(int(t) for t in ids.tolist()))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) normalised frames -> (F, Nq, D) visual query tokens."""
        n_frames = pixel_values.shape[0]
        image_embeds = self.vision_model(pixel_values=pixel_values).last_hidden_state  # (F, 1+P, Dv)
        image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)  # (F, 1+P)
        queries = self.query_tokens.expand(n_frames, -1, -1)  # (F, Nq, D)
        n_query = queries.shape[1]
        input_ids, attention_mask = None, None
        if self.instruction_ids.shape[1] > 0:
            input_ids = self.instruction_ids.expand(n_frames, -1)  # (F, T_i)
            attention_mask = torch.ones((n_frames, n_query + input_ids.shape[1]), dtype=torch.long,
                                        device=image_embeds.device)  # (F, Nq + T_i)
        out = self.qformer(
            input_ids=input_ids,
            attention_mask=attention_mask,
            query_embeds=queries,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
        )
        return out.last_hidden_state[:, :n_query]  # (F, Nq, D)

    # ---- pretrained weights ----
    @classmethod
    def from_pretrained(cls, source: str, cfg: VisualConfig) -> "VisualEncoder":
        """Build from an InstructBLIP checkpoint (local dir or hub id) written by `save_pretrained`.

        Sizes come from the checkpoint's config; `cfg` contributes the rest (instruction, batch sizes). The
        instruction is tokenised with the checkpoint's Q-Former tokenizer when `cfg.instruction` is set and no
        token ids are given.
        """
        from transformers import InstructBlipConfig

        from favor_ops.models.loading import load_prefixed_tensors

        hf_config = InstructBlipConfig.from_pretrained(source)
        cfg = dataclasses.replace(cfg.with_hf_sizes(hf_config), source=source)
        if cfg.instruction and not cfg.instruction_token_ids:
            cfg = dataclasses.replace(cfg, instruction_token_ids=tokenize_instruction(source, cfg.instruction))
        model = cls(cfg)
        tensors = load_prefixed_tensors(source, VISUAL_PREFIXES)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise KeyError(f"InstructBLIP checkpoint {source}: missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
        return model


def tokenize_instruction(source: str, instruction: str) -> tuple[int, ...]:
    """Token ids of the instruction under the InstructBLIP Q-Former tokenizer shipped with `source`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, subfolder="qformer_tokenizer")
    return tuple(int(t) for t in tokenizer(instruction)["input_ids"])
