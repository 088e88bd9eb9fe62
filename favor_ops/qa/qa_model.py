"""FavorQAModel: stored window tokens -> projection -> a causal LM (optionally with peft LoRA) -> answers.

    window tokens (W, Nq, D) --projection--> (W, Nq, H_llm) ---+
    prompt text ids ------------------------ embed_tokens -----+--> inputs_embeds (B, L, H_llm) --> LM --> answer

With window channels (QAConfig.window_channels, the demo preset) each window's tokens also get channels(f_w) (its
question match and AV agreement, favor_ops.qa.window_channels) and each question token question_channels(g) (where
its word is seen or heard, favor_ops.qa.question_grounding). With heard words (QAConfig.heard_words, set by QA
training) each window's tokens also get the embedding of the answer word it sounds like (favor_ops.qa.heard_words).
When the windows carry per-frame vectors (an aligned checkpoint with frame heads), the question's grounding is read
per frame and each question word's tokens also get the embedding of the word heard during its frames, times the same
heard-word scale (favor_ops.qa.question_grounding, "frame grounding").

Checkpoint: `<ckpt>/qa/` next to the FAVOR (aligned) checkpoint files:
    qa_config.json         {"format": "favor-qa", "version": 1, "config": QAConfig}
    qa_model.safetensors   projection [+ channels, question_channels, heard_word_scale] + the scratch LM's weights,
                           or projection + LoRA adapters (lm_source models)
A QA model with window channels scores questions with the text head of the aligned checkpoint it sits in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from favor_ops.qa.config import QAConfig
from favor_ops.qa.heard_words import heard_word_phrases, heard_word_weights
from favor_ops.qa.prompt import PromptWindow, joined_spans, prompt_pieces
from favor_ops.qa.question_grounding import N_GROUNDING_FEATURES, GroundedQuestion
from favor_ops.qa.tokenizer import load_tokenizer
from favor_ops.qa.window_channels import N_CHANNEL_FEATURES, QuestionMatcher, WindowChannelError, channel_features

QA_SUBDIR = "qa"
QA_CONFIG_FILE = "qa_config.json"
QA_WEIGHTS_FILE = "qa_model.safetensors"
QA_FORMAT = "favor-qa"
QA_FORMAT_VERSION = 1
IGNORE_INDEX = -100


class QAModelError(ValueError):
    pass


def qa_dir(checkpoint: str | Path) -> Path:
    return Path(checkpoint) / QA_SUBDIR


def has_qa_model(checkpoint: str | Path) -> bool:
    d = qa_dir(checkpoint)
    return (d / QA_CONFIG_FILE).is_file() and (d / QA_WEIGHTS_FILE).is_file()


@dataclass
class PromptBatch:
    inputs_embeds: torch.Tensor  # (B, L, H_llm), left-padded
    attention_mask: torch.Tensor  # (B, L) 1 = real
    position_ids: torch.Tensor  # (B, L) 0.. over the real positions
    labels: torch.Tensor | None  # (B, L) answer token ids, IGNORE_INDEX elsewhere


def _build_lm(cfg: QAConfig, tokenizer, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if cfg.lm_source:
        lm = AutoModelForCausalLM.from_pretrained(cfg.lm_source, dtype=dtype, local_files_only=True)
    else:
        s = cfg.scratch
        lm_cfg = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
            num_hidden_layers=s.num_hidden_layers, num_attention_heads=s.num_attention_heads,
            num_key_value_heads=s.num_attention_heads, max_position_embeddings=s.max_position_embeddings,
            tie_word_embeddings=s.tie_word_embeddings, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
        lm = LlamaForCausalLM(lm_cfg).to(dtype)
    if cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
        lm = get_peft_model(lm, lora)
    return lm


class FavorQAModel(nn.Module):
    def __init__(self, cfg: QAConfig, lm: nn.Module, tokenizer):
        super().__init__()
        self.cfg = cfg
        self.lm = lm
        self.tokenizer = tokenizer
        self.projection = nn.Linear(cfg.window_dim, self.base_lm.config.hidden_size)  # D -> H_llm (FAVOR llm_proj)
        self.channels: nn.Linear | None = None  # N_CHANNEL_FEATURES -> H_llm, added to every token of a window
        self.question_channels: nn.Linear | None = None  # N_GROUNDING_FEATURES -> H_llm, on each question token
        if cfg.window_channels:
            H = self.base_lm.config.hidden_size
            self.channels = nn.Linear(N_CHANNEL_FEATURES, H)
            self.question_channels = nn.Linear(N_GROUNDING_FEATURES, H)
            for layer in (self.channels, self.question_channels):
                nn.init.normal_(layer.weight, std=0.1)
                nn.init.zeros_(layer.bias)
        # heard words: the scale of the word embedding added to each window's tokens (favor_ops.qa.heard_words)
        self.heard_word_scale: nn.Parameter | None = nn.Parameter(torch.ones(())) if cfg.heard_words else None
        self.question_matcher: QuestionMatcher | None = None  # scores windows against questions (window channels)
        self._ids_cache: dict[str, list[int]] = {}
        self._offsets_cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, cfg: QAConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> "FavorQAModel":
        tokenizer = load_tokenizer(cfg.tokenizer)
        model = cls(cfg, _build_lm(cfg, tokenizer, dtype), tokenizer)
        return model.to(device=device, dtype=dtype)

    @property
    def base_lm(self) -> nn.Module:
        """The transformers model under the peft wrapper (LoRA layers are injected into it)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    @property
    def device(self) -> torch.device:
        return self.projection.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.projection.weight.dtype

    def load_favor_projection(self, llm_proj: nn.Linear) -> None:
        """Start from a FAVOR model's llm_proj (H -> H_llm): the published projection when the stored tokens are
        the Q-Former's own outputs (identity retrieval heads)."""
        if tuple(llm_proj.weight.shape) != tuple(self.projection.weight.shape):
            raise QAModelError(f"llm_proj is {tuple(llm_proj.weight.shape)}, the QA projection "
                               f"{tuple(self.projection.weight.shape)}")
        with torch.no_grad():
            self.projection.weight.copy_(llm_proj.weight)
            self.projection.bias.copy_(llm_proj.bias)

    # ---------------------------------------------------------------- prompts -> embeddings
    def prompt(self, windows: list[PromptWindow], question: str) -> list[str | PromptWindow | GroundedQuestion]:
        """The prompt pieces of one question over these windows; when this model reads window channels, the windows
        scored against the question and the question's words grounded in the windows."""
        if self.channels is not None:
            if self.question_matcher is None:
                raise QAModelError("this QA model reads window channels and has no question matcher (load it with "
                                   "load_qa_model from its aligned checkpoint, or set model.question_matcher)")
            grounded = self.question_matcher.ground(windows, question, self.cfg.question_match_temperature,
                                                    frame_temperature=self.cfg.frame_temperature,
                                                    heard_words=self.cfg.heard_words)
            return prompt_pieces(self.question_matcher.annotate(windows, question), question, grounded)
        return prompt_pieces(windows, question)

    def text_ids(self, text: str) -> list[int]:
        ids = self._ids_cache.get(text)
        if ids is None:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(self._ids_cache) < 100_000:
                self._ids_cache[text] = ids
        return ids

    def text_ids_and_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of `text` and each token's (start, end) character offsets."""
        found = self._offsets_cache.get(text)
        if found is None:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            found = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
            if len(self._offsets_cache) < 100_000:
                self._offsets_cache[text] = found
        return found

    def embed_prompts(self, prompts: list[list[str | PromptWindow]], answers: list[str] | None = None
                      ) -> PromptBatch:
        """Prompts (prompt.prompt_pieces) [+ answers for training] -> one left-padded batch."""
        embed = self.base_lm.get_input_embeddings()
        dev, dtype = self.device, self.dtype
        tok = self.tokenizer
        rows, label_rows = [], []
        words = self.heard_word_matrix() if self.heard_word_scale is not None else None  # (K, H_llm), once a batch
        for i, pieces in enumerate(prompts):
            parts, labels = [embed(torch.tensor([tok.bos_token_id], device=dev))], [IGNORE_INDEX]
            window_add = self._window_add([p for p in pieces if isinstance(p, PromptWindow)], words)  # (W, H_llm)
            n_window = 0
            for piece in pieces:
                if isinstance(piece, str):
                    ids = self.text_ids(piece)
                    if ids:
                        parts.append(embed(torch.tensor(ids, device=dev)))
                        labels += [IGNORE_INDEX] * len(ids)
                elif isinstance(piece, GroundedQuestion):
                    ids, offsets = self.text_ids_and_offsets(piece.text)
                    if ids:
                        if self.question_channels is None:
                            raise QAModelError("a grounded question for a QA model without window channels")
                        feats = torch.as_tensor(piece.token_features(offsets), device=dev, dtype=dtype)  # (n, 3)
                        question = embed(torch.tensor(ids, device=dev)) + self.question_channels(feats)  # (n, H_llm)
                        heard = piece.token_heard(offsets)  # (n, K) with frame grounding, else None
                        if heard is not None and words is not None:
                            question = question + self.heard_word_scale * (
                                torch.as_tensor(heard, device=dev, dtype=dtype) @ words)
                        parts.append(question)
                        labels += [IGNORE_INDEX] * len(ids)
                else:
                    tokens = torch.as_tensor(np.asarray(piece.tokens), device=dev, dtype=dtype)  # (Nq, D)
                    projected = self.projection(tokens)  # (Nq, H_llm)
                    if window_add is not None:
                        projected = projected + window_add[n_window]
                    n_window += 1
                    parts.append(projected)
                    labels += [IGNORE_INDEX] * len(tokens)
            if answers is not None:
                ids = self.text_ids(answers[i].strip()) + [tok.eos_token_id]
                parts.append(embed(torch.tensor(ids, device=dev)))
                labels += ids
            rows.append(torch.cat(parts).to(dtype))  # (L_i, H_llm)
            label_rows.append(labels)
        B, L, H = len(rows), max(len(r) for r in rows), rows[0].shape[-1]
        inputs = torch.zeros((B, L, H), device=dev, dtype=dtype)
        mask = torch.zeros((B, L), device=dev, dtype=torch.long)
        labels_t = torch.full((B, L), IGNORE_INDEX, device=dev, dtype=torch.long)
        for i, (row, lab) in enumerate(zip(rows, label_rows)):
            inputs[i, L - len(row):] = row
            mask[i, L - len(row):] = 1
            labels_t[i, L - len(row):] = torch.tensor(lab, device=dev)
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return PromptBatch(inputs, mask, position_ids, labels_t if answers is not None else None)

    def _window_add(self, windows: list[PromptWindow], words: torch.Tensor | None = None) -> torch.Tensor | None:
        """(W, H_llm) vectors added to each window's projected tokens: its channels [+ its heard word; `words` is
        heard_word_matrix(), computed once per batch]; None without window channels."""
        if self.channels is None or not windows:
            return None
        try:
            feats = channel_features(windows, self.cfg.question_match_temperature)  # (W, N_CHANNEL_FEATURES)
        except WindowChannelError as e:
            raise QAModelError(str(e)) from None
        add = self.channels(torch.as_tensor(feats, device=self.device, dtype=self.dtype))
        if self.heard_word_scale is not None:
            add = add + self.heard_word_scale * self.heard_word_embeddings(windows, words)
        return add

    def heard_word_matrix(self) -> torch.Tensor:
        """(K, H_llm): the input embedding of each of cfg.heard_words, the mean over its tokens (one bag lookup: the
        embedding's gradient is dense, one per lookup)."""
        ids = [self.text_ids(w) for w in self.cfg.heard_words]
        starts = np.cumsum([0] + [len(word_ids) for word_ids in ids[:-1]])  # (K,) where each word's bag begins
        return F.embedding_bag(torch.tensor([i for word_ids in ids for i in word_ids], device=self.device),
                               self.base_lm.get_input_embeddings().weight,
                               torch.as_tensor(starts, device=self.device), mode="mean")

    def heard_word_embeddings(self, windows: list[PromptWindow], words: torch.Tensor | None = None) -> torch.Tensor:
        """(W, H_llm): each window's softmax weights over cfg.heard_words (favor_ops.qa.heard_words) times the words'
        input embeddings (heard_word_matrix(), computed here unless given)."""
        if self.question_matcher is None:
            raise QAModelError("this QA model reads heard words and has no question matcher (load it with "
                               "load_qa_model from its aligned checkpoint, or set model.question_matcher)")
        vectors = self.question_matcher.vectors(heard_word_phrases(self.cfg.heard_words))  # (K, E)
        weights = heard_word_weights([w.tokens for w in windows], vectors, self.cfg.heard_word_temperature)  # (W, K)
        if words is None:
            words = self.heard_word_matrix()  # (K, H_llm)
        return torch.as_tensor(weights, device=self.device, dtype=self.dtype) @ words

    # ---------------------------------------------------------------- training
    def answer_loss(self, prompts: list[list[str | PromptWindow]], answers: list[str]) -> torch.Tensor:
        """Cross-entropy on the answer tokens (and the closing EOS) only; logits only where there is a label."""
        batch = self.embed_prompts(prompts, answers)
        base = self.base_lm
        hidden = base.model(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                            position_ids=batch.position_ids).last_hidden_state  # (B, L, H_llm)
        targets = batch.labels[:, 1:]  # position t predicts token t + 1
        selected = targets != IGNORE_INDEX
        logits = base.lm_head(hidden[:, :-1][selected])  # (n_answer_tokens, vocab)
        return F.cross_entropy(logits.float(), targets[selected])

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(self, prompts: list[list[str | PromptWindow]], *, num_beams: int | None = None,
                 max_new_tokens: int | None = None) -> list[str]:
        """Answers of a batch of prompts (greedy when num_beams == 1)."""
        gen = self.cfg.generation
        batch = self.embed_prompts(prompts)
        tok = self.tokenizer
        out = self.lm.generate(
            inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens or gen.max_new_tokens, num_beams=num_beams or gen.num_beams,
            do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
        )
        return [joined_spans(tok.decode(row, skip_special_tokens=True).strip()) for row in out]

    # ---------------------------------------------------------------- persistence
    def save(self, checkpoint: str | Path) -> Path:
        from safetensors.torch import save_file

        d = qa_dir(checkpoint)
        d.mkdir(parents=True, exist_ok=True)
        (d / QA_CONFIG_FILE).write_text(json.dumps(
            {"format": QA_FORMAT, "version": QA_FORMAT_VERSION, "config": self.cfg.to_dict()}, indent=2))
        save_file(self.trainable_state(), str(d / QA_WEIGHTS_FILE), metadata={"format": QA_FORMAT})
        return d

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What a QA checkpoint holds: the projection, plus the scratch LM or the LoRA adapters."""
        state = {f"projection.{k}": v for k, v in self.projection.state_dict().items()}
        if self.channels is not None:
            state.update({f"channels.{k}": v for k, v in self.channels.state_dict().items()})
            state.update({f"question_channels.{k}": v for k, v in self.question_channels.state_dict().items()})
        if self.heard_word_scale is not None:
            state["heard_word_scale"] = self.heard_word_scale
        if self.cfg.lm_source is None:
            lm_state = self.base_lm.state_dict()
            if self.base_lm.config.tie_word_embeddings:
                lm_state.pop("lm_head.weight", None)  # the same tensor as embed_tokens
            state.update({f"lm.{k}": v for k, v in lm_state.items()})
        elif self.cfg.lora.enabled:
            from peft import get_peft_model_state_dict

            state.update({f"lora.{k}": v for k, v in get_peft_model_state_dict(self.lm).items()})
        return {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        proj = {k.removeprefix("projection."): v for k, v in state.items() if k.startswith("projection.")}
        self.projection.load_state_dict(proj, strict=True)
        channels = {k.removeprefix("channels."): v for k, v in state.items() if k.startswith("channels.")}
        if (self.channels is not None) != bool(channels):
            raise QAModelError("QA checkpoint and config disagree on window channels")
        if self.channels is not None:
            self.channels.load_state_dict(channels, strict=True)
            question = {k.removeprefix("question_channels."): v for k, v in state.items()
                        if k.startswith("question_channels.")}
            saved = question.get("weight")
            if saved is not None and saved.shape[1] < N_GROUNDING_FEATURES:  # saved before the later features
                question["weight"] = torch.nn.functional.pad(saved, (0, N_GROUNDING_FEATURES - saved.shape[1]))
            self.question_channels.load_state_dict(question, strict=True)
        if (self.heard_word_scale is not None) != ("heard_word_scale" in state):
            raise QAModelError("QA checkpoint and config disagree on heard words")
        if self.heard_word_scale is not None:
            with torch.no_grad():
                self.heard_word_scale.copy_(state["heard_word_scale"])
        lm_state = {k.removeprefix("lm."): v for k, v in state.items() if k.startswith("lm.")}
        if lm_state:
            missing, unexpected = self.base_lm.load_state_dict(lm_state, strict=False)
            missing = [k for k in missing if not (k == "lm_head.weight" and self.base_lm.config.tie_word_embeddings)]
            if missing or unexpected:
                raise QAModelError(f"QA checkpoint LM weights do not fit: missing {missing[:4]}, "
                                   f"unexpected {unexpected[:4]}")
        lora = {k.removeprefix("lora."): v for k, v in state.items() if k.startswith("lora.")}
        if lora:
            load_lora_state(self, lora)


def load_lora_state(model: FavorQAModel, lora_state: dict[str, torch.Tensor]) -> None:
    """LoRA adapter tensors in peft's saved naming (`base_model.model.<module>.lora_A.weight`) into the model."""
    from peft import set_peft_model_state_dict

    if not model.cfg.lora.enabled:
        raise QAModelError("LoRA weights given but the QA config has LoRA disabled")
    expected = {k for k in _peft_saved_keys(model)}
    unknown = sorted(set(lora_state) - expected)
    missing = sorted(expected - set(lora_state))
    if unknown or missing:
        raise QAModelError(f"LoRA weights do not fit the model: unknown {unknown[:4]}, missing {missing[:4]}")
    set_peft_model_state_dict(model.lm, lora_state)


def _peft_saved_keys(model: FavorQAModel) -> set[str]:
    from peft import get_peft_model_state_dict

    return set(get_peft_model_state_dict(model.lm))


def load_qa_model(checkpoint: str | Path, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None) -> FavorQAModel:
    from safetensors.torch import load_file

    d = qa_dir(checkpoint)
    if not has_qa_model(checkpoint):
        raise QAModelError(f"{checkpoint}: no QA model (train one with `favor train --stage qa`)")
    payload = json.loads((d / QA_CONFIG_FILE).read_text())
    if payload.get("format") != QA_FORMAT:
        raise QAModelError(f"{d / QA_CONFIG_FILE}: not a {QA_FORMAT} file")
    cfg = QAConfig.from_dict(payload["config"])
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    model = FavorQAModel.build(cfg, device=device, dtype=dtype)
    model.load_trainable_state(load_file(str(d / QA_WEIGHTS_FILE), device=str(device)))
    if cfg.window_channels:
        try:
            model.question_matcher = QuestionMatcher.from_checkpoint(checkpoint)
        except WindowChannelError as e:
            raise QAModelError(str(e)) from None
    return model.eval()
