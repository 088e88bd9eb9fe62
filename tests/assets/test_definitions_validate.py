"""The code location and the instance config load as `dagster dev` loads them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")


def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home), TMPDIR=str(tmp_path))
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Validation successful for code location favor" in output
    assert "All code locations passed validation" in output


def test_repo_dagster_yaml_queues_runs_with_one_gpu_run_at_a_time(tmp_path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [("favor/gpu", 1)]
        assert instance.storage_directory() == str(tmp_path / "storage")
    finally:
        instance.dispose()


def test_definitions_hold_the_graph_its_job_schedule_and_sensor():
    from assets.definitions import defs

    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "video_catalog", "window_tokens", "search_index", "qa_answers"}
    assert graph.get(AssetKey("window_tokens")).parent_keys == {AssetKey("video_catalog")}
    assert graph.get(AssetKey("search_index")).parent_keys == {AssetKey("window_tokens")}
    assert graph.get(AssetKey("qa_answers")).parent_keys == {AssetKey("search_index")}
    job = defs.resolve_job_def("favor_index_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {"search_index", "qa_answers"}
    assert {c.name for c in graph.asset_check_keys} >= {"qa_failure_rate_below_threshold"}
    assert "qa" in defs.resources
    assert {s.name for s in repository.schedule_defs} == {"nightly_index_schedule"}
    assert {s.name for s in repository.sensor_defs} == {"archive_arrivals_sensor"}
    window_tokens = defs.get_assets_def("window_tokens")
    assert window_tokens.op.tags["favor/gpu"] == "true"
    assert set(defs.get_assets_def("window_tokens").specs_by_key[window_tokens.key].kinds) == {"beam", "pytorch", "lancedb"}
