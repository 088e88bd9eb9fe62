"""Runner choice and PipelineOptions of the index job (no pipeline is run)."""

from __future__ import annotations

import os
import sys

import pytest
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import EmbeddedPythonEnvironment, SubprocessSDKEnvironment

from pipelines.index.runner_options import LOCAL_RUNNER, default_num_workers, make_pipeline_options, make_runner


@pytest.mark.parametrize("name", ["DaskRunner", "dask", "daskrunner", " Dask "])
def test_the_dask_runner_is_refused_with_the_reason(name):
    with pytest.raises(ValueError, match="drops outputs"):
        make_runner(name)


@pytest.mark.parametrize("name", [LOCAL_RUNNER, "FnApiRunner", "", None])
def test_local_is_the_fn_api_runner_object(name):
    assert isinstance(make_runner(name), FnApiRunner)


@pytest.mark.parametrize("name", ["DataflowRunner", "FlinkRunner", "SparkRunner"])
def test_other_runners_pass_through_by_name(name):
    assert make_runner(name) == name


def test_multi_processing_runs_favor_sdk_worker_processes():
    runner = make_runner(LOCAL_RUNNER, "multi_processing")
    environment = runner._default_environment  # what each worker process is started with
    assert isinstance(environment, SubprocessSDKEnvironment)
    assert environment.command_string == f"{sys.executable} -m pipelines.index.sdk_worker"


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading"])
def test_other_local_modes_run_in_the_driver(mode):
    assert isinstance(make_runner(LOCAL_RUNNER, mode)._default_environment, EmbeddedPythonEnvironment)


def test_local_options_ask_for_the_workers_and_quiet_worker_logs():
    # multi_processing is carried by the runner's subprocess environment (see make_runner); the options
    # only say how many workers, in Beam's default mode so Beam keeps that environment.
    options = make_pipeline_options(LOCAL_RUNNER, [], num_workers=2)
    direct = options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("in_memory", 2)
    assert options.get_all_options()["default_sdk_harness_log_level"] == "WARNING"
    louder = make_pipeline_options(LOCAL_RUNNER, ["--default_sdk_harness_log_level=INFO"], num_workers=2)
    assert louder.get_all_options()["default_sdk_harness_log_level"] == "INFO"  # a user's choice wins


def test_default_workers_are_one_per_usable_core():
    assert default_num_workers() == len(os.sched_getaffinity(0))
    assert make_pipeline_options(LOCAL_RUNNER).view_as(DirectOptions).direct_num_workers == default_num_workers()


def test_explicit_local_modes_are_passed_to_beam():
    threaded = make_pipeline_options(LOCAL_RUNNER, [], 3, "multi_threading").view_as(DirectOptions)
    assert (threaded.direct_running_mode, threaded.direct_num_workers) == ("multi_threading", 3)


def test_remote_runner_options_pass_through_untouched():
    options = make_pipeline_options("FlinkRunner", ["--runner=FlinkRunner", "--flink_master=localhost:8081",
                                                    "--parallelism=3"], num_workers=8)
    everything = options.get_all_options(retain_unknown_options=True)
    assert everything["flink_master"] == "localhost:8081" and everything["parallelism"] == 3
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    direct = options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("in_memory", 1)  # Beam's defaults: not ours


def test_the_cli_refuses_dask_with_exit_2_and_one_line(tmp_path, capsys):
    from pipelines.cli.main import main

    archive = tmp_path / "archive"
    archive.mkdir()
    code = main(["index", str(archive), "--db", str(tmp_path / "db"), "--model", "tiny", "--runner", "DaskRunner"])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert last_line.startswith("favor: error: runner 'DaskRunner' is not supported: Beam's Dask runner")
