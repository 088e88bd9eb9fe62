"""Sensor on the archive: one run of the index graph when media files appear or change.

Cursor: the JSON listing {uri: [size_bytes, mtime_s]} of the archive's media files (no file is
read, only listed). A tick whose listing differs from the cursor in any new or changed entry
requests ONE run covering the arrival-day partitions of those files (a single partition key, or a
partition range run through the range tags); an unchanged archive requests nothing, ever again.
Removed files only update the cursor. The run key is the listing's digest, so a re-evaluated tick
can never launch a second run for the same archive state.
"""


import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.archive_listing import list_archive, listing_digest, listing_state
from assets.jobs import index_graph_job
from assets.partitions import partition_range_of
from assets.resources import ArchiveResource, LanceStoreResource

ARCHIVE_POLL_INTERVAL_S = 60  # seconds between sensor ticks


def changed_uris(previous: dict[str, list], current: dict[str, list]) -> list[str]:
    """URIs that are new in `current` or whose [size, mtime] differ from `previous`."""
    return sorted(uri for uri, state in current.items() if previous.get(uri) != state)


@sensor(
    job=index_graph_job,
    minimum_interval_seconds=ARCHIVE_POLL_INTERVAL_S,
    default_status=DefaultSensorStatus.STOPPED,  # turn on in the UI (Automation) or `dagster sensor start`
)
def archive_arrivals_sensor(context: SensorEvaluationContext, archive: ArchiveResource, store: LanceStoreResource):
    """New or changed media files in the archive -> one run of the index graph for their arrival days."""
    files, _unreadable = list_archive(archive.uri, exclude_uris=[store.uri])  # unreadable: the catalog reports them
    current = listing_state(files)
    previous = json.loads(context.cursor) if context.cursor else {}
    changed = changed_uris(previous, current)
    if current != previous:
        context.update_cursor(json.dumps(current, sort_keys=True))
    if not changed:
        return SkipReason(f"no new or changed media files in {archive.uri} ({len(current)} listed)")
    first, last = partition_range_of(current[uri][1] for uri in changed)
    run_key = f"archive-{listing_digest(current)[:16]}"
    context.log.info(f"{len(changed)} new or changed files in {archive.uri}: partitions {first}..{last}")
    if first == last:
        return RunRequest(run_key=run_key, partition_key=first)
    return RunRequest(run_key=run_key, tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
