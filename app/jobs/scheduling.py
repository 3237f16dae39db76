"""Scheduled jobs (``runAt``): a job that runs later is a task with a ``schedule_time``.

Cloud Tasks holds the task until then, so a scheduled job needs nothing of the app while it
waits: it survives restarts and deploys of the app, and no process polls for it. The horizon is
Cloud Tasks' own (a task may be scheduled at most 30 days ahead); a time in the past means now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from app.jobs.planning import PlanningError

MAX_AHEAD: Final = timedelta(days=30)


def effective_run_at(requested: datetime | None, now: datetime) -> datetime | None:
    """When the job's task is scheduled: ``requested``, or ``now`` when that has passed (the
    job still shows the time it runs at). None: no ``runAt``, at once. Raises
    ``PlanningError`` past the 30-day horizon."""
    if requested is None:
        return None
    if requested - now > MAX_AHEAD:
        raise PlanningError(
            "runAt", f"must be at most 30 days ahead (until {(now + MAX_AHEAD).isoformat()})"
        )
    return max(requested, now)
