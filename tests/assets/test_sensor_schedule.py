"""The archive sensor fires once per new or changed listing and never for an unchanged archive;
the nightly schedule asks for yesterday's partition."""

import datetime as dt
import json
import os

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context, build_sensor_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.definitions import defs
from assets.jobs import INDEX_JOB_NAME
from assets.resources import ArchiveResource, LanceStoreResource
from assets.schedules import nightly_index_schedule
from assets.sensors import archive_arrivals_sensor


def utc_s(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


DAY_14 = utc_s(2026, 3, 14, 9, 0)
DAY_15 = utc_s(2026, 3, 15, 18, 0)


class Archive:
    def __init__(self, root):
        self.root = root
        self.db = root / "db"  # the store inside the archive: never listed

    def put(self, name: str, content: bytes, mtime_s: float):
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (mtime_s, mtime_s))
        return path

    def tick(self, cursor: str | None):
        """One sensor evaluation: (result, cursor after the tick)."""
        context = build_sensor_context(
            cursor=cursor,
            instance=DagsterInstance.ephemeral(),
            resources={"archive": ArchiveResource(uri=str(self.root)), "store": LanceStoreResource(uri=str(self.db))},
        )
        result = archive_arrivals_sensor(context)
        return result, context.cursor


@pytest.fixture
def archive(tmp_path, dagster_env):
    root = tmp_path / "archive"
    root.mkdir()
    return Archive(root)


def test_sensor_fires_once_per_change_and_never_for_an_unchanged_archive(archive):
    first = archive.put("a.mp4", b"aaaa", DAY_14)
    archive.put("notes.txt", b"not media", DAY_14)
    archive.put("db/windows.lance/data/x.mp4", b"store file named like media", DAY_14)

    request, cursor = archive.tick(None)
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026-03-14"
    assert json.loads(cursor) == {str(first): [4, DAY_14]}

    for _ in range(2):  # unchanged archive: nothing, and the cursor stays
        skipped, again = archive.tick(cursor)
        assert isinstance(skipped, SkipReason)
        assert again == cursor

    archive.put("sub/b.webm", b"bbbbbb", DAY_15)  # a new file on another day
    request_b, cursor_b = archive.tick(cursor)
    assert isinstance(request_b, RunRequest)
    assert request_b.partition_key == "2026-03-15"  # only the new file's day
    assert request_b.run_key != request.run_key
    assert isinstance(archive.tick(cursor_b)[0], SkipReason)

    archive.put("a.mp4", b"aaaa-changed", DAY_14)  # same name, new content (size changed)
    request_a, cursor_a = archive.tick(cursor_b)
    assert isinstance(request_a, RunRequest)
    assert request_a.partition_key == "2026-03-14"
    assert json.loads(cursor_a)[str(first)] == [12, DAY_14]
    assert isinstance(archive.tick(cursor_a)[0], SkipReason)


def test_sensor_covers_several_days_with_one_range_run(archive):
    archive.put("a.mp4", b"a", DAY_14)
    archive.put("b.mp4", b"b", DAY_15)
    request, _ = archive.tick(None)
    assert isinstance(request, RunRequest)
    assert request.partition_key is None
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2026-03-14"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2026-03-15"


def test_sensor_records_removals_without_a_run(archive):
    archive.put("a.mp4", b"a", DAY_14)
    gone = archive.put("b.mp4", b"b", DAY_14)
    _, cursor = archive.tick(None)
    gone.unlink()
    result, after = archive.tick(cursor)
    assert isinstance(result, SkipReason)
    assert sorted(json.loads(after)) == [str(archive.root / "a.mp4")]


def test_sensor_and_schedule_target_the_index_job():
    repository = defs.get_repository_def()
    assert repository.get_sensor_def("archive_arrivals_sensor").job_name == INDEX_JOB_NAME
    assert repository.get_schedule_def("nightly_index_schedule").job_name == INDEX_JOB_NAME
    assert repository.get_job(INDEX_JOB_NAME).tags["favor/gpu"] == "true"


def test_nightly_schedule_asks_for_the_day_that_ended():
    context = build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.timezone.utc))
    request = nightly_index_schedule(context)
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026-11-23"
    assert request.run_key == "nightly-2026-11-23"
    assert nightly_index_schedule.cron_schedule == "0 2 * * *"
    assert nightly_index_schedule.execution_timezone == "UTC"


def test_nightly_schedule_tick_resolves_the_partition_against_the_job():
    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc),
        repository_def=defs.get_repository_def(),
    )
    data = nightly_index_schedule.evaluate_tick(context)
    (request,) = data.run_requests
    assert request.tags["dagster/partition"] == "2026-02-28"  # (the job's favor/gpu tag is merged in at launch)
