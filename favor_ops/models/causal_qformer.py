"""The causal Q-Former: 32 learned queries read one window of synced audio-visual slots.

Per window (L frames, S slots per frame, slot width E = 2D):

    slots (B, L*S, E)  --zero masked halves, LayerNorm, + learned slot positions-->  x (B, L*S, E)
    queries (B, Nq, H) = LayerNorm(learned query tokens)
    each layer l:
        s_l = FrameAttention_l(x)             causal self-attention over the window's frames  (B, L*S, E)
        q   = SelfAttention(q)                 queries attend to each other                    (B, Nq, H)
        q   = CrossAttention(q, s_l)           queries read the frame-attended slots           (B, Nq, H)
        q   = MLP(q)
    -> (B, Nq, H)

As in the released code, every layer's frame attention reads the window's input slots `x` (not the previous
layer's frame attention output), and all blocks are post-LayerNorm BERT blocks.

Frame attention masks (True = may attend), over frame indices f(i) = i // S:
    causal   : f(query) >= f(key)   a slot of frame t sees frames <= t (this project's default)
    released : f(query) <= f(key)   what the published checkpoint was trained with: `torch.triu` over frames,
               so a frame sees itself and every LATER frame of its window, never an earlier one.
    none     : no causal module (the ablation): the frame attention is skipped and the queries' cross-attention
               reads the input slots `x` directly (its weights stay in the model, unused).
Padding (padded audio slots, padded frames, a masked modality) is masked as a key in every attention.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from favor_ops.models.config import CausalQFormerConfig
from favor_ops.models.outputs import CausalQFormerOutput


class Attention(nn.Module):
    """Multi-head attention + output dense + residual + LayerNorm (a post-LN BERT attention block).

    Queries come from `x` (width q_width); keys/values from `context` (width kv_width, = x for self-attention).
    The inner width equals q_width, split over n_head heads.
    """

    def __init__(self, q_width: int, kv_width: int, n_head: int, eps: float, dropout: float):
        super().__init__()
        assert q_width % n_head == 0
        self.n_head = n_head
        self.dropout = dropout
        self.query = nn.Linear(q_width, q_width)
        self.key = nn.Linear(kv_width, q_width)
        self.value = nn.Linear(kv_width, q_width)
        self.dense = nn.Linear(q_width, q_width)
        self.ln = nn.LayerNorm(q_width, eps=eps)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, Tq, C = x.shape  # (B, Tq, C)
        Tk = context.shape[1]
        hs = C // self.n_head
        q = self.query(x).view(B, Tq, self.n_head, hs).transpose(1, 2)  # (B, nh, Tq, hs)
        k = self.key(context).view(B, Tk, self.n_head, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        v = self.value(context).view(B, Tk, self.n_head, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        # mask: (B, 1, Tq|1, Tk) bool, True = may attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, Tq, hs)
        y = y.transpose(1, 2).reshape(B, Tq, C)  # (B, Tq, C)
        return self.ln(x + self.resid_drop(self.dense(y)))


class MLP(nn.Module):
    def __init__(self, width: int, inner: int, eps: float, dropout: float):
        super().__init__()
        self.fc = nn.Linear(width, inner)
        self.proj = nn.Linear(inner, width)
        self.ln = nn.LayerNorm(width, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x + self.drop(self.proj(F.gelu(self.fc(x)))))  # (B, T, C)


class CausalQFormerLayer(nn.Module):
    def __init__(self, cfg: CausalQFormerConfig, encoder_width: int):
        super().__init__()
        H, E, nh = cfg.hidden_size, encoder_width, cfg.num_attention_heads
        eps, p_attn, p_hidden = cfg.layer_norm_eps, cfg.attention_dropout_prob, cfg.hidden_dropout_prob
        self.frame_attn = Attention(E, E, nh, eps, p_attn)  # causal self-attention over the window's slots
        self.self_attn = Attention(H, H, nh, eps, p_attn)  # queries <-> queries
        self.cross_attn = Attention(H, E, nh, eps, p_attn)  # queries -> frame-attended slots
        self.mlp = MLP(H, cfg.intermediate_size, eps, p_hidden)

    def forward(self, queries, slots, frame_mask, key_mask):
        # queries (B, Nq, H); slots (B, L*S, E); frame_mask (B, 1, L*S, L*S) or None (no causal module)
        # key_mask (B, 1, 1, L*S)
        slot_states = slots if frame_mask is None else self.frame_attn(slots, slots, frame_mask)  # (B, L*S, E)
        queries = self.self_attn(queries, queries, None)  # (B, Nq, H)
        queries = self.cross_attn(queries, slot_states, key_mask)  # (B, Nq, H)
        queries = self.mlp(queries)  # (B, Nq, H)
        return queries, slot_states


def frame_attention_mask(n_frames: int, slots_per_frame: int, mode: str, device=None) -> torch.Tensor:
    """(L*S, L*S) bool, True where slot i may attend to slot j (frame-level mask, see module doc)."""
    frame = torch.arange(n_frames * slots_per_frame, device=device) // slots_per_frame  # (L*S,)
    if mode == "causal":
        return frame[:, None] >= frame[None, :]
    if mode == "released":
        return frame[:, None] <= frame[None, :]
    if mode == "none":
        return torch.ones((len(frame), len(frame)), dtype=torch.bool, device=device)
    raise ValueError(f"unknown mask mode {mode!r}")


class CausalQFormer(nn.Module):
    def __init__(self, cfg: CausalQFormerConfig, encoder_width: int):
        super().__init__()
        self.cfg = cfg
        self.encoder_width = encoder_width
        self.mask_mode = cfg.mask_mode
        self.ln_slots = nn.LayerNorm(encoder_width, eps=cfg.slot_layer_norm_eps)
        self.slot_position = nn.Embedding(cfg.max_position_embeddings, encoder_width)  # learned slot positions
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_query_tokens, cfg.hidden_size))
        self.ln_queries = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.hidden_dropout_prob)
        self.layers = nn.ModuleList([CausalQFormerLayer(cfg, encoder_width) for _ in range(cfg.num_hidden_layers)])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.cfg.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.query_tokens, std=std)

    def forward(
        self,
        slots: torch.Tensor,
        visual_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        slots_per_frame: int,
        return_slot_states: bool = False,
    ) -> CausalQFormerOutput:
        """
        Args:
            slots: (B, L*S, 2D) synced slots of B windows.
            visual_mask, audio_mask: (B, L*S) bool, which halves are real.
            slots_per_frame: S.
        """
        B, T, E = slots.shape  # (B, L*S, 2D)
        assert E == self.encoder_width and T % slots_per_frame == 0
        D = E // 2
        # Masked halves are zeroed so nothing behind a mask can reach the output.
        visual = slots[..., :D] * visual_mask[..., None].to(slots.dtype)  # (B, L*S, D)
        audio = slots[..., D:] * audio_mask[..., None].to(slots.dtype)  # (B, L*S, D)
        x = torch.cat([visual, audio], dim=-1)  # (B, L*S, 2D)
        positions = torch.arange(T, device=slots.device)  # (L*S,)
        x = self.drop(self.ln_slots(x) + self.slot_position(positions))  # (B, L*S, 2D)

        valid = visual_mask | audio_mask  # (B, L*S) slot holds something real
        # A window with no real slot (batch padding) reads everything rather than nothing (no NaN);
        # its output is excluded downstream through the window mask.
        key_valid = valid | ~valid.any(dim=1, keepdim=True)  # (B, L*S)
        frames = frame_attention_mask(T // slots_per_frame, slots_per_frame, self.mask_mode, slots.device)
        eye = torch.eye(T, dtype=torch.bool, device=slots.device)  # padding slots attend to themselves: no NaN rows
        frame_mask = ((frames[None] & key_valid[:, None, :]) | eye[None])[:, None]  # (B, 1, L*S, L*S)
        if self.mask_mode == "none":
            frame_mask = None  # no causal module: cross-attention reads x
        key_mask = key_valid[:, None, None, :]  # (B, 1, 1, L*S)

        q = self.drop(self.ln_queries(self.query_tokens.expand(B, -1, -1)))  # (B, Nq, H)
        states = []
        for layer in self.layers:
            q, s = layer(q, x, frame_mask, key_mask)
            if return_slot_states:
                states.append(s)
        return CausalQFormerOutput(query_tokens=q, slot_states=tuple(states))
