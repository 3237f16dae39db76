"""Cloud Tasks task messages (v2 and v2beta3) <-> the engine's plain dataclasses, shared by
the gRPC, REST and in-process faces; queues are in ``emulator.queue_pb``.

We work on the *raw* protobuf classes behind google-cloud-tasks' proto-plus types
(``tasks_v2.Task.pb()``): proto-plus wraps every attribute access in Python (a Timestamp set
costs ~15 us), the raw upb messages do not. The engine keeps its own state in dataclasses and
is converted here, at the edge, once per request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from google.cloud import tasks_v2
from google.protobuf import duration_pb2, timestamp_pb2

from emulator import rules
from emulator.apis import V2, Api
from emulator.errors import InvalidArgument
from emulator.model import (
    AppEngineRouting,
    Attempt,
    HttpTarget,
    NewTaskSpec,
    OAuthToken,
    OidcToken,
    QueueState,
    RetryConfig,
    TaskRecord,
)

# The raw protobuf classes (upb). Typed Any: they are generated at import time.
TaskPb: Final[Any] = tasks_v2.Task.pb()
HttpRequestPb: Final[Any] = tasks_v2.HttpRequest.pb()

VIEW_BASIC: Final = int(tasks_v2.Task.View.BASIC)
VIEW_FULL: Final = int(tasks_v2.Task.View.FULL)

# The engine keeps HTTP methods by name; HTTP_METHOD_UNSPECIFIED means POST.
HTTP_METHOD_NUMBERS: Final[dict[str, int]] = {
    method.name: int(method)
    for method in tasks_v2.HttpMethod.__members__.values()
    if method != tasks_v2.HttpMethod.HTTP_METHOD_UNSPECIFIED
}
HTTP_METHOD_NAMES: Final[dict[int, str]] = {
    number: name for name, number in HTTP_METHOD_NUMBERS.items()
} | {int(tasks_v2.HttpMethod.HTTP_METHOD_UNSPECIFIED): "POST"}

# ``emulator.model`` and ``emulator.rules`` stay free of the generated modules (so that
# ``emulator.queues_file`` imports in milliseconds); what they spell out must still be the
# generated enums, name for name and value for value.
if {state.name: state.value for state in QueueState} != {
    state.name: int(state)
    for state in tasks_v2.Queue.State.__members__.values()
    if state != tasks_v2.Queue.State.STATE_UNSPECIFIED
}:
    raise ImportError("emulator.model.QueueState no longer matches tasks_v2.Queue.State")
if set(HTTP_METHOD_NUMBERS) != rules.HTTP_METHODS:
    raise ImportError("emulator.rules.HTTP_METHODS no longer matches tasks_v2.HttpMethod")

_MICRO = timedelta(microseconds=1)
_ZERO = timedelta(0)


# ------------------------------------------------------------------ scalars


def set_timestamp(target: timestamp_pb2.Timestamp, when: datetime) -> None:
    """Faster than ``FromDatetime`` (1.1 against 3.5 us here) and exact to the microsecond,
    Cloud Tasks' precision: whole seconds and microseconds straight from the timedelta."""
    delta = when - rules.EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def read_timestamp(source: timestamp_pb2.Timestamp) -> datetime:
    return rules.EPOCH + timedelta(0, source.seconds, source.nanos // 1000)


def set_duration(target: duration_pb2.Duration, delta: timedelta) -> None:
    """A timedelta keeps its days negative and its seconds and microseconds positive; a
    Duration needs one sign for both parts."""
    if delta >= _ZERO:
        target.seconds = delta.days * 86_400 + delta.seconds
        target.nanos = delta.microseconds * 1000
        return
    micros = -delta // _MICRO
    target.seconds = -(micros // 1_000_000)
    target.nanos = -(micros % 1_000_000) * 1000


def read_duration(source: duration_pb2.Duration) -> timedelta:
    return timedelta(0, source.seconds, source.nanos // 1000)


# ------------------------------------------------------------------ retry and routing


def retry_from_pb(retry: Any) -> RetryConfig:
    """A RetryConfig message as it was sent: zero fields stay zero (the engine gives them
    Cloud Tasks' defaults, as proto3 "unset" means)."""
    return RetryConfig(
        max_attempts=retry.max_attempts,
        max_retry_duration=read_duration(retry.max_retry_duration),
        min_backoff=read_duration(retry.min_backoff),
        max_backoff=read_duration(retry.max_backoff),
        max_doublings=retry.max_doublings,
    )


def retry_to_pb(target: Any, retry: RetryConfig) -> None:
    target.max_attempts = retry.max_attempts
    set_duration(target.max_retry_duration, retry.max_retry_duration)
    set_duration(target.min_backoff, retry.min_backoff)
    set_duration(target.max_backoff, retry.max_backoff)
    target.max_doublings = retry.max_doublings


def routing_from_pb(routing: Any) -> AppEngineRouting:
    """``host`` is output only: computed from the rest, never read."""
    return AppEngineRouting(routing.service, routing.version, routing.instance)


def routing_to_pb(target: Any, routing: AppEngineRouting, project: str) -> None:
    from emulator.targets import routing_host  # targets imports the model only

    target.service = routing.service
    target.version = routing.version
    target.instance = routing.instance
    target.host = routing_host(project, routing)


# ------------------------------------------------------------------ tasks


def new_task_from_pb(task: Any, api: Api = V2) -> NewTaskSpec:
    """A CreateTask request's task as the engine's spec (the engine validates the values).

    Every CreateTask goes through here: the payload is found with one ``WhichOneof`` (its
    oneof is ``message_type`` in v2, ``payload_type`` in v2beta3) rather than a ``HasField``
    per kind, which costs about as much each."""
    payload = task.WhichOneof("payload_type" if api.beta else "message_type")
    if payload == "http_request":
        target = _http_target_from_pb(task.http_request)
    elif payload == "app_engine_http_request":
        target = _app_engine_from_pb(task.app_engine_http_request)
    elif payload == "pull_message":  # v2beta3 only
        raise InvalidArgument("Task.pullMessage cannot be set through the Cloud Tasks API.")
    else:
        raise InvalidArgument("Task.httpRequest or Task.appEngineHttpRequest is required.")
    deadline: timedelta | None = None
    if task.HasField("dispatch_deadline"):
        deadline = read_duration(task.dispatch_deadline) or None
    return NewTaskSpec(
        target,
        task.name or None,
        read_timestamp(task.schedule_time) if task.HasField("schedule_time") else None,
        deadline,
        retry_from_pb(task.retry_config) if task.HasField("retry_config") else None,
    )


def _method_name(number: int, where: str) -> str:
    method = HTTP_METHOD_NAMES.get(number)
    if method is None:
        raise InvalidArgument(f"{where}.httpMethod {number} is not supported.")
    return method


def _http_target_from_pb(request: Any) -> HttpTarget:
    oidc: OidcToken | None = None
    oauth: OAuthToken | None = None
    token_kind = request.WhichOneof("authorization_header")
    if token_kind == "oidc_token":
        token = request.oidc_token
        if not token.service_account_email:
            raise InvalidArgument("OidcToken.serviceAccountEmail is required.")
        oidc = OidcToken(token.service_account_email, token.audience)
    elif token_kind == "oauth_token":
        grant = request.oauth_token
        if not grant.service_account_email:
            raise InvalidArgument("OAuthToken.serviceAccountEmail is required.")
        oauth = OAuthToken(grant.service_account_email, grant.scope)
    headers = request.headers
    return HttpTarget(
        request.url,
        _method_name(request.http_method, "HttpRequest"),
        dict(headers) if len(headers) else {},  # dict() of an empty map: 2 us
        request.body,
        oidc,
        oauth,
    )


def _app_engine_from_pb(request: Any) -> HttpTarget:
    routing = (
        routing_from_pb(request.app_engine_routing)
        if request.HasField("app_engine_routing")
        else AppEngineRouting()
    )
    return HttpTarget(
        url=request.relative_uri or "/",
        http_method=_method_name(request.http_method, "AppEngineHttpRequest"),
        headers=dict(request.headers) if request.headers else {},
        body=request.body,
        app_engine=routing,
    )


def _attempt_to_pb(target: Any, attempt: Attempt, *, first: bool) -> None:
    if first:
        # Cloud Tasks keeps only dispatch_time for the first attempt.
        if attempt.dispatch_time is not None:
            set_timestamp(target.dispatch_time, attempt.dispatch_time)
        return
    if attempt.schedule_time is not None:
        set_timestamp(target.schedule_time, attempt.schedule_time)
    if attempt.dispatch_time is not None:
        set_timestamp(target.dispatch_time, attempt.dispatch_time)
    if attempt.response_time is not None:
        set_timestamp(target.response_time, attempt.response_time)
        status = target.response_status
        status.code = attempt.response_code or 0
        status.message = attempt.response_message


def task_to_pb(
    record: TaskRecord,
    view: int = VIEW_BASIC,
    api: Api = V2,
    routing: AppEngineRouting | None = None,
) -> Any:
    """BASIC (the default, and what 0 means) leaves out the body; FULL includes it. An App
    Engine task reports ``routing`` (the one it is dispatched with: the queue's override
    when there is one) with its computed host."""
    full = view == VIEW_FULL
    task = (TaskPb if api is V2 else api.Task)(
        name=record.name,
        dispatch_count=record.dispatch_count,
        response_count=record.response_count,
        view=VIEW_FULL if full else VIEW_BASIC,
    )
    target = record.http_request
    if target.app_engine is not None:
        request = task.app_engine_http_request
        request.relative_uri = target.url
        routing_to_pb(
            request.app_engine_routing, routing or target.app_engine, record.name.split("/", 2)[1]
        )
    else:
        request = task.http_request
        request.url = target.url
        if target.oidc_token is not None:
            request.oidc_token.service_account_email = target.oidc_token.service_account_email
            request.oidc_token.audience = target.oidc_token.audience
        elif target.oauth_token is not None:
            request.oauth_token.service_account_email = target.oauth_token.service_account_email
            request.oauth_token.scope = target.oauth_token.scope
    request.http_method = HTTP_METHOD_NUMBERS[target.http_method]
    if target.headers:
        request.headers.update(target.headers)
    if full and target.body:
        request.body = target.body
    set_timestamp(task.schedule_time, record.schedule_time)
    set_timestamp(task.create_time, record.create_time)
    set_duration(task.dispatch_deadline, record.dispatch_deadline)
    if record.first_attempt is not None:
        _attempt_to_pb(task.first_attempt, record.first_attempt, first=True)
    if record.last_attempt is not None:
        _attempt_to_pb(task.last_attempt, record.last_attempt, first=False)
    if record.retry_config is not None:
        retry_to_pb(task.retry_config, record.retry_config)
    return task


def created_task_to_pb(
    sent: Any, record: TaskRecord, view: int, api: Api = V2, owned: bool = False
) -> Any:
    """CreateTask's answer for an HTTP task: equal to ``task_to_pb(record, view, api)``, built
    from the task as sent (its HTTP request is the record's: the engine keeps it as given)
    rather than field by field: CreateTask is the call every job makes.

    ``owned``: ``sent`` belongs to this call alone, so the answer is written into it instead
    of a copy. What the service decided (name, times, deadline, counters and attempts, the
    task's retry policy with its defaults, the HTTP method) is written over what the client
    sent, the output-only fields it may have filled are cleared, and the BASIC view leaves out
    the body."""
    if owned:
        task = sent
    else:
        task = TaskPb() if api is V2 else api.Task()
        task.CopyFrom(sent)
    task.DiscardUnknownFields()
    task.name = record.name
    request = task.http_request
    request.http_method = HTTP_METHOD_NUMBERS[record.http_request.http_method]
    if view == VIEW_FULL:
        task.view = VIEW_FULL
    else:
        task.view = VIEW_BASIC
        request.ClearField("body")
    set_timestamp(task.schedule_time, record.schedule_time)
    set_timestamp(task.create_time, record.create_time)
    set_duration(task.dispatch_deadline, record.dispatch_deadline)
    task.dispatch_count = record.dispatch_count
    task.response_count = record.response_count
    # Set when the attempt started inline, before this answer (a queue with room).
    task.ClearField("first_attempt")
    if record.first_attempt is not None:
        _attempt_to_pb(task.first_attempt, record.first_attempt, first=True)
    task.ClearField("last_attempt")
    if record.last_attempt is not None:
        _attempt_to_pb(task.last_attempt, record.last_attempt, first=False)
    if record.retry_config is not None:
        retry_to_pb(task.retry_config, record.retry_config)
    return task
