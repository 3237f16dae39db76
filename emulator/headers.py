"""The request Cloud Tasks sends for one attempt: the caller's headers plus the
``X-CloudTasks-*`` set, with the counters Cloud Tasks documents for HTTP targets."""

from __future__ import annotations

from collections.abc import Mapping

from emulator import rules
from emulator.model import TaskRecord

USER_AGENT = "Google-Cloud-Tasks"
# Names Cloud Tasks owns; a caller's value for them is replaced.
_RESERVED = ("user-agent", "host", "content-length")


def attempt_headers(
    queue_id: str, task: TaskRecord, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Headers for the attempt about to be dispatched (before ``dispatch_count`` grows):
    the task's headers (or ``source``, the task's with the queue's overrides applied) plus
    Cloud Tasks' own.

    RetryCount counts every earlier dispatch; ExecutionCount only the responses that were not
    5xx; PreviousResponse and an empty RetryReason appear on retries only.
    """
    own = task.http_request.headers if source is None else source
    headers = (
        {
            name: value
            for name, value in own.items()
            if name.lower() not in _RESERVED and not name.lower().startswith("x-cloudtasks-")
        }
        if own
        else {}
    )
    headers["User-Agent"] = USER_AGENT
    headers["X-CloudTasks-QueueName"] = queue_id
    headers["X-CloudTasks-TaskName"] = task.short_id
    count = task.dispatch_count
    headers["X-CloudTasks-TaskRetryCount"] = str(count)
    headers["X-CloudTasks-TaskExecutionCount"] = str(task.execution_count)
    headers["X-CloudTasks-TaskETA"] = rules.format_eta(task.schedule_time)
    if count > 0:
        previous = task.previous_http_status
        if previous is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(previous)
        headers["X-CloudTasks-TaskRetryReason"] = ""
    return headers
