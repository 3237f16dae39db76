"""Cloud Tasks' published rules as pure functions: defaults, limits, backoff, the stop rule.

Each value is the one Cloud Tasks v2 documents or was observed to use; keeping the rules free
of I/O lets the tests pin them to the documented sequences without a queue in sight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from google.rpc import code_pb2

# Queue defaults: what Cloud Tasks' documentation shows for a queue created without them
# (the server picks the rate when it is unset; 500/s is what it picks).
DEFAULT_MAX_DISPATCHES_PER_SECOND = 500.0
DEFAULT_MAX_CONCURRENT_DISPATCHES = 1000
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = timedelta(milliseconds=100)
DEFAULT_MAX_BACKOFF = timedelta(seconds=3600)
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_MAX_RETRY_DURATION = timedelta(0)

# System limits from Cloud Tasks' quotas page and the v2 proto.
MAX_DISPATCHES_PER_SECOND = 500.0
MAX_CONCURRENT_DISPATCHES = 5000
# Bytes of the stored task proto, 1 MiB - 7: the boundary a probe of the real service found
# (the proto's "100KB" is out of date since the 1 MB limit of 2021).
MAX_TASK_SIZE = 1_048_569
MAX_HEADERS_SIZE = 80 * 1024
MAX_URL_LENGTH = 2083
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MIN_DISPATCH_DEADLINE = timedelta(seconds=15)
MAX_DISPATCH_DEADLINE = timedelta(minutes=30)
DEFAULT_DISPATCH_DEADLINE = timedelta(minutes=10)
DEFAULT_TASK_TOMBSTONE_TTL = timedelta(hours=1)
# v2beta3's per-queue retention and name reservation: defaults and allowed ranges.
DEFAULT_TASK_TTL = timedelta(days=31)
MIN_TASK_TTL = timedelta(days=10)
MAX_TASK_TTL = timedelta(days=3650)
MIN_TOMBSTONE_TTL = timedelta(hours=1)
MAX_TOMBSTONE_TTL = timedelta(days=9)
# App Engine tasks: an explicit deadline may reach 24 h 15 s; only POST and PUT carry a body.
MAX_APP_ENGINE_DISPATCH_DEADLINE = timedelta(hours=24, seconds=15)
APP_ENGINE_BODY_METHODS = frozenset({"POST", "PUT"})
# BatchCreateTasks and BatchDeleteTasks limits.
MAX_BATCH_CREATE_REQUESTS = 100
MAX_BATCH_DELETE_NAMES = 1000
DEFAULT_QUEUE_TOMBSTONE_TTL = timedelta(days=7)
MAX_LIST_QUEUES_PAGE = 9800
MAX_LIST_TASKS_PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

QUEUE_NAME_RE = re.compile(
    r"^projects/(?P<project>[A-Za-z0-9:.\-]+)/locations/(?P<location>[A-Za-z0-9\-]+)"
    r"/queues/(?P<queue>[A-Za-z0-9\-]{1,100})$"
)
QUEUE_PARENT_RE = re.compile(r"^projects/[A-Za-z0-9:.\-]+/locations/[A-Za-z0-9\-]+$")
ROUTING_PART_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,62}$")  # App Engine service/version ids
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,500}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # the only ones that may carry a body
# tasks_v2.HttpMethod's names (emulator.conversions checks that they agree).
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
    """``create_time`` is output at whole seconds (the v2 proto says so); purge relies on
    it."""
    return when.replace(microsecond=0)


def is_success(status: int) -> bool:
    return 200 <= status <= 299


# The standard google.rpc mapping of HTTP statuses (google/rpc/code.proto). Cloud Tasks does
# not document which one it writes into an attempt's response_status; this is the table
# every Google API uses.
HTTP_TO_RPC_CODE: dict[int, int] = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.ABORTED,
    429: code_pb2.RESOURCE_EXHAUSTED,
    499: code_pb2.CANCELLED,
    500: code_pb2.INTERNAL,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}
RPC_OK: int = code_pb2.OK
RPC_FAILED_PRECONDITION: int = code_pb2.FAILED_PRECONDITION  # any other 4xx
RPC_UNKNOWN: int = code_pb2.UNKNOWN  # any other status
# An attempt that got no HTTP response: timed out, or could not connect.
RPC_DEADLINE_EXCEEDED: int = code_pb2.DEADLINE_EXCEEDED
RPC_UNAVAILABLE: int = code_pb2.UNAVAILABLE


def rpc_code_for_http_status(status: int) -> int:
    """The google.rpc code of an attempt's HTTP status."""
    if is_success(status):
        return RPC_OK
    if status in HTTP_TO_RPC_CODE:
        return HTTP_TO_RPC_CODE[status]
    if 400 <= status < 500:
        return RPC_FAILED_PRECONDITION
    return RPC_UNKNOWN


def retry_after(status: int | None, headers: Mapping[str, str]) -> timedelta | None:
    """``Retry-After`` in seconds on a 429/503, which Cloud Tasks says it considers: the
    emulator honours it as a lower bound on the backoff."""
    if status not in (429, 503):
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return timedelta(seconds=max(0, int(value)))
            except ValueError:
                continue  # not a number of seconds (an HTTP date is not honoured)
    return None


def format_eta(when: datetime) -> str:
    """``X-CloudTasks-TaskETA``: fractional epoch seconds, microsecond precision."""
    delta = when - EPOCH  # normalised like a floor division: only ``days`` may be negative
    return f"{delta.days * 86_400 + delta.seconds}.{delta.microseconds:06d}"
