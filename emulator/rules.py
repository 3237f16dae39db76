"""Cloud Tasks' published rules as pure functions: defaults, limits, backoff, the stop rule.

Everything here is a transcription of ``shared/cloud-tasks-facts.md``; keeping the rules free of
I/O lets the tests pin them to the documented sequences without a queue in sight.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

# Queue defaults observed on real Cloud Tasks (facts §2.2, §2.3, §9.1).
DEFAULT_MAX_DISPATCHES_PER_SECOND = 500.0
DEFAULT_MAX_CONCURRENT_DISPATCHES = 1000
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = timedelta(milliseconds=100)
DEFAULT_MAX_BACKOFF = timedelta(seconds=3600)
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_MAX_RETRY_DURATION = timedelta(0)

# System limits (facts §6).
MAX_DISPATCHES_PER_SECOND = 500.0
MAX_CONCURRENT_DISPATCHES = 5000
MAX_TASK_SIZE = 1_048_569  # bytes of the stored task, 1 MiB - 7 (facts §3.4)
MAX_HEADERS_SIZE = 80 * 1024
MAX_URL_LENGTH = 2083
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MIN_DISPATCH_DEADLINE = timedelta(seconds=15)
MAX_DISPATCH_DEADLINE = timedelta(minutes=30)
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
DEFAULT_TASK_TOMBSTONE_TTL = timedelta(hours=1)
DEFAULT_QUEUE_TOMBSTONE_TTL = timedelta(days=7)
MAX_LIST_QUEUES_PAGE = 9800
MAX_LIST_TASKS_PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

QUEUE_NAME_RE = re.compile(
    r"^projects/(?P<project>[A-Za-z0-9:.\-]+)/locations/(?P<location>[A-Za-z0-9\-]+)"
    r"/queues/(?P<queue>[A-Za-z0-9\-]{1,100})$"
)
QUEUE_PARENT_RE = re.compile(r"^projects/[A-Za-z0-9:.\-]+/locations/[A-Za-z0-9\-]+$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,500}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
HTTP_METHODS = frozenset({"POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})


def derive_max_burst_size(max_dispatches_per_second: float) -> int:
    """The token-bucket capacity Cloud Tasks derives from the rate (``max_burst_size`` is output
    only in v2). The formula is unpublished; this one reproduces both observed points
    (500/s -> 100, 1/s -> 10) and the REST text's "generally at least the rate" in between.
    """
    return max(10, min(100, math.ceil(max_dispatches_per_second)))


def backoff_interval(
    retry_number: int,
    *,
    min_backoff: timedelta,
    max_backoff: timedelta,
    max_doublings: int,
) -> timedelta:
    """Delay before retry ``retry_number`` (1 = the first retry), measured from the failure.

    Starts at ``min_backoff``, doubles ``max_doublings`` times, then grows linearly by the last
    doubled step, capped at ``max_backoff``: the one formula that yields both documented
    sequences (10, 20, 40, 80, 160, 240, 300 and the purely linear App Engine one).
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    doublings = min(retry_number - 1, max_doublings)
    linear_steps = max(1, retry_number - max_doublings)
    interval: timedelta = min_backoff * (2**doublings) * linear_steps
    return min(max_backoff, interval)


def retries_exhausted(
    *,
    attempts: int,
    first_attempt: datetime | None,
    now: datetime,
    max_attempts: int,
    max_retry_duration: timedelta,
) -> bool:
    """True when Cloud Tasks gives up on a task after a failed attempt.

    Both limits must be met (AND, not OR); an unlimited limit (-1 attempts, zero duration)
    drops out of the test, and a queue with both unlimited retries forever.
    """
    attempts_unlimited = max_attempts == -1
    duration_unlimited = max_retry_duration <= timedelta(0)
    if attempts_unlimited and duration_unlimited:
        return False
    attempts_met = attempts_unlimited or attempts >= max_attempts
    elapsed = now - first_attempt if first_attempt is not None else timedelta(0)
    duration_met = duration_unlimited or elapsed >= max_retry_duration
    return attempts_met and duration_met


def truncate_to_second(when: datetime) -> datetime:
    """``create_time`` is stored at whole seconds (facts §3.1); purge relies on it."""
    return when.replace(microsecond=0)


def truncate_to_micros(delta: timedelta) -> timedelta:
    return timedelta(microseconds=delta // timedelta(microseconds=1))


def is_success(status: int) -> bool:
    return 200 <= status <= 299


HTTP_TO_RPC_CODE: dict[int, int] = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    409: 10,  # ABORTED
    429: 8,  # RESOURCE_EXHAUSTED
    499: 1,  # CANCELLED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}
RPC_DEADLINE_EXCEEDED = 4
RPC_UNAVAILABLE = 14
RPC_UNKNOWN = 2
RPC_OK = 0


def rpc_code_for_http_status(status: int) -> int:
    """google.rpc mapping of an HTTP status (facts §3.1: the standard table, UNCONFIRMED)."""
    if is_success(status):
        return RPC_OK
    if status in HTTP_TO_RPC_CODE:
        return HTTP_TO_RPC_CODE[status]
    if 400 <= status < 500:
        return 9  # FAILED_PRECONDITION
    return RPC_UNKNOWN


def format_eta(when: datetime) -> str:
    """``X-CloudTasks-TaskETA``: fractional epoch seconds, microsecond precision."""
    micros = (when - EPOCH) // timedelta(microseconds=1)
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds}.{fraction:06d}"
