"""A partition indexes its own arrivals and nothing else: the Beam index job lists only the files whose
mtime falls in the run's arrival window (IndexJobConfig.modified_between_s). One day's partition
indexes that day's files; a range of days is still ONE run and ONE Beam job.

Corpus: the session's synthetic corpus (6 clips + 4 bad inputs, all on ARRIVAL_DAY), with two clips
and one bad input moved to the next day by os.utime. Expectations come from the manifest."""

import os
import shutil
import tempfile

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.index_assets import video_catalog, window_tokens
from favor_ops.store.feature_store import FeatureStore
from tests.assets.conftest import ARRIVAL_DAY, ARRIVAL_TIME_S, expected_n_windows
from tests.assets.test_materialize_graph import graph_resources

NEXT_DAY = "2026-03-15"
NEXT_DAY_TIME_S = ARRIVAL_TIME_S + 24 * 3600.0
MOVED_GOOD, MOVED_BAD = 2, 1  # files moved to NEXT_DAY


def by_partition(result, asset_name: str) -> dict[str, dict]:
    return {
        m.partition: {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node(asset_name)
    }


@pytest.fixture(scope="module")
def two_day_runs(asset_corpus, tmp_path_factory):
    """Index NEXT_DAY alone, then the range ARRIVAL_DAY..NEXT_DAY in one run; what each reported and the store."""
    root = tmp_path_factory.mktemp("partition_filter")
    archive, db = root / "archive", root / "db"
    moved = asset_corpus.good()[:MOVED_GOOD] + asset_corpus.bad()[:MOVED_BAD]
    with pytest.MonkeyPatch.context() as patch:
        for name in ("dagster_home", "tmp"):
            (root / name).mkdir()
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        patch.setenv("TMPDIR", str(root / "tmp"))
        patch.setattr(tempfile, "tempdir", None)
        shutil.copytree(asset_corpus.archive, archive, copy_function=shutil.copy2)
        for record in moved:
            os.utime(archive / record["file"], (NEXT_DAY_TIME_S, NEXT_DAY_TIME_S))
        instance = DagsterInstance.ephemeral()
        resources = graph_resources(archive, db, root / "answers")
        one_day = materialize([video_catalog, window_tokens], resources=resources, instance=instance,
                              partition_key=NEXT_DAY)
        store_after_one_day = {
            "videos": FeatureStore.open(str(db)).videos_df(),
            "failures": FeatureStore.open(str(db)).failures_df(),
            "windows": FeatureStore.open(str(db)).counts()["windows"],
        }
        tags = {ASSET_PARTITION_RANGE_START_TAG: ARRIVAL_DAY, ASSET_PARTITION_RANGE_END_TAG: NEXT_DAY}
        both_days = materialize([video_catalog, window_tokens], resources=resources, instance=instance, tags=tags)
    return {"one_day": one_day, "after_one_day": store_after_one_day, "both_days": both_days, "db": db,
            "archive": archive, "moved": moved}


def test_one_days_partition_indexes_only_that_days_files(two_day_runs, asset_corpus):
    result, store = two_day_runs["one_day"], two_day_runs["after_one_day"]
    assert result.success
    archive, moved = two_day_runs["archive"], two_day_runs["moved"]
    moved_good = [r for r in moved if r["kind"] != "bad"]
    moved_bad = [r for r in moved if r["kind"] == "bad"]

    videos = store["videos"]
    indexed = videos[videos["status"] == "indexed"]
    assert sorted(indexed["uri"]) == sorted(str(archive / r["file"]) for r in moved_good)
    assert set(videos["uri"]) <= {str(archive / r["file"]) for r in moved}  # no row for any other day's file
    assert store["windows"] == sum(expected_n_windows(r) for r in moved_good)
    assert sorted(set(store["failures"]["uri"])) == sorted(str(archive / r["file"]) for r in moved_bad)

    (catalog,) = by_partition(result, "video_catalog").values()
    (tokens,) = by_partition(result, "window_tokens").values()
    assert tokens["listed"] == catalog["files"] == len(moved) == 3  # the job listed the window, not the archive
    assert catalog["archive_files_total"] == len(asset_corpus.records) == 10
    assert tokens["videos_indexed"] == len(moved_good)
    assert tokens["failed_files"] == len(moved_bad)
    assert tokens["windows_written"] == store["windows"]
    assert tokens["arrival_window"] == catalog["arrival_window"]
    assert tokens["arrival_window"].startswith(f"{NEXT_DAY} (mtime in [{NEXT_DAY}T00:00:00+00:00")


def test_a_range_of_days_is_one_run_and_one_index_job(two_day_runs, asset_corpus):
    result = two_day_runs["both_days"]
    assert result.success
    tokens = by_partition(result, "window_tokens")
    assert sorted(tokens) == [ARRIVAL_DAY, NEXT_DAY]  # one run materialised both partitions
    assert len({m["index_run_id"] for m in tokens.values()}) == 1  # with one Beam job
    metadata = tokens[ARRIVAL_DAY]
    assert metadata["listed"] == len(asset_corpus.records) == 10  # the whole range's files
    assert metadata["videos_indexed"] == len(asset_corpus.good()) - MOVED_GOOD  # the rest; NEXT_DAY's are done
    assert metadata["skipped"] == len(two_day_runs["moved"])

    store = FeatureStore.open(str(two_day_runs["db"]))
    videos = store.videos_df()
    assert int((videos["status"] == "indexed").sum()) == len(asset_corpus.good()) == 6
    assert store.counts()["windows"] == asset_corpus.expected_windows() == 11
    assert len(set(store.failures_df()["uri"])) == len(asset_corpus.bad()) == 4
