"""FavorQAModel at tiny sizes: the answers come from the window tokens, batching changes nothing, the checkpoint
round-trips, the loss reads only the answer, and the LoRA path loads adapters in the official FAVOR naming."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from favor_ops.qa.evidence import stored_windows
from favor_ops.qa.prompt import PromptWindow, prompt_pieces
from favor_ops.qa.qa_model import FavorQAModel, load_qa_model
from tests.qa.conftest import QUESTION, TRAINED


def test_answers_come_from_the_window_tokens(qa_store, qa_checkpoint):
    model = load_qa_model(qa_checkpoint)
    prompts = [prompt_pieces(stored_windows(qa_store, vid), QUESTION) for vid in TRAINED]
    assert model.generate(prompts) == list(TRAINED.values())  # same question, different tokens, different answers


def test_batched_generation_equals_one_at_a_time(qa_store, qa_checkpoint):
    """Left padding must not change an answer: a short and a long prompt in one batch."""
    model = load_qa_model(qa_checkpoint)
    long_windows = stored_windows(qa_store, "aa11")
    short = prompt_pieces(long_windows[:1], QUESTION)
    prompts = [short, prompt_pieces(long_windows, QUESTION), prompt_pieces(stored_windows(qa_store, "cc33"), QUESTION)]
    batched = model.generate(prompts)
    assert batched == [model.generate([p])[0] for p in prompts]
    assert model.generate(prompts, num_beams=3) == [model.generate([p], num_beams=3)[0] for p in prompts]


def test_loss_is_on_the_answer_only(qa_store):
    """Labels cover the answer and its end token; the prompt embeddings get no label."""
    from favor_ops.qa.config import tiny_qa_config

    torch.manual_seed(0)
    model = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=8), window_channels=False))
    prompts = [prompt_pieces(stored_windows(qa_store, "aa11"), QUESTION)]
    batch = model.embed_prompts(prompts, ["apple pie"])
    n_answer = len(model.text_ids("apple pie")) + 1
    labelled = (batch.labels != -100).sum().item()
    assert labelled == n_answer
    assert batch.labels[0, -n_answer:].tolist() == model.text_ids("apple pie") + [model.tokenizer.eos_token_id]
    # 4 windows' tokens are 4 x 4 positions of the prompt, none labelled
    assert batch.inputs_embeds.shape[1] == batch.attention_mask.sum().item()


def test_checkpoint_round_trip_is_exact(qa_store, qa_checkpoint, tmp_path):
    model = load_qa_model(qa_checkpoint)
    model.save(tmp_path)
    again = load_qa_model(tmp_path)
    prompts = [prompt_pieces(stored_windows(qa_store, "aa11"), QUESTION)]
    with torch.no_grad():
        a = model.embed_prompts(prompts, ["x"])
        b = again.embed_prompts(prompts, ["x"])
    assert torch.equal(a.inputs_embeds, b.inputs_embeds)
    assert torch.equal(model.answer_loss(prompts, ["apple"]), again.answer_loss(prompts, ["apple"]))


def _tiny_llama_dir(tmp_path, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=101, eos_token_id=102, pad_token_id=0)
    path = tmp_path / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def test_lora_on_a_saved_llm_loads_official_named_adapters(qa_store, tmp_path):
    """favor-13b path at tiny sizes: an LLM from a local directory (save_pretrained), LoRA on q/k/v/o through peft,
    adapters given under the official checkpoint's names (`llama_model.` prefix, peft's saved naming)."""
    from favor_ops.qa.config import LoraSettings, tiny_qa_config
    from favor_ops.qa.official_lora import load_official_lora
    from favor_ops.qa.qa_model import has_qa_model

    llm_dir = _tiny_llama_dir(tmp_path, vocab_size=30522)
    cfg = dataclasses.replace(tiny_qa_config(window_dim=8), lm_source=str(llm_dir), window_channels=False,
                              lora=LoraSettings(enabled=True, r=4, alpha=8, dropout=0.0))
    model = FavorQAModel.build(cfg).eval()
    prompts = [prompt_pieces(stored_windows(qa_store, "aa11"), QUESTION)]
    before = model.answer_loss(prompts, ["apple"]).item()
    # the official release saves the adapters as llama_model.base_model.model.<module>.lora_{A,B}.weight
    from peft import get_peft_model_state_dict

    rng = torch.Generator().manual_seed(3)
    official = {f"llama_model.{k}": torch.randn(v.shape, generator=rng) * 0.5
                for k, v in get_peft_model_state_dict(model.lm).items()}
    assert any(".q_proj.lora_A" in k for k in official) and any(".o_proj.lora_B" in k for k in official)
    n = load_official_lora(model, official)
    assert n == len(official)
    after = model.answer_loss(prompts, ["apple"]).item()
    assert after != pytest.approx(before)  # lora_B is no longer zero: the adapters act
    loaded = get_peft_model_state_dict(model.lm)
    for k, v in official.items():
        assert torch.equal(loaded[k.removeprefix("llama_model.")], v)
    # a QA checkpoint of an lm_source model holds the projection + adapters, not the LLM
    model.save(tmp_path / "ckpt")
    assert has_qa_model(tmp_path / "ckpt")
    again = load_qa_model(tmp_path / "ckpt")
    assert again.answer_loss(prompts, ["apple"]).item() == pytest.approx(after, rel=1e-5)
    with pytest.raises(Exception, match="do not fit"):
        load_official_lora(model, {"llama_model.base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight":
                                   torch.zeros(4, 32)})
