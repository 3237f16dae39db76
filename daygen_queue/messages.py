"""``daygen_queue``'s models <-> Cloud Tasks v2 protobuf messages, for ``CloudTasksQueue``.

Written once for every transport: the in-process emulator, Google's gRPC and REST clients all
take and give the same raw messages. They are the upb classes behind proto-plus
(``tasks_v2.Task.pb()``): proto-plus wraps every attribute access in Python, upb does not.
Enums come from ``tasks_v2``; times are written with protobuf's own ``Timestamp``/``Duration``
helpers and read with two faster ones (see ``_time``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from google.cloud import tasks_v2, tasks_v2beta3
from google.protobuf import field_mask_pb2
from pydantic import ValidationError

from daygen_queue.config import QueueConfig, RateLimits, RetryConfig
from daygen_queue.models import (
    Attempt,
    HttpMethod,
    HttpRequest,
    NewTask,
    OidcToken,
    Queue,
    QueueState,
    QueueStats,
    Task,
)

# The raw request and resource classes. Typed Any: they are generated at import time.
QueuePb: Final[Any] = tasks_v2.Queue.pb()
ListQueuesRequestPb: Final[Any] = tasks_v2.ListQueuesRequest.pb()
GetQueueRequestPb: Final[Any] = tasks_v2.GetQueueRequest.pb()
BetaGetQueueRequestPb: Final[Any] = tasks_v2beta3.GetQueueRequest.pb()
CreateQueueRequestPb: Final[Any] = tasks_v2.CreateQueueRequest.pb()
UpdateQueueRequestPb: Final[Any] = tasks_v2.UpdateQueueRequest.pb()
DeleteQueueRequestPb: Final[Any] = tasks_v2.DeleteQueueRequest.pb()
PurgeQueueRequestPb: Final[Any] = tasks_v2.PurgeQueueRequest.pb()
PauseQueueRequestPb: Final[Any] = tasks_v2.PauseQueueRequest.pb()
ResumeQueueRequestPb: Final[Any] = tasks_v2.ResumeQueueRequest.pb()
ListTasksRequestPb: Final[Any] = tasks_v2.ListTasksRequest.pb()
GetTaskRequestPb: Final[Any] = tasks_v2.GetTaskRequest.pb()
CreateTaskRequestPb: Final[Any] = tasks_v2.CreateTaskRequest.pb()
DeleteTaskRequestPb: Final[Any] = tasks_v2.DeleteTaskRequest.pb()
RunTaskRequestPb: Final[Any] = tasks_v2.RunTaskRequest.pb()
BatchCreateTasksRequestPb: Final[Any] = tasks_v2.BatchCreateTasksRequest.pb()
BatchCreateTasksResponsePb: Final[Any] = tasks_v2.BatchCreateTasksResponse.pb()
BatchCreateTasksMetadataPb: Final[Any] = tasks_v2.BatchCreateTasksMetadata.pb()

# Every task read asks for the FULL view: BASIC (the default) leaves the body out.
FULL_VIEW: Final = int(tasks_v2.Task.View.FULL)
_METHOD_NUMBERS: Final[dict[str, int]] = {
    name: int(number)
    for name, number in tasks_v2.HttpMethod.__members__.items()
    if number != tasks_v2.HttpMethod.HTTP_METHOD_UNSPECIFIED
}
_METHOD_NAMES: Final[dict[int, HttpMethod]] = {
    number: cast(HttpMethod, name) for name, number in _METHOD_NUMBERS.items()
}
_STATES: Final[dict[int, QueueState]] = {
    int(tasks_v2.Queue.State.__members__[state.name]): state for state in QueueState
}


def _settable_paths() -> list[str]:
    """``rate_limits.max_dispatches_per_second``...: every field a client can set, named as
    in the Queue message (our models mirror it), checked against the message by protobuf."""
    groups = QueueConfig(name="any").settable()
    del groups["name"]
    paths = [f"{group}.{field}" for group, fields in groups.items() for field in fields]
    mask = field_mask_pb2.FieldMask(paths=paths)
    if not mask.IsValidForDescriptor(QueuePb.DESCRIPTOR):
        raise AssertionError(f"QueueConfig fields are not Queue message fields: {paths}")
    return paths


# UpdateQueue with this mask is "set every field of the config", leaving the state and what
# we do not model alone.
SETTABLE_QUEUE_PATHS: Final = _settable_paths()
# What get_queue reads through v2beta3: v2's fields plus the statistics.
STATS_READ_MASK: Final = ["name", "rate_limits", "retry_config", "state", "purge_time", "stats"]


# Reading times: protobuf's ``Timestamp.ToDatetime(tzinfo=UTC)`` and
# ``Duration.ToTimedelta()`` cost 1.76 and 1.25 us here, these 0.76 and 0.53 us (exact to
# the microsecond, Cloud Tasks' precision). A created task reads three, and creation through
# TaskQueue has a budget (benchmarks/engine.py, "Through the TaskQueue API"). Writing uses
# protobuf's ``FromDatetime``/``FromTimedelta``: no hot path writes times.
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _time(value: Any) -> datetime:
    return _EPOCH + timedelta(0, value.seconds, value.nanos // 1000)


def _duration(value: Any) -> timedelta:
    return timedelta(0, value.seconds, value.nanos // 1000)


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


# ------------------------------------------------------------------ queues


def fill_queue(target: Any, config: QueueConfig, name: str) -> None:
    """Write ``config`` into a Queue message (v2 field names; output-only fields left out)."""
    target.name = name
    rate, retry = config.rate_limits, config.retry_config
    target.rate_limits.max_dispatches_per_second = rate.max_dispatches_per_second
    target.rate_limits.max_concurrent_dispatches = rate.max_concurrent_dispatches
    _fill_retry(target.retry_config, retry)


def _fill_retry(out: Any, retry: RetryConfig) -> None:
    out.max_attempts = retry.max_attempts
    out.max_retry_duration.FromTimedelta(retry.max_retry_duration)
    out.min_backoff.FromTimedelta(retry.min_backoff)
    out.max_backoff.FromTimedelta(retry.max_backoff)
    out.max_doublings = retry.max_doublings


def _retry_model(retry: Any) -> RetryConfig:
    return RetryConfig(
        max_attempts=retry.max_attempts,
        max_retry_duration=_duration(retry.max_retry_duration),
        min_backoff=_duration(retry.min_backoff),
        max_backoff=_duration(retry.max_backoff),
        max_doublings=retry.max_doublings,
    )


def queue_model(queue: Any, stats: QueueStats | None = None) -> Queue:
    """A v2 or v2beta3 Queue message as a ``Queue`` (the fields read have the same names)."""
    rate, retry = queue.rate_limits, queue.retry_config
    config = QueueConfig(
        name=short_id(queue.name),
        rate_limits=RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
            max_burst_size=rate.max_burst_size,
        ),
        retry_config=_retry_model(retry),
    )
    return Queue(
        config=config,
        state=_STATES.get(queue.state, QueueState.RUNNING),
        purge_time=_time(queue.purge_time) if queue.HasField("purge_time") else None,
        stats=stats,
    )


def queue_with_stats(queue: Any) -> Queue:
    """A v2beta3 Queue read with ``stats`` in its read mask."""
    raw = queue.stats
    stats = QueueStats(
        tasks_count=raw.tasks_count,
        oldest_estimated_arrival_time=_time(raw.oldest_estimated_arrival_time)
        if raw.HasField("oldest_estimated_arrival_time")
        else None,
        executed_last_minute_count=raw.executed_last_minute_count,
        concurrent_dispatches_count=raw.concurrent_dispatches_count,
        effective_execution_rate=raw.effective_execution_rate,
    )
    return queue_model(queue, stats)


# ------------------------------------------------------------------ tasks


def create_task_request(queue_path: str, task: NewTask) -> Any:
    request = CreateTaskRequestPb(parent=queue_path, response_view=FULL_VIEW)
    out = request.task
    if task.name is not None:
        out.name = f"{queue_path}/tasks/{task.name}"
    http = task.http_request
    target = out.http_request
    target.url = http.url
    target.http_method = _METHOD_NUMBERS[http.http_method]
    if http.headers:
        target.headers.update(http.headers)
    if http.body:
        target.body = http.body
    if http.oidc_token is not None:
        target.oidc_token.service_account_email = http.oidc_token.service_account_email
        target.oidc_token.audience = http.oidc_token.audience
    if task.schedule_time is not None:
        out.schedule_time.FromDatetime(task.schedule_time)
    if task.dispatch_deadline is not None:
        out.dispatch_deadline.FromTimedelta(task.dispatch_deadline)
    if task.retry_config is not None:
        _fill_retry(out.retry_config, task.retry_config)
    return request


def _attempt_model(attempt: Any) -> Attempt:
    responded = attempt.HasField("response_time")
    return Attempt(
        schedule_time=_time(attempt.schedule_time) if attempt.HasField("schedule_time") else None,
        dispatch_time=_time(attempt.dispatch_time) if attempt.HasField("dispatch_time") else None,
        response_time=_time(attempt.response_time) if responded else None,
        response_code=attempt.response_status.code if responded else None,
        response_message=attempt.response_status.message if responded else "",
    )


def _headers(headers: Any) -> dict[str, str]:
    """A protobuf map as a dict: ``dict(map)`` goes through the Mapping ABC in Python and
    costs 2.0 us even for an empty map (2.9 us for two entries), this 0.3 and 2.0 us."""
    return {name: headers[name] for name in headers} if headers else {}


def _request_fields(request: Any) -> dict[str, Any]:
    token = request.oidc_token
    return {
        "url": request.url,
        "http_method": _METHOD_NAMES.get(request.http_method, "POST"),
        "headers": _headers(request.headers),
        "body": request.body,
        "oidc_token": {
            "service_account_email": token.service_account_email,
            "audience": token.audience,
        }
        if request.HasField("oidc_token")
        else None,
    }


# ``Task.model_validate`` minus its Python frame, which is about a third of the call: the
# model's documented pydantic-core validator.
_validate_task: Final = Task.__pydantic_validator__.validate_python


def task_model(task: Any, sent: tuple[HttpRequest, Any] | None = None) -> Task:
    """A Task message (FULL view) as a ``Task``.

    ``sent`` is the request just sent, when there is one (CreateTask), as its model and its
    HttpRequest message: if the service reports exactly that message (upb compares them in
    C), as it does unless it added a header, the frozen model is reused rather than an equal
    one built. The rest is validated in one compiled call (``model_construct`` runs in
    Python and is slower); a task our models would refuse, stored by a client that bypassed
    them, is still reported, as it is.
    """
    request = task.http_request
    parts = task.name.rsplit("/", 3)  # [..., QUEUE_ID, "tasks", TASK_ID]
    fields: dict[str, Any] = {
        "name": parts[-1],
        "queue": parts[-3] if len(parts) >= 3 else "",
        "http_request": sent[0]
        if sent is not None and request == sent[1]
        else _request_fields(request),
        "schedule_time": _time(task.schedule_time),
        "create_time": _time(task.create_time),
        "dispatch_deadline": _duration(task.dispatch_deadline),
        "dispatch_count": task.dispatch_count,
        "response_count": task.response_count,
        "first_attempt": _attempt_model(task.first_attempt)
        if task.HasField("first_attempt")
        else None,
        "last_attempt": _attempt_model(task.last_attempt)
        if task.HasField("last_attempt")
        else None,
    }
    if task.HasField("retry_config"):
        fields["retry_config"] = _retry_model(task.retry_config)
    try:
        return cast(Task, _validate_task(fields))
    except ValidationError:
        reported = _request_fields(request)
        oidc = reported["oidc_token"]
        reported["oidc_token"] = None if oidc is None else OidcToken.model_construct(**oidc)
        fields["http_request"] = HttpRequest.model_construct(**reported)
        return Task.model_construct(**fields)
