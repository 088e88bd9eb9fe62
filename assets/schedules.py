"""Nightly schedule: at 02:00 UTC, run the whole index graph for the arrival day that just ended."""


from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from assets.jobs import index_graph_job
from assets.partitions import PARTITION_TIMEZONE, previous_day_key

NIGHTLY_CRON = "0 2 * * *"  # minute hour day month weekday, in PARTITION_TIMEZONE


@schedule(
    job=index_graph_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=PARTITION_TIMEZONE,
    default_status=DefaultScheduleStatus.STOPPED,  # turn on in the UI (Automation) or `dagster schedule start`
)
def nightly_index_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """One run per night for yesterday's partition; the run key makes a re-evaluated tick a no-op."""
    day = previous_day_key(context.scheduled_execution_time)
    return RunRequest(run_key=f"nightly-{day}", partition_key=day)
