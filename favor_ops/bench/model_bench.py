"""Model throughput bench: video-seconds per wall-second for each FAVOR stage, and FLOPs from the config.

    run_model_bench(preset="demo", device="cpu", seconds=20.0, json=False)

Stages, timed separately on synthetic input (random frames at the preset's FPS and size, noise audio):
    visual   preprocess_frames + encode_frames      (vision tower + visual Q-Former)
    speech   encode_speech                          (log-mel + Whisper encoder in 30 s chunks + Linear)
    qformer  encode_windows + project               (sync, windows, causal Q-Former, LLM projection)
Throughput is `seconds / stage time`; FLOPs per video-second come from favor_ops.models.flops, so achieved
FLOP/s = FLOPs per video-second x video-seconds per wall-second.

The model is built from the preset's sizes with random weights (no download). favor-13b on CPU is a smoke
test: a few frames and one 30 s audio chunk (`seconds` is capped). On cuda: bf16 autocast, SDPA, one warm-up
pass, synchronised timings; throughput is then video-seconds per GPU-second.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import sys
import time
from typing import TextIO

import numpy as np

CPU_SMOKE_SECONDS = {"favor-13b": 2.0}  # presets too large for a CPU run: seconds of input actually used
STAGES = ("visual", "speech", "qformer")
STAGE_FLOP_KEYS = {"visual": "visual", "speech": "speech", "qformer": ("qformer", "projection")}


def _build_model(preset: str, device: str):
    import torch

    from favor_ops.models.loading import build_favor_model
    from favor_ops.models.presets import preset_config

    config = preset_config(preset)
    # Random weights at the preset's sizes: the bench measures compute, not quality, and never downloads.
    config = config.replace(visual=dataclasses.replace(config.visual, source=None),
                            speech=dataclasses.replace(config.speech, source=None), official_checkpoint=None)
    model = build_favor_model(config).to(device).eval()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    return model


def _timed(fn, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def run_model_bench(preset: str = "demo", device: str = "cpu", seconds: float = 20.0, json: bool = False,
                    threads: int | None = None, warmup: bool = True, seed: int = 0,
                    out: TextIO | None = None) -> dict:
    """Time each stage on `seconds` of synthetic media; print a table (or JSON with json=True); return the dict.

    threads: torch CPU threads (None = leave as is; 1 is fastest on a shared 2-core machine).
    """
    import torch

    from favor_ops.models.flops import flops_per_video_second

    out = out or sys.stdout
    if threads:
        torch.set_num_threads(int(threads))
    smoke = device == "cpu" and preset in CPU_SMOKE_SECONDS
    if smoke:
        seconds = min(seconds, CPU_SMOKE_SECONDS[preset])
    build_start = time.perf_counter()
    model = _build_model(preset, device)
    build_s = time.perf_counter() - build_start
    cfg = model.config
    fps, size = cfg.windows.fps, cfg.visual.image_size
    n_frames = max(1, int(round(seconds * fps)))
    seconds = n_frames / fps
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n_frames, size, size, 3), dtype=np.uint8)  # (F, S, S, 3)
    waveform = (0.1 * rng.standard_normal(int(seconds * cfg.speech.sample_rate_hz))).astype(np.float32)  # (T,)

    def visual():
        return model.encode_frames(model.preprocess_frames(frames))

    def speech():
        return model.encode_speech(waveform)

    if warmup:  # first calls pay for allocator growth, kernel selection, lazy feature-extractor build
        k = min(n_frames, 2)
        model.encode_frames(model.preprocess_frames(frames[:k]))
        model.encode_speech(waveform[: cfg.speech.sample_rate_hz])
    vis, t_visual = _timed(visual, device)
    sp, t_speech = _timed(speech, device)

    def qformer():
        windows = model.encode_windows(vis, sp)
        return model.project(windows.query_tokens)

    if warmup:
        qformer()
    _, t_qformer = _timed(qformer, device)

    flops = flops_per_video_second(cfg)
    times = {"visual": t_visual, "speech": t_speech, "qformer": t_qformer}
    stages = {}
    for stage, t in times.items():
        keys = STAGE_FLOP_KEYS[stage]
        f = sum(flops[k] for k in keys) if isinstance(keys, tuple) else flops[keys]
        stages[stage] = {
            "wall_s": t,
            "video_s_per_s": seconds / t if t > 0 else float("inf"),
            "gflop_per_video_s": f / 1e9,
            "achieved_gflop_per_s": f * seconds / t / 1e9 if t > 0 else 0.0,
        }
    total_t = sum(times.values())
    stages["total"] = {
        "wall_s": total_t,
        "video_s_per_s": seconds / total_t,
        "gflop_per_video_s": flops["total"] / 1e9,
        "achieved_gflop_per_s": flops["total"] * seconds / total_t / 1e9,
    }
    result = {
        "preset": preset,
        "device": device if not device.startswith("cuda") else f"{device} ({torch.cuda.get_device_name()})",
        "precision": cfg.gpu_dtype if device.startswith("cuda") else "float32",
        "threads": torch.get_num_threads(),
        "video_seconds": seconds,
        "frames": n_frames,
        "smoke_test": smoke,
        "build_s": build_s,
        "parameters": model.num_parameters(),
        "flops_per_video_second": flops,
        "stages": stages,
    }
    if json:
        print(jsonlib.dumps(result, indent=2), file=out)
    else:
        print(format_bench(result), file=out)
    return result


def format_bench(result: dict) -> str:
    unit = "GPU-second" if str(result["device"]).startswith("cuda") else "wall-second"
    lines = [
        f"favor model bench: preset={result['preset']} device={result['device']} precision={result['precision']} "
        f"threads={result['threads']}",
        f"input: {result['video_seconds']:.1f} s of synthetic media ({result['frames']} frames)"
        + ("  [smoke test: CPU run capped]" if result["smoke_test"] else ""),
        f"parameters: {result['parameters']['total'] / 1e6:.2f} M  (built in {result['build_s']:.1f} s)",
        f"{'stage':<9}{'wall s':>10}{'video-s per ' + unit:>26}{'GFLOP/video-s':>16}{'achieved GFLOP/s':>19}",
    ]
    for stage in (*STAGES, "total"):
        s = result["stages"][stage]
        lines.append(f"{stage:<9}{s['wall_s']:>10.3f}{s['video_s_per_s']:>26.2f}{s['gflop_per_video_s']:>16.2f}"
                     f"{s['achieved_gflop_per_s']:>19.2f}")
    f = result["flops_per_video_second"]
    lines.append(f"GFLOP per video-second: vision tower {f['vision_tower'] / 1e9:.3f}, visual Q-Former "
                 f"{f['visual_qformer'] / 1e9:.3f}, Whisper {f['whisper'] / 1e9:.3f}, speech Linear "
                 f"{f['speech_proj'] / 1e9:.3f}, causal Q-Former {f['qformer'] / 1e9:.3f}, projection "
                 f"{f['projection'] / 1e9:.3f}")
    return "\n".join(lines)


def run_from_args(args) -> dict:
    """`favor bench model`: the argparse entry point (the result's "report" is the printed table)."""
    import io

    result = run_model_bench(preset=args.preset, device=args.device, seconds=args.seconds, json=False,
                             threads=args.threads, out=io.StringIO())
    result["report"] = format_bench(result)
    return result
