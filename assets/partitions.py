"""Daily partitions of the archive by arrival day (file modification time, UTC).

Partition `2026-11-23` stands for the files whose mtime falls in [2026-11-23 00:00, 2026-11-24 00:00)
UTC: the nightly arrivals. Never one partition per video. The first partition also takes every
file older than it (an archive that predates the partitions is indexed by its first partition),
and `end_offset=1` keeps today's partition open so the sensor can index today's arrivals now.
Likewise the newest partition (today's, at the time the run starts) also takes every file with a
future mtime: the sensor files those under today (`partition_key_of` clamps), so today's run must
index them. The window is applied by the index job itself (IndexJobConfig.modified_between_s).

Backfills run as ONE run over the whole selected range (BackfillPolicy.single_run()): the assets
see a partition key range and one Beam job indexes all of it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import BackfillPolicy, DailyPartitionsDefinition

from favor_ops.store.catalog import modified_between

PARTITIONS_START_ENV = "FAVOR_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2026-01-01"  # first arrival day; older files fall into this partition
PARTITION_TIMEZONE = "UTC"
PARTITION_KEY_FORMAT = "%Y-%m-%d"

daily_arrivals = DailyPartitionsDefinition(
    start_date=os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START),
    end_offset=1,  # today's partition exists (the sensor indexes today's arrivals before midnight)
    timezone=PARTITION_TIMEZONE,
    fmt=PARTITION_KEY_FORMAT,
)

single_run_backfill = BackfillPolicy.single_run()


@dataclass(frozen=True)
class ArrivalWindow:
    """Files with start_s <= mtime < end_s (seconds since the epoch) belong to the run."""

    start_s: float  # -inf when the window starts at the first partition
    end_s: float  # +inf when it ends at the newest partition (today's)
    first_key: str
    last_key: str

    @property
    def bounds_s(self) -> tuple[float, float]:
        """(start_s, end_s): IndexJobConfig.modified_between_s / list_media_files' window."""
        return (self.start_s, self.end_s)

    def contains(self, mtime_s: float) -> bool:
        return modified_between(mtime_s, self.bounds_s)

    def describe(self) -> str:
        keys = self.first_key if self.first_key == self.last_key else f"{self.first_key}..{self.last_key}"
        return f"{keys} (mtime in [{_iso(self.start_s)}, {_iso(self.end_s)}))"


def _iso(seconds: float) -> str:
    if math.isinf(seconds):
        return "-inf" if seconds < 0 else "+inf"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


def first_partition_key() -> str:
    return daily_arrivals.get_first_partition_key()


def arrival_window(first_key: str, last_key: str, now: dt.datetime | None = None) -> ArrivalWindow:
    """The mtime window of the partitions first_key..last_key (inclusive), open below the first
    partition and above the newest one at `now` (default: the current time)."""
    start = daily_arrivals.time_window_for_partition_key(first_key).start
    end = daily_arrivals.time_window_for_partition_key(last_key).end
    start_s = -math.inf if first_key <= first_partition_key() else start.timestamp()  # ISO dates compare as strings
    end_s = math.inf if last_key >= last_partition_key(now) else end.timestamp()
    return ArrivalWindow(start_s=start_s, end_s=end_s, first_key=first_key, last_key=last_key)


def arrival_window_of(context, now: dt.datetime | None = None) -> ArrivalWindow:
    """The window of an asset execution context (one partition or a single-run backfill range)."""
    key_range = context.partition_key_range
    return arrival_window(key_range.start, key_range.end, now)


def last_partition_key(now: dt.datetime | None = None) -> str:
    """The newest partition at `now`: today (UTC), since `end_offset=1` opens the current day."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime(PARTITION_KEY_FORMAT)


def partition_key_of(mtime_s: float, now: dt.datetime | None = None) -> str:
    """The partition a file with this mtime belongs to, clamped to the partitions that exist."""
    keys_end = last_partition_key(now)
    day = dt.datetime.fromtimestamp(mtime_s, dt.timezone.utc).strftime(PARTITION_KEY_FORMAT)
    first = first_partition_key()
    if day < first:  # ISO dates compare as strings
        return first
    if day > keys_end:
        return keys_end
    return day


def partition_range_of(mtimes_s: Iterable[float], now: dt.datetime | None = None) -> tuple[str, str]:
    """(first, last) partition keys covering every mtime (clamped to existing partitions)."""
    keys = sorted(partition_key_of(m, now) for m in mtimes_s)
    if not keys:
        raise ValueError("partition_range_of needs at least one mtime")
    return keys[0], keys[-1]


def previous_day_key(when: dt.datetime) -> str:
    """The partition of the day before `when` (UTC): what a nightly run just after midnight indexes."""
    day = when.astimezone(dt.timezone.utc) - dt.timedelta(days=1)
    return day.strftime(PARTITION_KEY_FORMAT)
