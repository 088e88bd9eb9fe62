"""`favor bench qa`: batched answer generation vs one question at a time, in the same process.

The QA model is random-init at the preset's sizes (the `demo` scratch Llama on CPU; `7b`: a Llama-7B-sized causal LM
in bf16 on a GPU; `tiny` for tests). Every question gets `windows` windows of random stored tokens (Nq x D) and
generates exactly `new_tokens` tokens (EOS suppressed by min_new_tokens), so both sides do identical work:

    questions/s, tokens/s (generated), prompt tokens per question, ratio = batched / one-at-a-time
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class QABenchConfig:
    preset: str = "demo"  # tiny | demo | 7b
    questions: int = 32
    batch_size: int = 16
    windows: int = 6  # windows per question (6 = 30 s of video)
    new_tokens: int = 8
    device: str = "cpu"
    threads: int = 1
    seed: int = 0


def llama_7b_qa_config(window_dim: int = 768):
    """A Vicuna-7B-sized Llama (random init) with the FAVOR projection; GPU only."""
    import dataclasses

    from favor_ops.qa.config import ScratchLMConfig, demo_qa_config

    return dataclasses.replace(demo_qa_config(window_dim), name="7b", scratch=ScratchLMConfig(
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008,
        max_position_embeddings=4096, tie_word_embeddings=False))


def _model(cfg: QABenchConfig):
    from favor_ops.qa.config import QA_PRESETS
    from favor_ops.qa.qa_model import FavorQAModel

    if cfg.preset == "7b":
        if not cfg.device.startswith("cuda"):
            raise ValueError("the 7b QA bench needs --device cuda (a 7B model in bf16 is 13 GiB)")
        qa_cfg = llama_7b_qa_config()
    elif cfg.preset in QA_PRESETS:
        qa_cfg = QA_PRESETS[cfg.preset]() if cfg.preset != "favor-13b" else None
        if qa_cfg is None:
            raise ValueError("favor-13b loads Vicuna-13B weights; benchmark the random-init `7b` preset instead")
    else:
        raise ValueError(f"unknown QA bench preset {cfg.preset!r}: tiny, demo or 7b")
    dtype = torch.bfloat16 if cfg.device.startswith("cuda") else torch.float32
    torch.manual_seed(cfg.seed)
    return FavorQAModel.build(qa_cfg, device=cfg.device, dtype=dtype).eval()


def _prompts(model, cfg: QABenchConfig):
    from favor_ops.qa.prompt import PromptWindow, prompt_pieces

    rng = np.random.default_rng(cfg.seed)
    nq, d = 32, model.cfg.window_dim
    channels = model.channels is not None  # random scores stand in for the question match and AV agreement
    return [prompt_pieces([PromptWindow(5.0 * w, 5.0 * w + 5, rng.standard_normal((nq, d)).astype(np.float32),
                                        question_match=float(rng.uniform(-1, 1)) if channels else None,
                                        av_agreement=float(rng.uniform(-1, 1)) if channels else None)
                           for w in range(cfg.windows)], f"What word is spoken while shape {i} is shown?")
            for i in range(cfg.questions)]


def _generate(model, prompts, new_tokens: int) -> int:
    batch = model.embed_prompts(prompts)
    out = model.lm.generate(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            pad_token_id=model.tokenizer.pad_token_id, eos_token_id=model.tokenizer.eos_token_id)
    return int(out.shape[0] * out.shape[1])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_qa_bench(cfg: QABenchConfig) -> dict:
    if cfg.questions < 1 or cfg.batch_size < 1 or cfg.windows < 1 or cfg.new_tokens < 1:
        raise ValueError("questions, batch size, windows and new tokens must all be >= 1")
    if cfg.device == "cpu":
        torch.set_num_threads(cfg.threads)
    model = _model(cfg)
    prompts = _prompts(model, cfg)
    prompt_tokens = int(model.embed_prompts(prompts[:1]).attention_mask.sum())
    with torch.inference_mode():
        _generate(model, prompts[:2], 2)  # warm-up (allocator, kernels)
        _sync(cfg.device)
        t0 = time.perf_counter()
        single_tokens = sum(_generate(model, [p], cfg.new_tokens) for p in prompts)
        _sync(cfg.device)
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        batched_tokens = sum(_generate(model, prompts[i:i + cfg.batch_size], cfg.new_tokens)
                             for i in range(0, len(prompts), cfg.batch_size))
        _sync(cfg.device)
        batched_s = time.perf_counter() - t0
    n = len(prompts)
    result = {
        "preset": cfg.preset, "device": cfg.device, "questions": n, "batch_size": cfg.batch_size,
        "windows_per_question": cfg.windows, "prompt_tokens_per_question": prompt_tokens,
        "new_tokens_per_question": cfg.new_tokens,
        "one_at_a_time": {"seconds": round(single_s, 6), "questions_per_s": round(n / single_s, 3),
                          "tokens_per_s": round(single_tokens / single_s, 1)},
        "batched": {"seconds": round(batched_s, 6), "questions_per_s": round(n / batched_s, 3),
                    "tokens_per_s": round(batched_tokens / batched_s, 1)},
        "ratio_batched_vs_single": round(single_s / batched_s, 3),
    }
    if cfg.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def format_report(r: dict) -> str:
    return "\n".join([
        f"QA generation, {r['preset']} preset (random init) on {r.get('gpu', r['device'])}: {r['questions']} questions,"
        f" {r['windows_per_question']} windows ({r['prompt_tokens_per_question']} prompt tokens) each, "
        f"{r['new_tokens_per_question']} new tokens each",
        f"  one at a time : {r['one_at_a_time']['questions_per_s']:8.2f} questions/s "
        f"{r['one_at_a_time']['tokens_per_s']:9.1f} tokens/s",
        f"  batched ({r['batch_size']:>3}) : {r['batched']['questions_per_s']:8.2f} questions/s "
        f"{r['batched']['tokens_per_s']:9.1f} tokens/s",
        f"  ratio batched / one at a time: {r['ratio_batched_vs_single']:.2f}x",
    ])


def run_from_args(args) -> dict:
    cfg = QABenchConfig(preset=args.preset, questions=args.questions, batch_size=args.batch,
                        windows=args.windows, new_tokens=args.new_tokens, device=args.device,
                        threads=getattr(args, "threads", 1))
    result = run_qa_bench(cfg)
    result["report"] = format_report(result)
    return result
