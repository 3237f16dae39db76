"""The emulator's own state: plain dataclasses, converted to protobuf or pydantic only at the
edges (proto-plus attribute access costs microseconds; the engine touches these millions of
times in a benchmark)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from emulator import rules


class QueueState(enum.IntEnum):
    """``google.cloud.tasks.v2.Queue.State`` without UNSPECIFIED, spelt out so that this
    module imports no generated code (``emulator.conversions`` checks that they agree)."""

    RUNNING = 1
    PAUSED = 2
    DISABLED = 3


@dataclass(slots=True)
class RateLimits:
    max_dispatches_per_second: float = rules.DEFAULT_MAX_DISPATCHES_PER_SECOND
    max_concurrent_dispatches: int = rules.DEFAULT_MAX_CONCURRENT_DISPATCHES

    @property
    def max_burst_size(self) -> int:
        """Output only, derived from the rate as Cloud Tasks v2 does."""
        return rules.derive_max_burst_size(self.max_dispatches_per_second)


@dataclass(slots=True)
class RetryConfig:
    max_attempts: int = rules.DEFAULT_MAX_ATTEMPTS
    max_retry_duration: timedelta = rules.DEFAULT_MAX_RETRY_DURATION
    min_backoff: timedelta = rules.DEFAULT_MIN_BACKOFF
    max_backoff: timedelta = rules.DEFAULT_MAX_BACKOFF
    max_doublings: int = rules.DEFAULT_MAX_DOUBLINGS


@dataclass(slots=True)
class OidcToken:
    service_account_email: str
    audience: str = ""


@dataclass(slots=True)
class OAuthToken:
    """Ask for an OAuth access token: the emulator mints an opaque one (``emulator.oauth``)."""

    service_account_email: str
    scope: str = ""


@dataclass(slots=True)
class AppEngineRouting:
    """Which App Engine service, version and instance a task goes to (empty: the default)."""

    service: str = ""
    version: str = ""
    instance: str = ""


@dataclass(slots=True)
class UriOverride:
    """The queue-level URI override. ``None`` means the component is absent (left alone);
    ``port`` 0 and an empty ``path`` or ``query`` clear that component."""

    scheme: str | None = None  # "http" or "https"
    host: str | None = None
    port: int | None = None
    path: str | None = None
    query: str | None = None
    enforce_mode: str = "ALWAYS"  # or "IF_NOT_EXISTS"


@dataclass(slots=True)
class QueueHttpTarget:
    """``Queue.http_target``: applied at dispatch time to every HTTP task of the queue."""

    uri_override: UriOverride | None = None
    http_method: str | None = None  # None: the task's own
    header_overrides: dict[str, str] = field(default_factory=dict)
    oidc_token: OidcToken | None = None
    oauth_token: OAuthToken | None = None

    @property
    def has_routing(self) -> bool:
        """Cloud Tasks calls a queue "routed" when its URI override names a host."""
        return self.uri_override is not None and bool(self.uri_override.host)


@dataclass(slots=True)
class QueueSpec:
    """What a client may set on a queue. ``name`` is the full resource name. ``task_ttl`` and
    ``tombstone_ttl`` are v2beta3's (None: the defaults); ``pull`` is v2beta3's PULL type."""

    name: str
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retry_config: RetryConfig = field(default_factory=RetryConfig)
    http_target: QueueHttpTarget | None = None
    app_engine_routing_override: AppEngineRouting | None = None
    task_ttl: timedelta | None = None
    tombstone_ttl: timedelta | None = None
    pull: bool = False


@dataclass(slots=True)
class QueueRecord:
    name: str
    rate_limits: RateLimits
    retry_config: RetryConfig
    state: QueueState = QueueState.RUNNING
    purge_time: datetime | None = None
    http_target: QueueHttpTarget | None = None
    app_engine_routing_override: AppEngineRouting | None = None
    task_ttl: timedelta = rules.DEFAULT_TASK_TTL
    tombstone_ttl: timedelta | None = None  # None: the engine's task tombstone TTL
    pull: bool = False
    short_id: str = field(init=False)  # the QUEUE_ID part, read on every event and attempt

    def __post_init__(self) -> None:
        self.short_id = self.name.rsplit("/", 1)[-1]


@dataclass(slots=True)
class QueueStats:
    tasks_count: int
    oldest_estimated_arrival_time: datetime | None
    executed_last_minute_count: int
    concurrent_dispatches_count: int
    effective_execution_rate: float


@dataclass(slots=True)
class HttpTarget:
    """A task's request. For an App Engine task ``app_engine`` is set (its routing, maybe
    empty) and ``url`` holds the relative URI; otherwise ``url`` is the full URL (empty only
    on a queue whose ``http_target`` supplies the host)."""

    url: str
    http_method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    oidc_token: OidcToken | None = None
    oauth_token: OAuthToken | None = None
    app_engine: AppEngineRouting | None = None


@dataclass(slots=True)
class Attempt:
    schedule_time: datetime | None = None
    dispatch_time: datetime | None = None
    response_time: datetime | None = None
    response_code: int | None = None  # google.rpc code of the outcome, None until it is known
    response_message: str = ""
    http_status: int | None = None  # the HTTP status, when a response came back


@dataclass(slots=True)
class NewTaskSpec:
    """A CreateTask request. ``name`` is the full task name or None for a generated id."""

    http_request: HttpTarget
    name: str | None = None
    schedule_time: datetime | None = None
    dispatch_deadline: timedelta | None = None
    retry_config: RetryConfig | None = None  # the task's own policy, over the queue's


@dataclass(slots=True)
class TaskRecord:
    name: str  # full resource name
    queue: str  # full queue name
    http_request: HttpTarget
    schedule_time: datetime
    create_time: datetime
    dispatch_deadline: timedelta = rules.DEFAULT_DISPATCH_DEADLINE
    dispatch_count: int = 0
    response_count: int = 0
    execution_count: int = 0  # responses other than 5xx: X-CloudTasks-TaskExecutionCount
    first_attempt: Attempt | None = None
    last_attempt: Attempt | None = None
    generation: int = 0  # bumped on every reschedule: stale heap entries are skipped
    in_flight: int = 0
    named: bool = True  # chosen by the client: only those names are reserved after the task
    retry_config: RetryConfig | None = None  # the task's own policy, over the queue's
    short_id: str = field(init=False)  # the TASK_ID part, read on every event and attempt

    def __post_init__(self) -> None:
        self.short_id = self.name.rsplit("/", 1)[-1]

    @property
    def previous_http_status(self) -> int | None:
        return self.last_attempt.http_status if self.last_attempt else None
