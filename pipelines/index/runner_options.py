"""Which Beam runner runs the index job, and with what options.

`local` (the default) is Beam's portable FnApiRunner in multi-process mode with
one SDK worker process per core: the runner is pinned explicitly, so nothing
ever tries to download the Prism runner (Beam's DirectRunner would). Any other
`--runner` name (DataflowRunner, FlinkRunner, SparkRunner, ...) and every extra
`--flag=value` pass straight through to Beam's PipelineOptions. The Dask runner
is refused: it silently drops outputs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

LOCAL_RUNNER = "local"
REFUSED_RUNNERS = {"daskrunner": "Beam's Dask runner silently drops outputs; use local, Flink, Spark or Dataflow"}


def is_local_runner(runner: str | None) -> bool:
    """`local` (the default) or Beam's FnApiRunner named explicitly."""
    return (runner or LOCAL_RUNNER).strip().lower() in (LOCAL_RUNNER, "fnapirunner")


def forks_workers(runner: str | None, running_mode: str, fork_workers: bool = True) -> bool:
    """Whether a job's SDK workers are forked from the warm worker server (pipelines.index.worker_fork_server):
    local multi-process runs where fork is supported, unless asked not to."""
    from pipelines.index.worker_fork_server import fork_supported

    return fork_workers and is_local_runner(runner) and running_mode == "multi_processing" and fork_supported()


def default_num_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def quiet_beam_logging() -> None:
    """Drop Beam's known-harmless warnings from the driver's log."""
    from pipelines.cli.logging_setup import configure_logging

    configure_logging()


def make_runner(runner: str = LOCAL_RUNNER, running_mode: str = "multi_processing", worker_command: str | None = None):
    """A runner object for `local`, else the runner name for Beam to resolve.

    Local multi-process runs start `pipelines.index.sdk_worker` processes (Beam's
    SDK worker without its INFO start-up chatter), or `worker_command` when given
    (the warm workers of worker_fork_server.py).
    """
    name = (runner or LOCAL_RUNNER).strip()
    key = name.lower()
    if not key.endswith("runner") and key != LOCAL_RUNNER:
        key += "runner"
    if key in REFUSED_RUNNERS:
        raise ValueError(f"runner {name!r} is not supported: {REFUSED_RUNNERS[key]}")
    if key in (LOCAL_RUNNER, "fnapirunner"):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        from apache_beam.transforms import environments

        if running_mode == "multi_processing":
            command = worker_command or f"{sys.executable} -m pipelines.index.sdk_worker"
            return FnApiRunner(default_environment=environments.SubprocessSDKEnvironment.from_command_string(command))
        return FnApiRunner()
    return name


def make_pipeline_options(
    runner: str = LOCAL_RUNNER,
    beam_args: Sequence[str] = (),
    num_workers: int | None = None,
    running_mode: str = "multi_processing",
):
    """PipelineOptions for the job; local runs get `running_mode` with `num_workers` SDK workers."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if is_local_runner(runner):
        workers = num_workers or default_num_workers()
        # multi_processing: the runner object already carries the worker-process environment (make_runner);
        # naming the mode here would make Beam replace it with its stock, chatty worker command.
        mode = "in_memory" if running_mode == "multi_processing" else running_mode
        args += [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
        if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
            args.append("--default_sdk_harness_log_level=WARNING")  # worker processes: no INFO chatter
    return PipelineOptions(args)
