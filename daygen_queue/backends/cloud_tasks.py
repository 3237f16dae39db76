"""``CloudTasksBackend``: ``TaskQueue`` over Google's own ``google-cloud-tasks`` async client.

The same code talks to Google Cloud Tasks (Application Default Credentials) and to
``python -m emulator`` (``emulator_host="127.0.0.1:8123"``: an insecure gRPC channel, no
credentials, no metadata-server probe). Messages are converted on their raw protobuf form
(proto-plus attribute access is slow) and Google's errors become ``daygen_queue`` errors.

Queue statistics are not part of Cloud Tasks v2; ``get_queue`` reads them from v2beta3's
GetQueue with a ``stats`` read mask, which Google serves for the same queues (and so does the
emulator).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import grpc
from google.api_core import exceptions as google_errors
from google.api_core import gapic_v1
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports as v2_transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as beta_transports
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2

from daygen_queue.config import QueueConfig, RateLimits, RetryConfig
from daygen_queue.errors import (
    BackendUnavailable,
    InvalidArgument,
    QueueAlreadyExists,
    QueueError,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)
from daygen_queue.tasks import (
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

Subject = Literal["queue", "task"]

_QueuePb: Final[Any] = tasks_v2.Queue.pb()
_TaskPb: Final[Any] = tasks_v2.Task.pb()
_CreateTaskRequestPb: Final[Any] = tasks_v2.CreateTaskRequest.pb()
_FULL_VIEW: Final = 2
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_STATES: Final = {1: QueueState.RUNNING, 2: QueueState.PAUSED, 3: QueueState.DISABLED}
_METHODS: Final[dict[int, HttpMethod]] = {
    1: "POST",
    2: "GET",
    3: "HEAD",
    4: "PUT",
    5: "DELETE",
    6: "PATCH",
    7: "OPTIONS",
}
_METHOD_NUMBERS: Final = {name: number for number, name in _METHODS.items()}
# Everything a client can set on a queue: an UpdateQueue with this mask is "set every field
# of the config" without touching state or anything we do not model.
_SETTABLE_QUEUE_FIELDS: Final = [
    "rate_limits.max_dispatches_per_second",
    "rate_limits.max_concurrent_dispatches",
    "retry_config.max_attempts",
    "retry_config.max_retry_duration",
    "retry_config.min_backoff",
    "retry_config.max_backoff",
    "retry_config.max_doublings",
]
_STATS_READ_MASK: Final = ["name", "rate_limits", "retry_config", "state", "purge_time", "stats"]
_QUEUE_MISSING_PREFIX: Final = "Queue does not exist"
_MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024


# ------------------------------------------------------------------ errors


def _resource_type(error: google_errors.GoogleAPICallError) -> str | None:
    for detail in error.details or ():
        if isinstance(detail, error_details_pb2.ResourceInfo) and detail.resource_type:
            return str(detail.resource_type)
    return None


def translate_error(error: google_errors.GoogleAPICallError, subject: Subject) -> QueueError:
    """Google's error as the ``daygen_queue`` error of the same meaning.

    A NOT_FOUND on a task operation may mean the queue or the task is missing: the emulator
    says which in a ResourceInfo detail; against Google, Cloud Tasks' queue message tells.
    """
    message = error.message or str(error)
    if isinstance(error, google_errors.NotFound):
        kind = _resource_type(error)
        if kind is not None:
            is_task = kind.endswith("/Task")
        else:
            is_task = subject == "task" and not message.startswith(_QUEUE_MISSING_PREFIX)
        return TaskNotFound(message) if is_task else QueueNotFound(message)
    if isinstance(error, google_errors.AlreadyExists | google_errors.Conflict):
        return TaskAlreadyExists(message) if subject == "task" else QueueAlreadyExists(message)
    if isinstance(error, google_errors.FailedPrecondition):
        return QueueRecentlyDeleted(message)
    if isinstance(error, google_errors.InvalidArgument | google_errors.BadRequest):
        return InvalidArgument(message)
    if isinstance(
        error,
        google_errors.ServiceUnavailable
        | google_errors.DeadlineExceeded
        | google_errors.GatewayTimeout,
    ):
        return BackendUnavailable(message)
    failure = QueueError(message)
    failure.code = getattr(error.grpc_status_code, "name", None) or "UNKNOWN"
    return failure


@contextlib.contextmanager
def translated(subject: Subject) -> Iterator[None]:
    try:
        yield
    except google_errors.RetryError as error:
        raise BackendUnavailable(str(error)) from None
    except google_errors.GoogleAPICallError as error:
        raise translate_error(error, subject) from None


# ------------------------------------------------------------------ models


def _raw(message: Any) -> Any:
    """The raw protobuf behind a proto-plus message."""
    return type(message).pb(message)


def _time(value: timestamp_pb2.Timestamp) -> datetime:
    return _EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _duration(value: duration_pb2.Duration) -> timedelta:
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _set_time(target: timestamp_pb2.Timestamp, when: datetime) -> None:
    seconds, micros = divmod((when - _EPOCH) // _MICRO, 1_000_000)
    target.seconds = seconds
    target.nanos = micros * 1000


def _set_duration(target: duration_pb2.Duration, delta: timedelta) -> None:
    seconds, micros = divmod(delta // _MICRO, 1_000_000)
    target.seconds = seconds
    target.nanos = micros * 1000


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def queue_model(queue: Any, *, with_stats: bool = False) -> Queue:
    """A raw v2 or v2beta3 Queue message as a ``Queue`` (the shared field names are equal)."""
    rate, retry = queue.rate_limits, queue.retry_config
    config = QueueConfig(
        name=short_id(queue.name),
        rate_limits=RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
            max_burst_size=rate.max_burst_size,
        ),
        retry_config=RetryConfig(
            max_attempts=retry.max_attempts,
            max_retry_duration=_duration(retry.max_retry_duration),
            min_backoff=_duration(retry.min_backoff),
            max_backoff=_duration(retry.max_backoff),
            max_doublings=retry.max_doublings,
        ),
    )
    stats: QueueStats | None = None
    if with_stats:
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
    return Queue(
        config=config,
        state=_STATES.get(queue.state, QueueState.RUNNING),
        purge_time=_time(queue.purge_time) if queue.HasField("purge_time") else None,
        stats=stats,
    )


def queue_pb(config: QueueConfig, name: str) -> Any:
    queue = _QueuePb(name=name)
    rate, retry = config.rate_limits, config.retry_config
    queue.rate_limits.max_dispatches_per_second = rate.max_dispatches_per_second
    queue.rate_limits.max_concurrent_dispatches = rate.max_concurrent_dispatches
    out = queue.retry_config
    out.max_attempts = retry.max_attempts
    _set_duration(out.max_retry_duration, retry.max_retry_duration)
    _set_duration(out.min_backoff, retry.min_backoff)
    _set_duration(out.max_backoff, retry.max_backoff)
    out.max_doublings = retry.max_doublings
    return queue


def _attempt_model(attempt: Any) -> Attempt:
    responded = attempt.HasField("response_time")
    return Attempt(
        schedule_time=_time(attempt.schedule_time) if attempt.HasField("schedule_time") else None,
        dispatch_time=_time(attempt.dispatch_time) if attempt.HasField("dispatch_time") else None,
        response_time=_time(attempt.response_time) if responded else None,
        response_code=attempt.response_status.code if responded else None,
        response_message=attempt.response_status.message if responded else "",
    )


def task_model(task: Any) -> Task:
    """A raw Task message (FULL view) as a ``Task``."""
    request = task.http_request
    oidc = (
        OidcToken(
            service_account_email=request.oidc_token.service_account_email,
            audience=request.oidc_token.audience,
        )
        if request.HasField("oidc_token")
        else None
    )
    parts = task.name.split("/")
    return Task(
        name=parts[-1],
        queue=parts[-3] if len(parts) >= 3 else "",
        # Built without validation: the service already validated it, and a stored task must
        # be reported as it is.
        http_request=HttpRequest.model_construct(
            url=request.url,
            http_method=_METHODS.get(request.http_method, "POST"),
            headers=dict(request.headers),
            body=request.body,
            oidc_token=oidc,
        ),
        schedule_time=_time(task.schedule_time),
        create_time=_time(task.create_time),
        dispatch_deadline=_duration(task.dispatch_deadline),
        dispatch_count=task.dispatch_count,
        response_count=task.response_count,
        first_attempt=_attempt_model(task.first_attempt)
        if task.HasField("first_attempt")
        else None,
        last_attempt=_attempt_model(task.last_attempt) if task.HasField("last_attempt") else None,
    )


def create_task_request(queue_path: str, task: NewTask) -> Any:
    request = _CreateTaskRequestPb(parent=queue_path, response_view=_FULL_VIEW)
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
        _set_time(out.schedule_time, task.schedule_time)
    if task.dispatch_deadline is not None:
        _set_duration(out.dispatch_deadline, task.dispatch_deadline)
    return request


# ------------------------------------------------------------------ the backend


class CloudTasksBackend:
    """A ``TaskQueue`` on Cloud Tasks v2, Google's or the emulator's.

    ``emulator_host`` (``host:port``) selects an insecure channel to ``python -m emulator``;
    otherwise the client uses Application Default Credentials (``credentials=`` overrides).
    ``client`` / ``beta_client`` inject ready-made clients (tests, custom transports).
    The clients are built lazily inside the running event loop, as grpc.aio requires.
    """

    def __init__(
        self,
        *,
        project: str,
        location: str,
        emulator_host: str | None = None,
        client: tasks_v2.CloudTasksAsyncClient | None = None,
        beta_client: tasks_v2beta3.CloudTasksAsyncClient | None = None,
        credentials: Any = None,
        timeout: float = 30.0,
    ) -> None:
        self.project = project
        self.location = location
        self.parent = f"projects/{project}/locations/{location}"
        self.emulator_host = emulator_host
        self._client = client
        self._beta_client = beta_client
        self._credentials = credentials
        self._channel: grpc.aio.Channel | None = None
        self._timeout = timeout
        # Against the emulator no call is retried (a test must fail fast, never hang on a
        # server that is down); against Google the client's published retry policy applies.
        self._retry: Any = None if emulator_host else gapic_v1.method.DEFAULT

    # ------------------------------------------------------------------ plumbing

    def queue_path(self, queue: str) -> str:
        return f"{self.parent}/queues/{queue}"

    def task_path(self, queue: str, task: str) -> str:
        return f"{self.parent}/queues/{queue}/tasks/{task}"

    def _open_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            assert self.emulator_host is not None
            self._channel = grpc.aio.insecure_channel(
                self.emulator_host,
                options=[
                    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ],
            )
        return self._channel

    @property
    def client(self) -> tasks_v2.CloudTasksAsyncClient:
        if self._client is None:
            if self.emulator_host:
                transport = v2_transports.CloudTasksGrpcAsyncIOTransport(
                    channel=self._open_channel()
                )
                self._client = tasks_v2.CloudTasksAsyncClient(transport=transport)
            else:
                self._client = tasks_v2.CloudTasksAsyncClient(credentials=self._credentials)
        return self._client

    @property
    def beta_client(self) -> tasks_v2beta3.CloudTasksAsyncClient:
        if self._beta_client is None:
            if self.emulator_host:
                transport = beta_transports.CloudTasksGrpcAsyncIOTransport(
                    channel=self._open_channel()
                )
                self._beta_client = tasks_v2beta3.CloudTasksAsyncClient(transport=transport)
            else:
                self._beta_client = tasks_v2beta3.CloudTasksAsyncClient(
                    credentials=self._credentials
                )
        return self._beta_client

    def _options(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self._timeout}

    # ------------------------------------------------------------------ queues

    async def create_queue(self, config: QueueConfig) -> Queue:
        request = tasks_v2.CreateQueueRequest(
            parent=self.parent, queue=queue_pb(config, self.queue_path(config.name))
        )
        with translated("queue"):
            queue = await self.client.create_queue(request=request, **self._options())
        return queue_model(_raw(queue))

    async def update_queue(self, config: QueueConfig) -> Queue:
        request = tasks_v2.UpdateQueueRequest(
            queue=queue_pb(config, self.queue_path(config.name)),
            update_mask=field_mask_pb2.FieldMask(paths=_SETTABLE_QUEUE_FIELDS),
        )
        with translated("queue"):
            queue = await self.client.update_queue(request=request, **self._options())
        return queue_model(_raw(queue))

    async def ensure_queue(self, config: QueueConfig) -> Queue:
        try:
            current = await self.get_queue(config.name)
        except QueueNotFound:
            return await self.create_queue(config)
        if current.config.same_settings(config):
            return current
        return await self.update_queue(config)

    async def get_queue(self, name: str) -> Queue:
        request = tasks_v2beta3.GetQueueRequest(
            name=self.queue_path(name),
            read_mask=field_mask_pb2.FieldMask(paths=_STATS_READ_MASK),
        )
        with translated("queue"):
            queue = await self.beta_client.get_queue(request=request, **self._options())
        return queue_model(_raw(queue), with_stats=True)

    async def list_queues(self) -> list[Queue]:
        request = tasks_v2.ListQueuesRequest(parent=self.parent)
        with translated("queue"):
            pager = await self.client.list_queues(request=request, **self._options())
            return [queue_model(_raw(queue)) async for queue in pager]

    async def delete_queue(self, name: str) -> None:
        with translated("queue"):
            await self.client.delete_queue(name=self.queue_path(name), **self._options())

    async def pause_queue(self, name: str) -> Queue:
        with translated("queue"):
            queue = await self.client.pause_queue(name=self.queue_path(name), **self._options())
        return queue_model(_raw(queue))

    async def resume_queue(self, name: str) -> Queue:
        with translated("queue"):
            queue = await self.client.resume_queue(name=self.queue_path(name), **self._options())
        return queue_model(_raw(queue))

    async def purge_queue(self, name: str) -> Queue:
        with translated("queue"):
            queue = await self.client.purge_queue(name=self.queue_path(name), **self._options())
        return queue_model(_raw(queue))

    # ------------------------------------------------------------------ tasks

    async def create_task(self, queue: str, task: NewTask) -> Task:
        request = tasks_v2.CreateTaskRequest.wrap(create_task_request(self.queue_path(queue), task))
        with translated("task"):
            created = await self.client.create_task(request=request, **self._options())
        return task_model(_raw(created))

    async def get_task(self, queue: str, task: str) -> Task:
        request = tasks_v2.GetTaskRequest(
            name=self.task_path(queue, task), response_view=_FULL_VIEW
        )
        with translated("task"):
            found = await self.client.get_task(request=request, **self._options())
        return task_model(_raw(found))

    async def list_tasks(self, queue: str) -> list[Task]:
        request = tasks_v2.ListTasksRequest(
            parent=self.queue_path(queue), response_view=_FULL_VIEW, page_size=1000
        )
        with translated("queue"):
            pager = await self.client.list_tasks(request=request, **self._options())
            return [task_model(_raw(task)) async for task in pager]

    async def delete_task(self, queue: str, task: str) -> None:
        with translated("task"):
            await self.client.delete_task(name=self.task_path(queue, task), **self._options())

    async def run_task(self, queue: str, task: str) -> Task:
        request = tasks_v2.RunTaskRequest(
            name=self.task_path(queue, task), response_view=_FULL_VIEW
        )
        with translated("task"):
            ran = await self.client.run_task(request=request, **self._options())
        return task_model(_raw(ran))

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        for client in (self._client, self._beta_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.transport.close()  # type: ignore[no-untyped-call]
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self._client = None
        self._beta_client = None

    async def __aenter__(self) -> CloudTasksBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
