"""Index benchmark: the whole Beam index job against decode-only and encoder-only throughput of the same files.

    corpus:    favor corpus synth, --videos N clips of at most --max-duration s (fixed seed), once,
               in a temporary directory (no bad files: this measures throughput, not failures)
    baseline:  decode-only, in the same process tree: every file probed and decoded with
               favor_ops.media.decode (iter_frames + iter_audio, every chunk consumed) at the model's
               decode config, by a process pool of as many workers as the index job gets
    baseline:  encoder-only, in the bench process on --device: the job's own DecodeVideoFn decodes every file
               into the job's chunks first (untimed, held in memory), then the job's own model handler
               (FavorWindowModelHandler: encoders, causal Q-Former, heads) encodes them in the job's batches,
               after one warm-up batch; only the encoding is timed (CUDA synchronised)
    ours:      run_index_job (local FnApiRunner, multi-process, one worker per core) with --preset on --device
               into a fresh temporary LanceDB store: catalog, decode, encode, window, stage, commit, maintenance

Reported: videos per minute, video-seconds per wall-second of every side, the ratios index / decode-only
(the CPU target, >= 0.5) and index / encoder-only (the GPU target with `--device cuda`, >= 0.6: decode and data
movement hidden behind the encoders), and where the workers' time went from the job's metrics
(decode_ms_per_video and encode_ms_per_batch sums as shares of workers x wall time).
Decode-only is best of --repeats; the index job runs once (its fixed costs: worker start-up
and one model load per worker, are part of what it costs). As `favor index` does, the bench starts the
warm worker server first (pipelines/index/worker_fork_server.py); it imports while the corpus is
generated, as decode-only's pool is started and imported before its clock runs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

from favor_ops.media.decode import DecodeConfig, iter_audio, iter_frames
from favor_ops.media.probe import probe


@dataclass(frozen=True)
class IndexBenchConfig:
    videos: int = 50  # clips in the generated corpus
    max_duration_s: float = 8.0  # longest generated clip
    min_duration_s: float = 1.0
    seed: int = 11  # corpus seed: the same files every run
    preset: str = "demo"  # model preset (or checkpoint dir) the index job encodes with
    workers: int | None = None  # index job and decode pool processes; None: one per core
    repeats: int = 1  # decode-only: best of N
    device: str = "cpu"  # the index job's and the encoder-only baseline's device: cpu or cuda
    windows_per_chunk: int = 12  # as IndexJobConfig
    max_batch_chunks: int = 4  # as IndexJobConfig
    target_ratio: float = 0.5  # index / decode-only realtime factor to call a CPU run a pass
    target_encode_ratio: float = 0.6  # index / encoder-only realtime factor to call a CUDA run a pass


def decode_file(args: tuple[str, dict]) -> tuple[float, int, int]:
    """Pool worker: probe + decode one file, consuming every chunk -> (duration_s, n_frames, n_samples)."""
    uri, cfg_fields = args
    cfg = DecodeConfig(**cfg_fields)
    info = probe(uri)
    n_frames = n_samples = 0
    if info.has_video:
        for chunk in iter_frames(uri, cfg, info):
            n_frames += len(chunk.frames_rgb)
    if info.has_audio:
        for chunk in iter_audio(uri, cfg, info):
            n_samples += len(chunk.samples)
    return info.duration_s, n_frames, n_samples


def time_decode_only(files: list[str], cfg: DecodeConfig, workers: int) -> dict:
    """Decode every file with a pool of `workers` processes (started before the clock runs)."""
    jobs = [(f, asdict(cfg)) for f in files]
    pool = multiprocessing.get_context("spawn").Pool(workers)
    try:
        pool.map(abs, range(workers))  # warm: every worker started and imported
        started = time.perf_counter()
        results = pool.map(decode_file, jobs, chunksize=1)
        wall_s = time.perf_counter() - started
    except BaseException:
        pool.terminate()
        raise
    # close + join: each worker takes its stop sentinel and exits. Pool.__exit__ would terminate() them with SIGTERM,
    # and a worker started by a process that ignores SIGTERM (a nohup'd or backgrounded CI shell) ignores it too:
    # the join then waits forever.
    pool.close()
    pool.join()
    return {
        "wall_s": wall_s,
        "media_s": sum(r[0] for r in results),
        "n_frames": sum(r[1] for r in results),
        "n_samples": sum(r[2] for r in results),
    }


def decode_into_chunks(files: list[str], model, windows_per_chunk: int) -> tuple[list, float]:
    """Every file through the job's DecodeVideoFn -> (MediaChunks, seconds of media decoded)."""
    import apache_beam as beam

    from pipelines.index.decode_transform import DecodeVideoFn
    from pipelines.index.elements import VideoHeader, VideoTask

    decode_fn = DecodeVideoFn(model.decode_config, model.window_spec, windows_per_chunk)
    chunks, media_s = [], 0.0
    for i, uri in enumerate(files):
        for out in decode_fn.process(VideoTask(uri=uri, video_id=f"{i:016x}", size_bytes=0)):
            if isinstance(out, beam.pvalue.TaggedOutput):
                if isinstance(out.value, VideoHeader):
                    media_s += out.value.duration_s
                continue
            chunks.append(out)
    return chunks, media_s


def time_encode_only(chunks: list, preset: str, device: str, max_batch_chunks: int) -> dict:
    """The job's model handler on pre-decoded chunks, in this process: wall seconds of the encoding only."""
    import torch

    from pipelines.index.model_handler import FavorWindowModelHandler

    handler = FavorWindowModelHandler(preset, device=device, max_batch_chunks=max_batch_chunks)
    model = handler.load_model()
    batches = [chunks[i:i + max_batch_chunks] for i in range(0, len(chunks), max_batch_chunks)]
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if batches:
        handler.run_inference(batches[0], model)  # warm-up: kernels, allocator, caches
    synchronize()
    started = time.perf_counter()
    windows = 0
    for batch in batches:
        for result in handler.run_inference(batch, model):
            windows += len(getattr(result.inference, "window_idx", ()))
    synchronize()
    return {"wall_s": time.perf_counter() - started, "windows": windows, "chunks": len(chunks),
            "batches": len(batches), "torch_threads": torch.get_num_threads()}


def run_index_bench(cfg: IndexBenchConfig = IndexBenchConfig(), progress: bool = True) -> dict:
    """Run the benchmark; returns a JSON-able dict (see module docstring)."""
    from favor_ops.corpus.synth import synthesize_corpus
    from pipelines.index.chunk_encoder import describe_model
    from pipelines.index.job import IndexJobConfig, run_index_job
    from pipelines.index.runner_options import default_num_workers

    from pipelines.index.worker_fork_server import shared_fork_server

    shared_fork_server()  # as `favor index` does: warms up while the corpus is generated
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    workers = cfg.workers or default_num_workers()
    model = describe_model(cfg.preset)
    with tempfile.TemporaryDirectory(prefix="favor-bench-index-") as tmp:
        archive, db = os.path.join(tmp, "archive"), os.path.join(tmp, "db")
        log(f"generating {cfg.videos} clips of {cfg.min_duration_s:g}-{cfg.max_duration_s:g} s (seed {cfg.seed}) ...")
        records = synthesize_corpus(archive, cfg.videos, cfg.seed, include_bad=False, min_duration_s=cfg.min_duration_s,
                                    max_duration_s=cfg.max_duration_s, progress=False)
        files = [os.path.join(archive, r["file"]) for r in records]
        decode_runs = []
        for i in range(cfg.repeats):
            log(f"decode-only {i + 1}/{cfg.repeats}: {len(files)} files, {workers} processes ...")
            decode_runs.append(time_decode_only(files, model.decode_config, workers))
        log(f"encoder-only: decoding {len(files)} files into the job's chunks (untimed) ...")
        chunks, chunk_media_s = decode_into_chunks(files, model, cfg.windows_per_chunk)
        log(f"encoder-only: {len(chunks)} chunks on {cfg.device} ...")
        encode = time_encode_only(chunks, cfg.preset, cfg.device, cfg.max_batch_chunks)
        encode["media_s"] = chunk_media_s
        del chunks
        log(f"index job: preset {cfg.preset}, {workers} workers, device {cfg.device} ...")
        summary = run_index_job(IndexJobConfig(source=archive, db=db, model=cfg.preset, num_workers=workers,
                                               device=cfg.device, windows_per_chunk=cfg.windows_per_chunk,
                                               max_batch_chunks=cfg.max_batch_chunks), progress=None)
    decode = min(decode_runs, key=lambda r: r["wall_s"])
    metrics = summary.metrics
    worker_ms = summary.wall_s * 1000.0 * workers  # worker-process time available to the job
    decode_ms = metrics.get("decode_ms_per_video.sum", 0.0)
    encode_ms = metrics.get("encode_ms_per_batch.sum", 0.0)
    load_ms = metrics.get("load_model_latency_milli_secs.sum", 0.0)
    decode_rtf = decode["media_s"] / decode["wall_s"]
    index_rtf = summary.video_seconds / summary.wall_s if summary.wall_s else 0.0
    ratio = index_rtf / decode_rtf if decode_rtf else 0.0
    encode_rtf = encode["media_s"] / encode["wall_s"] if encode["wall_s"] else 0.0
    encode_ratio = index_rtf / encode_rtf if encode_rtf else 0.0
    on_gpu = cfg.device.startswith("cuda")
    return {
        "benchmark": "index",
        "config": asdict(cfg),
        "workers": workers,
        "model_version": summary.model_version,
        "decode_config": asdict(model.decode_config),
        "videos": len(files),
        "media_s": decode["media_s"],
        "decode_only_wall_s": [r["wall_s"] for r in decode_runs],
        "decode_only_videos_per_min": 60.0 * len(files) / decode["wall_s"],
        "decode_only_realtime_factor": decode_rtf,
        "index_wall_s": summary.wall_s,
        "index_indexed": summary.indexed,
        "index_failed": summary.failed,
        "index_windows": summary.windows_written,
        "index_video_seconds": summary.video_seconds,
        "index_videos_per_min": 60.0 * summary.indexed / summary.wall_s if summary.wall_s else 0.0,
        "index_realtime_factor": index_rtf,
        "ratio_index_over_decode_only": ratio,
        "target_ratio": cfg.target_ratio,
        "encode_only_wall_s": encode["wall_s"],
        "encode_only_realtime_factor": encode_rtf,
        "encode_only_windows": encode["windows"],
        "encode_only_torch_threads": encode["torch_threads"],
        "ratio_index_over_encode_only": encode_ratio,
        "target_encode_ratio": cfg.target_encode_ratio,
        "device": cfg.device,
        # The CPU run is judged against decode-only, a CUDA run against the encoders alone.
        "passed": (encode_ratio >= cfg.target_encode_ratio if on_gpu else ratio >= cfg.target_ratio)
                  and summary.failed == 0,
        "share_decode": decode_ms / worker_ms if worker_ms else 0.0,
        "share_encode": encode_ms / worker_ms if worker_ms else 0.0,
        "share_model_load": load_ms / worker_ms if worker_ms else 0.0,
        "share_other": max(0.0, 1.0 - (decode_ms + encode_ms + load_ms) / worker_ms) if worker_ms else 0.0,
        "decode_ms_sum": decode_ms,
        "encode_ms_sum": encode_ms,
        "model_load_ms_sum": load_ms,
        "encode_batches": metrics.get("encode_ms_per_batch.count", 0),
        "load_average_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
    }


def format_report(result: dict) -> str:
    cfg = result["config"]
    gpu = result["device"].startswith("cuda")
    lines = [
        f"index benchmark: {result['videos']} generated clips, {result['media_s']:.1f} s of media "
        f"(<= {cfg['max_duration_s']:g} s each, seed {cfg['seed']}), {result['workers']} worker processes",
        f"  decode-only  probe + frames {result['decode_config']['image_size']}^2 @ {result['decode_config']['fps']:g} FPS"
        f" + 16 kHz audio, process pool: best {min(result['decode_only_wall_s']):.1f} s"
        f"  -> {result['decode_only_videos_per_min']:.1f} videos/min, {result['decode_only_realtime_factor']:.1f} video-s/s",
        f"  index job    {result['model_version']}: {result['index_wall_s']:.1f} s  -> "
        f"{result['index_videos_per_min']:.1f} videos/min, {result['index_realtime_factor']:.1f} video-s/s "
        f"({result['index_indexed']} indexed, {result['index_failed']} failed, {result['index_windows']} windows)",
        f"  encoder-only {result['device']}, pre-decoded chunks, {result['encode_only_torch_threads']} torch threads: "
        f"{result['encode_only_wall_s']:.1f} s -> {result['encode_only_realtime_factor']:.1f} video-s/s "
        f"({result['encode_only_windows']} windows)",
        f"  worker time  decode {100 * result['share_decode']:.0f}%, encode {100 * result['share_encode']:.0f}% "
        f"({result['encode_batches']} batches), model load {100 * result['share_model_load']:.0f}%, "
        f"other (Beam, catalog, store, idle) {100 * result['share_other']:.0f}%",
        f"  ratio index/decode-only: {result['ratio_index_over_decode_only']:.2f}"
        + (f" (target >= {result['target_ratio']:.2f})" if not gpu else ""),
        f"  ratio index/encoder-only: {result['ratio_index_over_encode_only']:.2f}"
        + (f" (target >= {result['target_encode_ratio']:.2f})" if gpu else ""),
        f"  {'PASS' if result['passed'] else 'FAIL'} (load average {result['load_average_1m']:.1f} on "
        f"{result['cpu_count']} cores)",
    ]
    return "\n".join(lines)


def run_from_args(args) -> dict:
    """Registry entry point for `favor bench index` (argparse namespace: --preset, --videos,
    --max-duration, --workers, --repeats, --json; missing options take IndexBenchConfig defaults)."""
    defaults = IndexBenchConfig()
    cfg = IndexBenchConfig(
        videos=getattr(args, "videos", None) or defaults.videos,
        max_duration_s=getattr(args, "max_duration", None) or defaults.max_duration_s,
        preset=getattr(args, "preset", None) or defaults.preset,
        workers=getattr(args, "workers", None),
        repeats=getattr(args, "repeats", None) or defaults.repeats,
        device=getattr(args, "device", None) or defaults.device,
    )
    if cfg.device != "cpu" and not cfg.device.startswith("cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {cfg.device!r}")
    if cfg.videos < 1 or cfg.max_duration_s < cfg.min_duration_s:
        raise ValueError(f"--videos must be >= 1 and --max-duration >= {cfg.min_duration_s:g} s")
    result = run_index_bench(cfg, progress=not getattr(args, "json", False))
    result["report"] = format_report(result)
    return result
