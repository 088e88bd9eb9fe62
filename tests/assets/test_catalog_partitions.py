"""video_catalog sees exactly its arrival window: one day, a single-run range of days, and the
first partition taking everything older. Media-named files with arbitrary bytes: the catalog only
lists and hashes, nothing is decoded."""

import datetime as dt
import hashlib
import os

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.archive_listing import list_archive
from assets.index_assets import video_catalog
from assets.partitions import arrival_window, first_partition_key, partition_key_of, previous_day_key
from assets.resources import ArchiveResource, BeamRunnerResource, LanceStoreResource, ModelResource
from tests.assets.conftest import TEST_MODEL


def utc_s(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


ARRIVALS = {  # file -> mtime (UTC)
    "old.mp4": utc_s(2025, 6, 1, 8, 0),  # before the first partition (2026-01-01)
    "d13.mp4": utc_s(2026, 3, 13, 12, 0),
    "d14_first.webm": utc_s(2026, 3, 14, 0, 0, 0),  # a window is [start, end)
    "d14_last.wav": utc_s(2026, 3, 14, 23, 59, 59),
    "d15.mp4": utc_s(2026, 3, 15, 0, 0, 0),
    "notes.txt": utc_s(2026, 3, 14, 9, 0),  # not media: never listed
}


@pytest.fixture
def dated_archive(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name, mtime in ARRIVALS.items():
        path = archive / name
        path.write_bytes(name.encode() * 3)  # distinct content per file
        os.utime(path, (mtime, mtime))
    return archive


def catalog_materializations(archive, tmp_path, **kwargs) -> dict[str, dict]:
    """partition key -> metadata of each video_catalog materialization of one run."""
    resources = {
        "archive": ArchiveResource(uri=str(archive)),
        "store": LanceStoreResource(uri=str(tmp_path / "db")),
        "model": ModelResource(spec=TEST_MODEL, device="cpu"),
    }
    result = materialize([video_catalog], resources=resources, instance=DagsterInstance.ephemeral(), **kwargs)
    return {
        m.partition: {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node("video_catalog")
    }


def catalog_metadata(archive, tmp_path, partition_key: str) -> dict:
    (metadata,) = catalog_materializations(archive, tmp_path, partition_key=partition_key).values()
    return metadata


def test_one_day_partition_catalogs_that_days_files_only(dated_archive, tmp_path, dagster_env):
    metadata = catalog_metadata(dated_archive, tmp_path, partition_key="2026-03-14")
    assert metadata["files"] == 2
    assert metadata["new_or_changed"] == 2
    assert metadata["archive_files_total"] == 5
    assert metadata["already_indexed"] == 0 and metadata["unreadable"] == 0
    assert f"`{dated_archive / 'd14_first.webm'}`" in metadata["new_or_changed_files"]
    assert f"`{dated_archive / 'd14_last.wav'}`" in metadata["new_or_changed_files"]
    assert "d15.mp4" not in metadata["new_or_changed_files"]


def test_single_run_range_catalogs_every_day_of_the_range(dated_archive, tmp_path, dagster_env):
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2026-03-13", ASSET_PARTITION_RANGE_END_TAG: "2026-03-15"}
    by_partition = catalog_materializations(dated_archive, tmp_path, tags=tags)
    assert sorted(by_partition) == ["2026-03-13", "2026-03-14", "2026-03-15"]  # one run materialises all three
    for metadata in by_partition.values():
        assert metadata["files"] == 4  # d13, d14 x2, d15: the run's whole window
        assert metadata["arrival_window"].startswith("2026-03-13..2026-03-15")


def test_first_partition_also_takes_older_files(dated_archive, tmp_path, dagster_env):
    assert first_partition_key() == "2026-01-01"
    metadata = catalog_metadata(dated_archive, tmp_path, partition_key="2026-01-01")
    assert metadata["files"] == 1
    assert "old.mp4" in metadata["new_or_changed_files"]


def test_arrival_window_bounds_are_the_utc_day():
    window = arrival_window("2026-03-14", "2026-03-14")
    assert window.start_s == utc_s(2026, 3, 14) and window.end_s == utc_s(2026, 3, 15)
    assert window.contains(utc_s(2026, 3, 14, 23, 59, 59)) and not window.contains(utc_s(2026, 3, 15))
    assert arrival_window("2026-01-01", "2026-01-01").start_s == float("-inf")


def test_newest_partition_also_takes_future_mtimes():
    """The sensor files a future mtime under today's partition, so today's window is open above."""
    now = dt.datetime(2026, 3, 20, 10, 0, tzinfo=dt.timezone.utc)
    today = arrival_window("2026-03-20", "2026-03-20", now)
    assert today.start_s == utc_s(2026, 3, 20) and today.end_s == float("inf")
    assert today.contains(utc_s(2026, 4, 2)) and partition_key_of(utc_s(2026, 4, 2), now) == "2026-03-20"
    assert arrival_window("2026-03-18", "2026-03-20", now).end_s == float("inf")
    assert arrival_window("2026-03-19", "2026-03-19", now).end_s == utc_s(2026, 3, 20)  # yesterday: closed


def test_listing_window_is_the_partition_window(dated_archive):
    """list_archive / list_media_files (what the index job lists) keep exactly the files the window contains."""
    window = arrival_window("2026-03-14", "2026-03-14")
    files, failures = list_archive(str(dated_archive), modified_between_s=window.bounds_s)
    assert failures == []
    assert [os.path.basename(f.uri) for f in files] == ["d14_first.webm", "d14_last.wav"]
    everything, _ = list_archive(str(dated_archive))
    assert [f.uri for f in everything if window.contains(f.mtime_s)] == [f.uri for f in files]
    first, _ = list_archive(str(dated_archive), modified_between_s=arrival_window("2026-01-01", "2026-01-01").bounds_s)
    assert [os.path.basename(f.uri) for f in first] == ["old.mp4"]


def test_index_job_config_carries_the_window():
    config = BeamRunnerResource().index_job_config(source="a", db="b", model="tiny", modified_between_s=(1, 2.5))
    assert config.modified_between_s == (1.0, 2.5)
    assert BeamRunnerResource().index_job_config(source="a", db="b", model="tiny").modified_between_s is None
    for bad in [(3.0, 2.0), (float("nan"), 1.0), (1.0,)]:
        with pytest.raises(ValueError):
            BeamRunnerResource().index_job_config(source="a", db="b", model="tiny", modified_between_s=bad)


def test_partition_key_of_clamps_to_existing_partitions():
    now = dt.datetime(2026, 3, 20, 10, 0, tzinfo=dt.timezone.utc)
    assert partition_key_of(utc_s(2026, 3, 14, 23, 0), now) == "2026-03-14"
    assert partition_key_of(utc_s(2024, 5, 1), now) == "2026-01-01"
    assert partition_key_of(utc_s(2026, 3, 20, 9, 0), now) == "2026-03-20"  # today's partition exists
    assert partition_key_of(utc_s(2026, 4, 2), now) == "2026-03-20"  # a future mtime: the latest partition
    assert previous_day_key(dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc)) == "2026-02-28"


def test_catalog_counts_content_already_indexed(dated_archive, tmp_path, dagster_env):
    """A file whose content hash is in `videos` with this model version counts as already indexed."""
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.schema import VIDEOS
    from pipelines.index.chunk_encoder import describe_model

    content = (dated_archive / "d14_last.wav").read_bytes()
    video_id = hashlib.sha256(content).hexdigest()[:16]
    store = FeatureStore.open(str(tmp_path / "db"))
    store.table(VIDEOS).add([{
        "video_id": video_id, "uri": str(dated_archive / "d14_last.wav"), "duration_s": 1.0, "fps": 2.0,
        "has_audio": True, "has_video": False, "n_windows": 1, "model_version": describe_model(TEST_MODEL).model_version,
        "indexed_at": dt.datetime.now(dt.timezone.utc), "status": "indexed", "run_id": "r1",
    }])
    metadata = catalog_metadata(dated_archive, tmp_path, partition_key="2026-03-14")
    assert (metadata["files"], metadata["new_or_changed"], metadata["already_indexed"]) == (2, 1, 1)


def test_last_partition_is_today_as_dagster_sees_it():
    from assets.partitions import daily_arrivals, last_partition_key

    assert last_partition_key() == daily_arrivals.get_last_partition_key()
