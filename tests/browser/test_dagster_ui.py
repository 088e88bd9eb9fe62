"""End to end through `dagster dev` (one process per module): a run of the index graph launched
through the webserver's GraphQL API indexes the corpus into LanceDB, and the asset graph page shows
the three assets in headless Chromium."""

import shutil
from pathlib import Path

import pytest

from favor_ops.corpus.manifest import read_manifest
from favor_ops.corpus.synth import synthesize_corpus
from favor_ops.store.feature_store import FeatureStore
from tests.assets.conftest import (
    ARRIVAL_DAY,
    ARRIVAL_TIME_S,
    CORPUS_MAX_DURATION_S,
    CORPUS_SEED,
    CORPUS_VIDEOS,
    TEST_MODEL,
    expected_n_windows,
    set_mtimes,
)
from tests.assets.dagster_dev_server import start_dagster_dev

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 300.0
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ASSET_NAMES = ("video_catalog", "window_tokens", "search_index", "qa_answers")
PAGE_TIMEOUT_MS = 60_000
CHECKS = [("window_tokens", "windows_match_videos"), ("window_tokens", "window_keys_unique"),
          ("window_tokens", "failure_rate_below_threshold"), ("search_index", "indexes_cover_windows"),
          ("search_index", "retrieval_quality"), ("qa_answers", "qa_failure_rate_below_threshold")]
CHECK_EXECUTIONS = """query($asset: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, limit: 1) { runId status }
}"""


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dagster_dev")
    archive = root / "archive"
    synthesize_corpus(archive, CORPUS_VIDEOS, CORPUS_SEED, include_bad=True,
                      max_duration_s=CORPUS_MAX_DURATION_S, progress=False)
    eval_set = root / "eval"  # the retrieval_quality check's evaluation set: the same clips with their manifest
    shutil.copytree(archive, eval_set)
    shutil.move(archive / "manifest.jsonl", root / "manifest.jsonl")
    set_mtimes(archive, ARRIVAL_TIME_S)
    db = root / "db"
    server = start_dagster_dev(root, {"FAVOR_ARCHIVE_URI": str(archive), "FAVOR_DB_URI": str(db),
                                      "FAVOR_MODEL": TEST_MODEL, "FAVOR_EVAL_CORPUS": str(eval_set)})
    server.archive, server.db, server.records = archive, db, read_manifest(root)
    try:
        yield server
    finally:
        server.stop()


def test_run_launched_through_graphql_indexes_the_corpus(dev_server):
    run_config = {  # the launchpad's YAML: one Beam thread; R@k of an untrained model is chance, so no floor
        "resources": {"beam": {"config": {"running_mode": "multi_threading", "num_workers": 1}}},
        "ops": {"search_index_retrieval_quality": {"config": {"min_recall": 0.0}}},
    }
    run = dev_server.launch_run("favor_index_job", run_config, {"dagster/partition": ARRIVAL_DAY})
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["favor/gpu"] == "true"  # the GPU concurrency limit applies to this run
    assert run["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")  # QueuedRunCoordinator

    finished = dev_server.wait_for_run(run["runId"], RUN_TIMEOUT_S)
    assert finished["status"] == "SUCCESS", dev_server.log_tail()

    good = [r for r in dev_server.records if r["kind"] != "bad"]
    store = FeatureStore.open(str(dev_server.db))
    videos = store.videos_df()
    assert int((videos["status"] == "indexed").sum()) == len(good) == 6
    assert store.counts()["windows"] == sum(expected_n_windows(r) for r in good) == 11
    assert len(store.failures_df()) == len(dev_server.records) - len(good) == 4
    assert [i.name for i in store.table("windows").list_indices()] == ["transcript_idx"]  # search_index ran

    outcomes = {}
    for asset_name, check_name in CHECKS:
        executions = dev_server.graphql(CHECK_EXECUTIONS, {"asset": {"path": [asset_name]}, "check": check_name})
        (latest,) = executions["assetCheckExecutions"]
        assert latest["runId"] == run["runId"]
        outcomes[check_name] = latest["status"]
    assert outcomes == {check_name: "SUCCEEDED" for _, check_name in CHECKS}


def test_asset_graph_page_shows_the_three_assets(dev_server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    screenshot = tmp_path / "asset_graph.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(dev_server.url + "/asset-groups", wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
            skip = page.get_by_role("button", name="Skip")  # the first-visit community dialog
            try:
                skip.first.wait_for(timeout=5_000)
                skip.first.click()
            except sync_api.TimeoutError:
                pass
            for name in ASSET_NAMES:
                page.get_by_text(name, exact=True).first.wait_for(timeout=PAGE_TIMEOUT_MS)
            page.screenshot(path=str(screenshot), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    for name in ASSET_NAMES:
        assert name in text
