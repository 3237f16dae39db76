"""``CloudTasksQueue``'s own side of the wire, without a server: the requests it builds, the
models it reads back, and how it follows list pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import tasks_v2, tasks_v2beta3

from daygen_queue import (
    HttpRequest,
    NewTask,
    OidcToken,
    QueueConfig,
    QueueState,
    RateLimits,
    RetryConfig,
)
from daygen_queue import messages as pb
from daygen_queue.client import CloudTasksQueue

QUEUE = "projects/p/locations/l/queues/q"
WHEN = datetime(2026, 11, 28, 13, 21, 10, 525_123, tzinfo=UTC)


def stored(request: Any) -> Any:
    """What a service answers for a CreateTask: the task as sent, named and stamped."""
    task = tasks_v2.Task.pb()()
    task.CopyFrom(request.task)
    task.view = pb.FULL_VIEW
    task.create_time.FromDatetime(WHEN.replace(microsecond=0))
    return task


def test_a_task_round_trips_through_the_request_and_the_reply() -> None:
    new = NewTask(
        http_request=HttpRequest(
            url="https://example.com/hook?x=1",
            http_method="PUT",
            headers={"Content-Type": "application/json"},
            body=b'{"jobId": "j1"}',
            oidc_token=OidcToken(service_account_email="sa@p.iam.gserviceaccount.com"),
        ),
        name="job-1",
        schedule_time=WHEN,
        dispatch_deadline=timedelta(seconds=90),
    )

    request = pb.create_task_request(QUEUE, new)
    task = pb.task_model(stored(request))

    assert request.parent == QUEUE
    assert request.response_view == tasks_v2.Task.View.FULL
    assert request.task.name == f"{QUEUE}/tasks/job-1"
    assert request.task.http_request.http_method == tasks_v2.HttpMethod.PUT
    assert task.name == "job-1"
    assert task.queue == "q"
    assert task.http_request == new.http_request
    assert task.schedule_time == WHEN
    assert task.create_time == WHEN.replace(microsecond=0)
    assert task.dispatch_deadline == timedelta(seconds=90)
    assert (task.first_attempt, task.last_attempt) == (None, None)


def test_an_unnamed_task_leaves_naming_and_times_to_the_service() -> None:
    request = pb.create_task_request(
        QUEUE, NewTask(http_request=HttpRequest(url="http://127.0.0.1/x"))
    )

    assert request.task.name == ""
    assert not request.task.HasField("schedule_time")
    assert not request.task.HasField("dispatch_deadline")
    assert request.task.http_request.http_method == tasks_v2.HttpMethod.POST


def test_attempts_are_read_with_their_status() -> None:
    task = tasks_v2.Task.pb()(name=f"{QUEUE}/tasks/t")
    task.schedule_time.FromDatetime(WHEN)
    task.first_attempt.dispatch_time.FromDatetime(WHEN)
    last = task.last_attempt
    last.schedule_time.FromDatetime(WHEN + timedelta(seconds=1))
    last.dispatch_time.FromDatetime(WHEN + timedelta(seconds=2))
    last.response_time.FromDatetime(WHEN + timedelta(seconds=3))
    last.response_status.code = 14
    last.response_status.message = "Service Unavailable"

    model = pb.task_model(task)

    assert model.first_attempt is not None and model.first_attempt.dispatch_time == WHEN
    assert model.first_attempt.response_code is None
    assert model.last_attempt is not None
    assert model.last_attempt.response_time == WHEN + timedelta(seconds=3)
    assert model.last_attempt.response_code == 14
    assert model.last_attempt.response_message == "Service Unavailable"


def test_a_stored_request_our_models_would_refuse_is_still_reported() -> None:
    """Another client may have stored what our models refuse up front (here a GET with a
    body, which Cloud Tasks accepted under an older rule): report it, do not fail the read."""
    task = tasks_v2.Task.pb()(name=f"{QUEUE}/tasks/t")
    task.http_request.url = "http://127.0.0.1/x"
    task.http_request.http_method = tasks_v2.HttpMethod.GET
    task.http_request.body = b"payload"

    model = pb.task_model(task)

    assert model.http_request.http_method == "GET"
    assert model.http_request.body == b"payload"


def test_a_queue_config_round_trips_and_the_mask_names_every_settable_field() -> None:
    config = QueueConfig(
        name="q",
        rate_limits=RateLimits(max_dispatches_per_second=2.5, max_concurrent_dispatches=7),
        retry_config=RetryConfig(
            max_attempts=-1,
            max_retry_duration=timedelta(hours=1),
            min_backoff=timedelta(milliseconds=250),
            max_backoff=timedelta(seconds=90),
            max_doublings=1,
        ),
    )
    message = pb.QueuePb()

    pb.fill_queue(message, config, QUEUE)
    message.state = tasks_v2.Queue.State.PAUSED
    message.rate_limits.max_burst_size = 10  # output only: the service's
    queue = pb.queue_model(message)

    assert queue.config.same_settings(config)
    assert queue.config.rate_limits.max_burst_size == 10
    assert queue.state is QueueState.PAUSED
    assert queue.purge_time is None and queue.stats is None
    assert pb.SETTABLE_QUEUE_PATHS == [
        "rate_limits.max_dispatches_per_second",
        "rate_limits.max_concurrent_dispatches",
        "retry_config.max_attempts",
        "retry_config.max_retry_duration",
        "retry_config.min_backoff",
        "retry_config.max_backoff",
        "retry_config.max_doublings",
    ]


def test_v2beta3_queue_statistics_are_read() -> None:
    message = tasks_v2beta3.Queue.pb()()
    pb.fill_queue(message, QueueConfig(name="q"), QUEUE)
    message.state = tasks_v2beta3.Queue.State.RUNNING
    message.purge_time.FromDatetime(WHEN)
    message.stats.tasks_count = 3
    message.stats.oldest_estimated_arrival_time.FromDatetime(WHEN)
    message.stats.concurrent_dispatches_count = 1

    queue = pb.queue_with_stats(message)

    assert queue.name == "q"
    assert queue.purge_time == WHEN
    assert queue.stats is not None
    assert queue.stats.tasks_count == 3
    assert queue.stats.oldest_estimated_arrival_time == WHEN
    assert queue.stats.concurrent_dispatches_count == 1


class PagedRpc:
    """A transport answering ListQueues in two pages (and recording what it was asked)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def list_queues(self, request: Any) -> Any:
        self.tokens.append(request.page_token)
        response = tasks_v2.ListQueuesResponse.pb()()
        name = "b" if request.page_token else "a"
        pb.fill_queue(
            response.queues.add(), QueueConfig(name=name), f"{request.parent}/queues/{name}"
        )
        if not request.page_token:
            response.next_page_token = "page-2"
        return response

    async def close(self) -> None:
        pass


async def test_the_client_follows_list_pages_itself() -> None:
    rpc = PagedRpc()
    client = CloudTasksQueue(rpc, project="p", location="l")  # type: ignore[arg-type]

    queues = await client.list_queues()

    assert [queue.name for queue in queues] == ["a", "b"]
    assert rpc.tokens == ["", "page-2"]
