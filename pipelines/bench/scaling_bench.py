"""Scaling benchmark: the real Beam index job at growing corpus sizes, throughput and peak memory.

    favor bench scaling --sizes 10,100,1000 [--max-duration 2] [--preset demo] [--workers N]
                        [--workdir DIR] [--plot PNG] [--json]

    corpora:   favor corpus synth, one pool of max(--sizes) short clips (--min-duration..--max-duration s,
               fixed seed, no bad files) cached under --workdir; the corpus of size N is the pool's first
               N files (hard links) plus their manifest. Clip i depends only on (seed, i), so the corpus of
               size 100 is exactly the first 100 clips of the corpus of size 1000. A rerun reuses the cache.
    each size: run_index_job (Beam local runner, multi-process, one SDK worker per core) with --preset
               into a fresh LanceDB store, in its own driver process (python -m this module), so that every
               size starts from a clean process tree. A sampler thread in this process reads the memory of
               the driver and all its descendants (SDK worker processes, ffmpeg) every --sample-interval s.

Reported per size: wall time of the job (run_index_job's own clock: catalog to commit + maintenance),
video-seconds indexed (the store's duration_s of the run's indexed videos) next to the manifest's
durations, video-seconds per wall-second, videos per minute, and peak memory of the process tree:
RSS summed over the tree (counts shared library pages once per process), PSS summed (shares them out)
and the driver's own RSS. Ratios of the largest size against the baseline size (100 when it is among
--sizes, else the smallest): throughput (target: within 15 % either way, i.e. wall time linear in
video-seconds) and peak tree RSS (target <= 1.20). Small sizes are dominated by fixed costs (worker
start-up, one model load per worker, index maintenance), which is why the baseline is 100 and not 10
and why the clips are 4-8 s. The job's workers are forked from a warm server (worker_fork_server.py),
so their start-up is a fork and a model load rather than ~5 s of imports each; the forked server is
part of the sampled process tree.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PLOT = str(REPO_ROOT / "docs" / "perf" / "scaling.png")
DEFAULT_WORKDIR = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "favor", "bench-scaling")
MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class ScalingBenchConfig:
    sizes: tuple[int, ...] = (10, 100, 1000)  # corpus sizes (videos), run in ascending order
    min_duration_s: float = 4.0
    max_duration_s: float = 8.0  # short clips, long enough that the job's fixed costs (worker start-up, one model
    # load per worker, commit, index maintenance: ~1-2 s with forked workers) are a small share of the 100-video run
    seed: int = 11
    preset: str = "demo"  # model preset (or checkpoint dir) the index job encodes with
    workers: int | None = None  # SDK worker processes; None: one per core
    workdir: str = DEFAULT_WORKDIR  # corpus cache and scratch stores
    plot: str | None = DEFAULT_PLOT  # PNG path; None or "": no plot
    sample_interval_s: float = 0.2  # memory sampler period
    baseline_size: int | None = None  # None: 100 when among sizes, else the smallest
    target_throughput_band: float = 0.15  # largest / baseline video-s per wall-s within 1 +- this (linear in video-s)
    target_rss_ratio: float = 1.20  # largest / baseline peak tree RSS, at most
    synth_workers: int = 2  # threads rendering the corpus


# ---- memory of a process tree ------------------------------------------------------------------


@dataclass
class TreeMemory:
    peak_rss_bytes: int = 0  # max over samples of the RSS summed over the tree
    peak_pss_bytes: int = 0  # max over samples of the PSS summed over the tree
    peak_root_rss_bytes: int = 0  # max RSS of the root (driver) process alone
    peak_processes: int = 0  # most processes seen in one sample
    samples: int = 0


class ProcessTreeSampler:
    """Samples the memory of a process and all its descendants in a daemon thread until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="favor-bench-rss", daemon=True)
        self.memory = TreeMemory()

    def __enter__(self) -> "ProcessTreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> TreeMemory:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.memory

    def sample(self) -> None:
        psutil = self._psutil
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:  # the root has exited
            return
        rss = pss = root_rss = 0
        seen = 0
        for process in processes:
            try:
                info = process.memory_full_info()  # /proc/PID/smaps_rollup: rss, pss
            except psutil.AccessDenied:
                try:
                    info = process.memory_info()
                except psutil.Error:
                    continue
            except psutil.Error:  # exited between listing and reading
                continue
            seen += 1
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            if process.pid == self._root.pid:
                root_rss = info.rss
        if not seen:
            return
        m = self.memory
        m.samples += 1
        m.peak_rss_bytes = max(m.peak_rss_bytes, rss)
        m.peak_pss_bytes = max(m.peak_pss_bytes, pss)
        m.peak_root_rss_bytes = max(m.peak_root_rss_bytes, root_rss)
        m.peak_processes = max(m.peak_processes, seen)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval_s)
        self.sample()


# ---- corpora ------------------------------------------------------------------------------------


def _read_manifest_if_complete(directory: str) -> list[dict] | None:
    """The manifest's records when it exists (written last, so the corpus is complete) and every file is there."""
    from favor_ops.corpus.manifest import read_manifest

    if not os.path.exists(os.path.join(directory, "manifest.jsonl")):
        return None
    records = read_manifest(directory)
    if all(os.path.exists(os.path.join(directory, r["file"])) for r in records):
        return records
    return None


def corpus_root(cfg: ScalingBenchConfig) -> str:
    return os.path.join(cfg.workdir, "corpora", f"seed{cfg.seed}-d{cfg.min_duration_s:g}-{cfg.max_duration_s:g}")


def ensure_corpora(cfg: ScalingBenchConfig, log=lambda message: None) -> dict[int, tuple[str, list[dict]]]:
    """size -> (archive dir, manifest records): a cached pool of max(sizes) clips and one hard-linked subset per size."""
    from favor_ops.corpus.manifest import write_manifest
    from favor_ops.corpus.synth import synthesize_corpus

    root = corpus_root(cfg)
    pool = os.path.join(root, "pool")
    needed = max(cfg.sizes)
    records = _read_manifest_if_complete(pool)
    if records is None or len(records) < needed:
        log(f"synthesizing {needed} clips of {cfg.min_duration_s:g}-{cfg.max_duration_s:g} s (seed {cfg.seed}) into {pool} ...")
        started = time.perf_counter()
        shutil.rmtree(pool, ignore_errors=True)
        records = synthesize_corpus(pool, needed, cfg.seed, include_bad=False, min_duration_s=cfg.min_duration_s,
                                    max_duration_s=cfg.max_duration_s, progress=False, workers=cfg.synth_workers)
        log(f"  corpus written in {time.perf_counter() - started:.0f} s")
    else:
        log(f"reusing the cached corpus {pool} ({len(records)} clips)")
    out = {}
    for size in cfg.sizes:
        directory = os.path.join(root, f"size-{size}")
        subset = records[:size]
        cached = _read_manifest_if_complete(directory)
        if cached is None or [r["sha256"] for r in cached] != [r["sha256"] for r in subset]:
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            for record in subset:
                source, target = os.path.join(pool, record["file"]), os.path.join(directory, record["file"])
                try:
                    os.link(source, target)
                except OSError:  # another file system, or no hard links: copy
                    shutil.copy2(source, target)
            write_manifest(directory, subset)
        out[size] = (directory, subset)
    return out


# ---- one index run in its own driver process --------------------------------------------------------


def _child_main(config_json: str, out_path: str) -> int:
    """Driver process: run the index job, write its summary as JSON to out_path. Like `favor index`, it starts the
    warm worker server first thing (it imports while this process does; the job's clock starts after both)."""
    from pipelines.index.worker_fork_server import shared_fork_server

    shared_fork_server()
    from pipelines.index.job import IndexJobConfig, run_index_job

    fields = json.loads(config_json)
    summary = run_index_job(IndexJobConfig(**fields), progress=None)
    with open(out_path, "w") as handle:
        json.dump(summary.as_dict(), handle, default=str)
    return 0


def index_in_subprocess(archive: str, db: str, cfg: ScalingBenchConfig, scratch: str) -> tuple[dict, TreeMemory, float]:
    """Run the index job in a fresh driver process; returns (summary dict, memory of its process tree, process wall s)."""
    job = {"source": archive, "db": db, "model": cfg.preset, "num_workers": cfg.workers, "device": "cpu"}
    out_path, log_path = os.path.join(scratch, "summary.json"), os.path.join(scratch, "driver.log")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "pipelines.bench.scaling_bench", "--index-child", json.dumps(job), out_path]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT))
        with ProcessTreeSampler(child.pid, cfg.sample_interval_s) as sampler:
            code = child.wait()
    wall_s = time.perf_counter() - started
    if code != 0 or not os.path.exists(out_path):
        with open(log_path, errors="replace") as handle:
            tail = handle.read()[-3000:]
        raise RuntimeError(f"index job for {archive} exited with {code}:\n{tail}")
    with open(out_path) as handle:
        return json.load(handle), sampler.memory, wall_s


# ---- the benchmark --------------------------------------------------------------------------------


def choose_baseline(sizes: tuple[int, ...], requested: int | None) -> int:
    if requested is not None:
        if requested not in sizes:
            raise ValueError(f"--baseline-size {requested} is not one of --sizes {','.join(map(str, sizes))}")
        return requested
    return 100 if 100 in sizes else min(sizes)


def size_result(size: int, records: list[dict], summary: dict, memory: TreeMemory, process_wall_s: float) -> dict:
    wall_s = float(summary["wall_s"])
    video_s = float(summary["video_seconds"])
    return {
        "size": size,
        "videos": len(records),
        "manifest_seconds": float(sum(r["duration_s"] for r in records)),
        "manifest_still_images": sum(1 for r in records if r.get("kind") == "still_image"),
        "indexed": int(summary["indexed"]),
        "failed": int(summary["failed"]),
        "windows": int(summary["windows_written"]),
        "video_seconds": video_s,
        "wall_s": wall_s,
        "process_wall_s": process_wall_s,
        "video_s_per_wall_s": video_s / wall_s if wall_s > 0 else 0.0,
        "videos_per_min": 60.0 * int(summary["indexed"]) / wall_s if wall_s > 0 else 0.0,
        "peak_rss_mib": memory.peak_rss_bytes / MIB,
        "peak_pss_mib": memory.peak_pss_bytes / MIB,
        "peak_driver_rss_mib": memory.peak_root_rss_bytes / MIB,
        "peak_processes": memory.peak_processes,
        "memory_samples": memory.samples,
        "model_version": summary.get("model_version", ""),
        "phase_s": summary.get("phase_s", {}),  # catalog / pipeline / commit / maintenance wall seconds
        "worker_start": summary.get("worker_start", ""),
        "failures": summary.get("failures", [])[:5],
        "load_average_1m": os.getloadavg()[0],
    }


def compare(results: list[dict], baseline_size: int, cfg: ScalingBenchConfig) -> dict:
    by_size = {r["size"]: r for r in results}
    base, largest = by_size[baseline_size], by_size[max(by_size)]
    throughput_ratio = largest["video_s_per_wall_s"] / base["video_s_per_wall_s"] if base["video_s_per_wall_s"] else 0.0
    rss_ratio = largest["peak_rss_mib"] / base["peak_rss_mib"] if base["peak_rss_mib"] else 0.0
    pss_ratio = largest["peak_pss_mib"] / base["peak_pss_mib"] if base["peak_pss_mib"] else 0.0
    checks = {
        "throughput": abs(throughput_ratio - 1.0) <= cfg.target_throughput_band,
        "rss": rss_ratio <= cfg.target_rss_ratio,
        "no_failures": all(r["failed"] == 0 for r in results),
    }
    return {
        "baseline_size": baseline_size,
        "largest_size": largest["size"],
        "throughput_ratio": throughput_ratio,
        "rss_ratio": rss_ratio,
        "pss_ratio": pss_ratio,
        "target_throughput_band": cfg.target_throughput_band,
        "target_rss_ratio": cfg.target_rss_ratio,
        "checks": checks,
        "passed": all(checks.values()),
    }


def save_plot(results: list[dict], path: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    sizes = [r["size"] for r in results]
    fig, (ax_wall, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    ax_wall.plot(sizes, [r["wall_s"] for r in results], "o-", label="index job wall time")
    ax_wall.set_xscale("log")
    ax_wall.set_yscale("log")
    ax_wall.set_xlabel("corpus size (videos)")
    ax_wall.set_ylabel("wall time (s)")
    ax_wall.grid(True, which="both", alpha=0.3)
    for r in results:
        ax_wall.annotate(f"{r['video_s_per_wall_s']:.2f} video-s/s", (r["size"], r["wall_s"]), textcoords="offset points",
                         xytext=(4, -12), fontsize=8)
    ax_mem.plot(sizes, [r["peak_rss_mib"] for r in results], "o-", label="RSS, summed over the tree")
    ax_mem.plot(sizes, [r["peak_pss_mib"] for r in results], "s--", label="PSS, summed over the tree")
    ax_mem.plot(sizes, [r["peak_driver_rss_mib"] for r in results], "^:", label="driver RSS")
    ax_mem.set_xscale("log")
    ax_mem.set_ylim(bottom=0)
    ax_mem.set_xlabel("corpus size (videos)")
    ax_mem.set_ylabel("peak memory (MiB)")
    ax_mem.grid(True, which="both", alpha=0.3)
    ax_mem.legend(fontsize=8, loc="lower right")
    for ax in (ax_wall, ax_mem):
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    walls = [r["wall_s"] for r in results if r["wall_s"] > 0]
    if walls:  # whole decades, so the log axis has labelled ticks
        ax_wall.set_ylim(10 ** math.floor(math.log10(min(walls))), 10 ** math.ceil(math.log10(max(walls)) + 1e-9))
    ax_wall.yaxis.set_major_formatter(ScalarFormatter())
    ax_wall.yaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_scaling_bench(cfg: ScalingBenchConfig = ScalingBenchConfig(), progress: bool = True) -> dict:
    """Run the benchmark; returns a JSON-able dict (see module docstring)."""
    from pipelines.index.runner_options import default_num_workers

    sizes = tuple(sorted(set(cfg.sizes)))
    if not sizes or min(sizes) < 1:
        raise ValueError("--sizes must be positive whole numbers, e.g. 10,100,1000")
    if not 0 < cfg.min_duration_s <= cfg.max_duration_s:
        raise ValueError(f"need 0 < --min-duration ({cfg.min_duration_s:g} s) <= --max-duration ({cfg.max_duration_s:g} s)")
    cfg = ScalingBenchConfig(**{**asdict(cfg), "sizes": sizes})
    baseline = choose_baseline(sizes, cfg.baseline_size)
    log = (lambda message: print(f"bench scaling: {message}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    workers = cfg.workers or default_num_workers()
    corpora = ensure_corpora(cfg, log)
    os.makedirs(cfg.workdir, exist_ok=True)
    load_before = os.getloadavg()[0]
    results = []
    for size in sizes:
        archive, records = corpora[size]
        scratch = tempfile.mkdtemp(prefix=f"run-{size}-", dir=cfg.workdir)
        try:
            log(f"index job: {size} videos ({sum(r['duration_s'] for r in records):.0f} s of media), preset "
                f"{cfg.preset}, {workers} workers ...")
            summary, memory, process_wall_s = index_in_subprocess(archive, os.path.join(scratch, "db"), cfg, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        result = size_result(size, records, summary, memory, process_wall_s)
        log(f"  {result['wall_s']:.1f} s, {result['video_s_per_wall_s']:.2f} video-s/s, "
            f"peak tree RSS {result['peak_rss_mib']:.0f} MiB ({result['peak_processes']} processes)")
        results.append(result)
    comparison = compare(results, baseline, cfg)
    plot = None
    if cfg.plot:
        title = (f"favor bench scaling: index job, preset {cfg.preset}, {workers} workers, clips "
                 f"{cfg.min_duration_s:g}-{cfg.max_duration_s:g} s, {os.cpu_count()} cores")
        plot = save_plot(results, cfg.plot, title)
    return {
        "benchmark": "scaling",
        "config": asdict(cfg),
        "workers": workers,
        "results": results,
        "comparison": comparison,
        "passed": comparison["passed"],
        "plot": plot,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1m_before": load_before,
        "load_average_1m_after": os.getloadavg()[0],
    }


def format_report(result: dict) -> str:
    cfg, cmp_ = result["config"], result["comparison"]
    ok = {True: "PASS", False: "FAIL"}
    lines = [
        f"scaling benchmark: index job, preset {cfg['preset']}, {result['workers']} worker processes, clips "
        f"{cfg['min_duration_s']:g}-{cfg['max_duration_s']:g} s (seed {cfg['seed']}), {result['cpu_count']} cores "
        f"(load average {result['load_average_1m_before']:.1f} -> {result['load_average_1m_after']:.1f})",
        f"  {'videos':>7}{'media s':>9}{'indexed s':>10}{'failed':>7}{'windows':>8}{'wall s':>9}{'video-s/s':>10}"
        f"{'videos/min':>11}{'RSS MiB':>9}{'PSS MiB':>9}{'driver':>8}{'procs':>6}",
    ]
    for r in result["results"]:
        lines.append(
            f"  {r['videos']:>7}{r['manifest_seconds']:>9.0f}{r['video_seconds']:>10.1f}{r['failed']:>7}{r['windows']:>8}"
            f"{r['wall_s']:>9.1f}{r['video_s_per_wall_s']:>10.2f}{r['videos_per_min']:>11.1f}{r['peak_rss_mib']:>9.0f}"
            f"{r['peak_pss_mib']:>9.0f}{r['peak_driver_rss_mib']:>8.0f}{r['peak_processes']:>6}")
    for r in result["results"]:
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r.get("phase_s", {}).items())
        lines.append(f"  {r['videos']:>7} videos: {r.get('worker_start') or '?'} workers; phases (s): {phases}")
    lines += [
        f"  {cmp_['largest_size']} vs {cmp_['baseline_size']} videos: throughput ratio {cmp_['throughput_ratio']:.3f} "
        f"(target 1 +- {cmp_['target_throughput_band']:.2f}: {ok[cmp_['checks']['throughput']]}), peak tree RSS ratio "
        f"{cmp_['rss_ratio']:.3f} (target <= {cmp_['target_rss_ratio']:.2f}: {ok[cmp_['checks']['rss']]}), "
        f"PSS ratio {cmp_['pss_ratio']:.3f}",
        f"  failures: {'none' if cmp_['checks']['no_failures'] else 'SOME (see --json)'}; "
        f"overall {ok[result['passed']]}" + (f"; plot: {result['plot']}" if result["plot"] else ""),
    ]
    return "\n".join(lines)


def parse_sizes(text) -> tuple[int, ...]:
    if isinstance(text, (list, tuple)):
        return tuple(int(s) for s in text)
    try:
        sizes = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--sizes must be comma-separated whole numbers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--sizes must be positive whole numbers, got {text!r}")
    return sizes


def run_from_args(args) -> dict:
    """Registry entry point for `favor bench scaling`."""
    defaults = ScalingBenchConfig()
    plot = getattr(args, "plot", None)
    plot = defaults.plot if plot is None else (plot or None)  # "" turns the plot off
    cfg = ScalingBenchConfig(
        sizes=parse_sizes(getattr(args, "sizes", None) or defaults.sizes),
        min_duration_s=getattr(args, "min_duration", None) or defaults.min_duration_s,
        max_duration_s=getattr(args, "max_duration", None) or defaults.max_duration_s,
        preset=getattr(args, "preset", None) or defaults.preset,
        workers=getattr(args, "workers", None),
        workdir=getattr(args, "workdir", None) or defaults.workdir,
        plot=plot,
        baseline_size=getattr(args, "baseline_size", None),
    )
    result = run_scaling_bench(cfg, progress=not getattr(args, "json", False))
    result["report"] = format_report(result)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--index-child":
        sys.exit(_child_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: favor bench scaling --sizes 10,100,1000 (this module's main is the index job's driver process)")
