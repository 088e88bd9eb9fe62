"""Decode benchmark: favor's decoder against plain ffmpeg, measured in the same process.

    baseline: ffmpeg -i F -vf fps=2,scale=224:224 -f null -           (decode + sample + scale, no output)
    ours:     favor_ops.media.decode iter_frames + iter_audio, every chunk consumed into numpy
              (frames 2 FPS 224x224 RGB and 16 kHz mono float32 audio; the two ffmpeg processes run concurrently)

Both are timed best-of-N wall clock (and CPU seconds, which a busy machine
disturbs less than wall time); the realtime factor is video-seconds per
wall-second and the headline number is ours / baseline (target >= 0.8; ours
does strictly more work: audio, RGB conversion, letterboxing, the pipe).

Peak memory is measured in a fresh child process that only decodes the file:
its own ru_maxrss (Python + numpy chunks) and the largest ffmpeg it spawned
(RUSAGE_CHILDREN). `measure_decode_rss` is also what the 10-minute 1080p memory
test uses.

Without --file a 720p30 H.264 + AAC test file is generated with ffmpeg lavfi
(testsrc2 + sine, -preset veryfast) in a temporary directory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from favor_ops.media.decode import DecodeConfig, iter_audio, iter_frames
from favor_ops.media.probe import probe

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class DecodeBenchConfig:
    seconds: float = 30.0  # length of the generated test file
    width: int = 1280  # generated test file size (720p)
    height: int = 720
    source_fps: int = 30  # generated test file frame rate
    x264_preset: str = "veryfast"
    repeats: int = 3  # best of N for each side
    fps: float = 2.0  # sampling rate of both baseline and ours
    image_size: int = 224
    target_ratio: float = 0.8  # ours / baseline realtime factor to call it a pass


def make_test_file(out_path: str, seconds: float, width: int, height: int, source_fps: int, preset: str) -> str:
    """A synthetic H.264 + AAC mp4 (testsrc2 + 440 Hz sine)."""
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={source_fps}:d={seconds}",
        "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}",
        "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", out_path,
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return out_path


def baseline_args(path: str, fps: float, image_size: int) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-i", path,
            "-vf", f"fps={fps:g},scale={image_size}:{image_size}", "-f", "null", "-"]  # fmt: skip


def _cpu_s() -> float:
    """CPU seconds (user + sys) of this process plus its reaped children (the ffmpeg/ffprobe processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def time_baseline(path: str, fps: float, image_size: int) -> tuple[float, float]:
    """(wall s, CPU s) of plain ffmpeg decoding + sampling + scaling to a null sink."""
    start, cpu0 = time.perf_counter(), _cpu_s()
    subprocess.run(baseline_args(path, fps, image_size), check=True)
    return time.perf_counter() - start, _cpu_s() - cpu0


def consume_media(path: str, cfg: DecodeConfig) -> dict:
    """Decode frames and audio (audio on a thread, like `decode`), touching every chunk; returns counts and a checksum."""
    info = probe(path)
    audio_result: dict = {}

    def audio_worker() -> None:
        try:
            n, energy = 0, 0.0
            for chunk in iter_audio(path, cfg, info=info):
                n += len(chunk.samples)
                energy += float(np.dot(chunk.samples, chunk.samples))
            audio_result.update(n_samples=n, energy=energy)
        except BaseException as err:  # re-raised on the main thread
            audio_result["error"] = err

    worker = threading.Thread(target=audio_worker, name="favor-bench-audio")
    worker.start()
    n_frames, checksum = 0, 0
    try:
        for chunk in iter_frames(path, cfg, info=info):
            n_frames += len(chunk.frames_rgb)
            checksum += int(chunk.frames_rgb[:, ::16, ::16].sum())
    finally:
        worker.join()
    if "error" in audio_result:
        raise audio_result["error"]
    return {"n_frames": n_frames, "n_samples": audio_result.get("n_samples", 0), "checksum": checksum,
            "duration_s": info.duration_s}  # fmt: skip


def time_ours(path: str, cfg: DecodeConfig) -> tuple[float, float, dict]:
    """(wall s, CPU s, counts) of probe + frames + audio, every chunk consumed."""
    start, cpu0 = time.perf_counter(), _cpu_s()
    counts = consume_media(path, cfg)
    return time.perf_counter() - start, _cpu_s() - cpu0, counts


def _maxrss_bytes(who: int) -> int:
    kib = resource.getrusage(who).ru_maxrss  # kilobytes on Linux
    return int(kib) * KIB


def rss_child_main(argv: list[str] | None = None) -> int:
    """Child entry: decode argv[0] at fps argv[1], size argv[2]; print JSON with peak RSS and counts."""
    argv = sys.argv[1:] if argv is None else argv
    path, fps, image_size = argv[0], float(argv[1]), int(argv[2])
    start = time.perf_counter()
    counts = consume_media(path, DecodeConfig(fps=fps, image_size=image_size))
    wall_s = time.perf_counter() - start
    print(json.dumps({
        **counts,
        "wall_s": wall_s,
        "python_peak_rss_bytes": _maxrss_bytes(resource.RUSAGE_SELF),
        "ffmpeg_peak_rss_bytes": _maxrss_bytes(resource.RUSAGE_CHILDREN),
    }))  # fmt: skip
    return 0


def measure_decode_rss(path: str, fps: float = 2.0, image_size: int = 224, timeout_s: float = 3600) -> dict:
    """Decode `path` in a fresh Python process; returns its peak RSS (python and largest ffmpeg child) and counts."""
    code = "import sys; from favor_ops.bench.decode_bench import rss_child_main; sys.exit(rss_child_main())"
    env = dict(os.environ)
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-c", code, path, str(fps), str(image_size)],
                          capture_output=True, text=True, env=env, timeout=timeout_s)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"decode child failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_decode_bench(file: str | None = None, cfg: DecodeBenchConfig = DecodeBenchConfig(), progress: bool = True) -> dict:
    """Run the benchmark; returns a JSON-able dict (see module docstring)."""
    decode_cfg = DecodeConfig(fps=cfg.fps, image_size=cfg.image_size)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="favor-bench-decode-") as tmp:
        generated = file is None
        if generated:
            file = os.path.join(tmp, f"testsrc2_{cfg.height}p{cfg.source_fps}_{cfg.seconds:g}s.mp4")
            log(f"generating {cfg.seconds:g} s {cfg.width}x{cfg.height}@{cfg.source_fps} H.264 test file ...")
            make_test_file(file, cfg.seconds, cfg.width, cfg.height, cfg.source_fps, cfg.x264_preset)
        info = probe(file)
        baseline_s, ours_s, baseline_cpu_s, ours_cpu_s, counts = [], [], [], [], {}
        for i in range(cfg.repeats):  # interleaved so background load hits both sides alike
            log(f"run {i + 1}/{cfg.repeats}: baseline ffmpeg ...")
            wall, cpu = time_baseline(file, cfg.fps, cfg.image_size)
            baseline_s.append(wall)
            baseline_cpu_s.append(cpu)
            log(f"run {i + 1}/{cfg.repeats}: favor decode ...")
            wall, cpu, counts = time_ours(file, decode_cfg)
            ours_s.append(wall)
            ours_cpu_s.append(cpu)
        log("peak memory (fresh process) ...")
        rss = measure_decode_rss(file, cfg.fps, cfg.image_size)
    media_s = info.duration_s
    baseline_rtf, ours_rtf = media_s / min(baseline_s), media_s / min(ours_s)
    return {
        "benchmark": "decode",
        "file": None if generated else file,
        "generated": generated,
        "media_duration_s": media_s,
        "source": f"{info.width}x{info.height} {info.video_codec}/{info.audio_codec} @ {info.avg_fps:g} fps",
        "config": asdict(cfg),
        "baseline_cmd": " ".join(baseline_args("F", cfg.fps, cfg.image_size)),
        "baseline_wall_s": baseline_s,
        "ours_wall_s": ours_s,
        "baseline_realtime_factor": baseline_rtf,
        "ours_realtime_factor": ours_rtf,
        "ratio_ours_over_baseline": ours_rtf / baseline_rtf,
        "baseline_cpu_s": baseline_cpu_s,
        "ours_cpu_s": ours_cpu_s,
        "cpu_ratio_baseline_over_ours": min(baseline_cpu_s) / min(ours_cpu_s),
        "load_average_1m": os.getloadavg()[0],
        "target_ratio": cfg.target_ratio,
        "passed": ours_rtf / baseline_rtf >= cfg.target_ratio,
        "n_frames": counts.get("n_frames"),
        "n_audio_samples": counts.get("n_samples"),
        "python_peak_rss_bytes": rss["python_peak_rss_bytes"],
        "ffmpeg_peak_rss_bytes": rss["ffmpeg_peak_rss_bytes"],
        "cpu_count": os.cpu_count(),
    }


def format_report(result: dict) -> str:
    lines = [
        f"decode benchmark: {result['media_duration_s']:.1f} s of {result['source']}"
        + (" (generated)" if result["generated"] else f" ({result['file']})"),
        f"  baseline  {result['baseline_cmd']}",
        f"            best {min(result['baseline_wall_s']):.3f} s  -> {result['baseline_realtime_factor']:.1f}x realtime",
        f"  favor     frames {result['n_frames']} x {result['config']['image_size']}^2 RGB + "
        f"{result['n_audio_samples']} audio samples @ 16 kHz",
        f"            best {min(result['ours_wall_s']):.3f} s  -> {result['ours_realtime_factor']:.1f}x realtime",
        f"  ratio ours/baseline: {result['ratio_ours_over_baseline']:.2f} (target >= {result['target_ratio']:.2f}: "
        f"{'PASS' if result['passed'] else 'FAIL'})",
        f"  CPU time (user+sys, incl. ffmpeg/ffprobe): baseline {min(result['baseline_cpu_s']):.2f} s, "
        f"ours {min(result['ours_cpu_s']):.2f} s -> efficiency {result['cpu_ratio_baseline_over_ours']:.2f} "
        f"(load average {result['load_average_1m']:.1f} on {result['cpu_count']} cores)",
        f"  peak RSS: python {result['python_peak_rss_bytes'] / MIB:.0f} MiB, "
        f"largest ffmpeg {result['ffmpeg_peak_rss_bytes'] / MIB:.0f} MiB",
    ]
    return "\n".join(lines)


def run_from_args(args) -> dict:
    """Registry entry point for `favor bench decode` (argparse namespace: file, seconds, repeats)."""
    cfg = DecodeBenchConfig(seconds=args.seconds, repeats=args.repeats)
    result = run_decode_bench(args.file, cfg, progress=not args.json)
    result["report"] = format_report(result)
    return result
