"""What every ``TaskQueue`` backend must do, on the real clock with real HTTP delivery.

"Not delivered" is checked against a barrier: a task on a second, running queue created after
the one under test. Both go through the same dispatcher, so when the barrier has arrived, a
dispatchable task under test would have been sent too (there is no ordering guarantee across
queues, so these checks are strong evidence rather than proof; the virtual-clock fidelity
tests prove the same properties exactly).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from daygen_queue import (
    HttpRequest,
    InvalidArgument,
    NewTask,
    QueueAlreadyExists,
    QueueConfig,
    QueueNotFound,
    QueueRecentlyDeleted,
    QueueState,
    RateLimits,
    RetryConfig,
    TaskAlreadyExists,
    TaskNotFound,
    TaskQueue,
)
from tests.support.receiver import Receiver

FAST_RETRY = RetryConfig(
    max_attempts=5,
    min_backoff=timedelta(milliseconds=100),
    max_backoff=timedelta(seconds=1),
    max_doublings=2,
)


def task_to(receiver: Receiver, path: str, name: str | None = None, **extra: object) -> NewTask:
    return NewTask(
        http_request=HttpRequest(url=receiver.url(path), body=path.encode()),
        name=name,
        **extra,  # type: ignore[arg-type]
    )


async def barrier(task_queue: TaskQueue, receiver: Receiver, tag: str) -> None:
    """Wait until a task sent through another running queue has been delivered."""
    name = f"barrier-{tag}"
    await task_queue.create_queue(QueueConfig(name=name))
    await task_queue.create_task(name, task_to(receiver, f"/{name}"))
    await receiver.wait_for_path(f"/{name}")


async def test_created_queue_has_cloud_tasks_defaults(
    task_queue: TaskQueue, queue_name: str
) -> None:
    queue = await task_queue.create_queue(QueueConfig(name=queue_name))

    assert queue.name == queue_name
    assert queue.state is QueueState.RUNNING
    assert queue.config.rate_limits.max_dispatches_per_second == 500
    assert queue.config.rate_limits.max_concurrent_dispatches == 1000
    assert queue.config.rate_limits.max_burst_size == 100
    assert queue.config.retry_config.max_attempts == 100
    assert queue.config.retry_config.min_backoff == timedelta(milliseconds=100)
    assert queue.config.retry_config.max_backoff == timedelta(hours=1)
    assert queue.config.retry_config.max_doublings == 16


async def test_queue_config_round_trips(task_queue: TaskQueue, queue_name: str) -> None:
    config = QueueConfig(
        name=queue_name,
        rate_limits=RateLimits(max_dispatches_per_second=10, max_concurrent_dispatches=100),
        retry_config=RetryConfig(
            max_attempts=3,
            max_retry_duration=timedelta(hours=1),
            min_backoff=timedelta(seconds=1),
            max_backoff=timedelta(seconds=60),
            max_doublings=4,
        ),
    )
    await task_queue.create_queue(config)

    fetched = await task_queue.get_queue(queue_name)

    assert fetched.config.same_settings(config)
    assert fetched.config.rate_limits.max_burst_size == 10
    assert fetched.stats is not None and fetched.stats.tasks_count == 0
    assert queue_name in [queue.name for queue in await task_queue.list_queues()]


async def test_creating_an_existing_queue_is_refused(
    task_queue: TaskQueue, queue_name: str
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))

    with pytest.raises(QueueAlreadyExists):
        await task_queue.create_queue(QueueConfig(name=queue_name))


async def test_unknown_queue_is_not_found_everywhere(
    task_queue: TaskQueue, queue_name: str
) -> None:
    for operation in (
        task_queue.get_queue,
        task_queue.pause_queue,
        task_queue.resume_queue,
        task_queue.purge_queue,
        task_queue.delete_queue,
        task_queue.list_tasks,
    ):
        with pytest.raises(QueueNotFound):
            await operation(queue_name)
    with pytest.raises(QueueNotFound):
        await task_queue.create_task(
            queue_name, NewTask(http_request=HttpRequest(url="http://127.0.0.1:9/x"))
        )


async def test_update_queue_creates_a_missing_queue(task_queue: TaskQueue, queue_name: str) -> None:
    config = QueueConfig(name=queue_name, rate_limits=RateLimits(max_dispatches_per_second=5))

    await task_queue.update_queue(config)

    assert (await task_queue.get_queue(queue_name)).config.same_settings(config)


async def test_update_queue_changes_settings_but_not_state(
    task_queue: TaskQueue, queue_name: str
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    changed = QueueConfig(
        name=queue_name,
        rate_limits=RateLimits(max_dispatches_per_second=2, max_concurrent_dispatches=3),
        retry_config=RetryConfig(max_attempts=7),
    )

    updated = await task_queue.update_queue(changed)

    assert updated.config.same_settings(changed)
    assert updated.state is QueueState.PAUSED


async def test_ensure_queue_is_idempotent(task_queue: TaskQueue, queue_name: str) -> None:
    config = QueueConfig(name=queue_name, retry_config=RetryConfig(max_attempts=3))

    first = await task_queue.ensure_queue(config)
    second = await task_queue.ensure_queue(config)
    changed = await task_queue.ensure_queue(
        QueueConfig(name=queue_name, retry_config=RetryConfig(max_attempts=4))
    )

    assert first.config.same_settings(config)
    assert second.config == first.config
    assert changed.config.retry_config.max_attempts == 4


async def test_deleted_queue_is_gone_and_its_name_reserved(
    task_queue: TaskQueue, queue_name: str
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))

    await task_queue.delete_queue(queue_name)

    with pytest.raises(QueueNotFound):
        await task_queue.get_queue(queue_name)
    with pytest.raises(QueueRecentlyDeleted):
        await task_queue.create_queue(QueueConfig(name=queue_name))


async def test_pause_and_resume_report_state(task_queue: TaskQueue, queue_name: str) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))

    assert (await task_queue.pause_queue(queue_name)).state is QueueState.PAUSED
    assert (await task_queue.get_queue(queue_name)).state is QueueState.PAUSED
    assert (await task_queue.resume_queue(queue_name)).state is QueueState.RUNNING


async def test_task_is_delivered_with_body_and_cloud_tasks_headers(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    task = NewTask(
        http_request=HttpRequest(
            url=receiver.url("/deliver?x=1"),
            headers={"Content-Type": "application/json", "X-Custom": "yes"},
            body=b'{"jobId": "j1"}',
        ),
        name="job-1",
    )

    created = await task_queue.create_task(queue_name, task)
    [received] = await receiver.wait_for_path("/deliver?x=1")

    assert created.name == "job-1"
    assert created.queue == queue_name
    assert received.method == "POST"
    assert received.body == b'{"jobId": "j1"}'
    assert received.header("Content-Type") == "application/json"
    assert received.header("X-Custom") == "yes"
    assert received.header("User-Agent") == "Google-Cloud-Tasks"
    assert received.header("X-CloudTasks-QueueName") == queue_name
    assert received.header("X-CloudTasks-TaskName") == "job-1"
    assert received.header("X-CloudTasks-TaskRetryCount") == "0"
    assert received.header("X-CloudTasks-TaskExecutionCount") == "0"
    assert float(received.header("X-CloudTasks-TaskETA") or "0") == pytest.approx(
        created.schedule_time.timestamp(), abs=1e-3
    )
    assert received.header("X-CloudTasks-TaskPreviousResponse") is None


async def test_unnamed_tasks_get_generated_ids(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)

    first = await task_queue.create_task(queue_name, task_to(receiver, "/a"))
    second = await task_queue.create_task(queue_name, task_to(receiver, "/b"))

    assert re.fullmatch(r"\d{20}", first.name)
    assert first.name != second.name


async def test_named_task_is_deduplicated_while_alive_and_after_success(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    await task_queue.create_task(queue_name, task_to(receiver, "/once", name="once"))

    with pytest.raises(TaskAlreadyExists):
        await task_queue.create_task(queue_name, task_to(receiver, "/once", name="once"))

    await task_queue.resume_queue(queue_name)
    await receiver.wait_for_path("/once")
    await _wait_until_gone(task_queue, queue_name, "once")
    with pytest.raises(TaskAlreadyExists):
        await task_queue.create_task(queue_name, task_to(receiver, "/once", name="once"))
    assert len(receiver.for_path("/once")) == 1


async def _wait_until_gone(task_queue: TaskQueue, queue: str, task: str) -> None:
    """The receiver answered; the queue records success right after. Poll, bounded."""
    import asyncio

    for _ in range(200):
        try:
            await task_queue.get_task(queue, task)
        except TaskNotFound:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task} still exists after its delivery succeeded")


async def test_get_task_returns_what_was_created(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    later = datetime.now(UTC) + timedelta(hours=1)
    task = NewTask(
        http_request=HttpRequest(url=receiver.url("/later"), headers={"X-A": "1"}, body=b"payload"),
        name="later",
        schedule_time=later,
        dispatch_deadline=timedelta(seconds=30),
    )
    await task_queue.create_task(queue_name, task)

    fetched = await task_queue.get_task(queue_name, "later")

    assert fetched.name == "later"
    assert fetched.http_request.url == receiver.url("/later")
    assert fetched.http_request.headers.get("X-A") == "1"
    assert fetched.http_request.body == b"payload"
    assert abs(fetched.schedule_time - later) < timedelta(milliseconds=1)
    assert fetched.dispatch_deadline == timedelta(seconds=30)
    assert fetched.dispatch_count == 0
    assert [t.name for t in await task_queue.list_tasks(queue_name)] == ["later"]
    assert (await task_queue.get_queue(queue_name)).stats.tasks_count == 1  # type: ignore[union-attr]


async def test_unknown_task_is_not_found(task_queue: TaskQueue, queue_name: str) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))

    with pytest.raises(TaskNotFound):
        await task_queue.get_task(queue_name, "nope")
    with pytest.raises(TaskNotFound):
        await task_queue.delete_task(queue_name, "nope")
    with pytest.raises(TaskNotFound):
        await task_queue.run_task(queue_name, "nope")


async def test_schedule_time_beyond_thirty_days_is_invalid(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    too_late = datetime.now(UTC) + timedelta(days=31)

    with pytest.raises(InvalidArgument, match="720h"):
        await task_queue.create_task(queue_name, task_to(receiver, "/late", schedule_time=too_late))


async def test_paused_queue_holds_tasks_until_resumed(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    await task_queue.create_task(queue_name, task_to(receiver, "/held", name="held"))

    await barrier(task_queue, receiver, queue_name)
    assert receiver.for_path("/held") == []
    assert (await task_queue.get_task(queue_name, "held")).dispatch_count == 0

    await task_queue.resume_queue(queue_name)
    await receiver.wait_for_path("/held")


async def test_purge_deletes_every_waiting_task(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    for index in range(3):
        await task_queue.create_task(queue_name, task_to(receiver, f"/purged-{index}"))

    purged = await task_queue.purge_queue(queue_name)
    await task_queue.resume_queue(queue_name)

    assert purged.purge_time is not None
    assert await task_queue.list_tasks(queue_name) == []
    await barrier(task_queue, receiver, queue_name)
    assert not [r for r in receiver.requests if r.path.startswith("/purged-")]


async def test_deleted_task_is_not_delivered_and_its_name_stays_reserved(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    await task_queue.create_task(queue_name, task_to(receiver, "/deleted", name="gone"))

    await task_queue.delete_task(queue_name, "gone")
    await task_queue.resume_queue(queue_name)

    with pytest.raises(TaskNotFound):
        await task_queue.get_task(queue_name, "gone")
    with pytest.raises(TaskAlreadyExists):
        await task_queue.create_task(queue_name, task_to(receiver, "/deleted", name="gone"))
    await barrier(task_queue, receiver, queue_name)
    assert receiver.for_path("/deleted") == []


async def test_run_task_dispatches_even_when_paused(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    await task_queue.create_task(queue_name, task_to(receiver, "/forced", name="forced"))

    await task_queue.run_task(queue_name, "forced")

    [received] = await receiver.wait_for_path("/forced")
    assert received.header("X-CloudTasks-TaskRetryCount") == "0"


async def test_failed_attempt_is_retried_with_retry_headers(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    receiver.responder = lambda request: 503 if len(receiver.for_path("/flaky")) == 1 else 200
    await task_queue.create_queue(QueueConfig(name=queue_name, retry_config=FAST_RETRY))

    await task_queue.create_task(queue_name, task_to(receiver, "/flaky", name="flaky"))
    first, second = await receiver.wait_for_path("/flaky", count=2)

    assert first.header("X-CloudTasks-TaskRetryCount") == "0"
    assert second.header("X-CloudTasks-TaskRetryCount") == "1"
    assert second.header("X-CloudTasks-TaskExecutionCount") == "0"
    assert second.header("X-CloudTasks-TaskPreviousResponse") == "503"
    assert second.header("X-CloudTasks-TaskRetryReason") == ""
    await _wait_until_gone(task_queue, queue_name, "flaky")


async def test_task_is_dropped_after_max_attempts(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    receiver.responder = lambda request: 500
    retry = RetryConfig(
        max_attempts=2, min_backoff=timedelta(milliseconds=100), max_backoff=timedelta(seconds=1)
    )
    await task_queue.create_queue(QueueConfig(name=queue_name, retry_config=retry))

    await task_queue.create_task(queue_name, task_to(receiver, "/doomed", name="doomed"))
    await receiver.wait_for_path("/doomed", count=2)

    await _wait_until_gone(task_queue, queue_name, "doomed")
    assert len(receiver.for_path("/doomed")) == 2


async def test_create_tasks_gives_one_result_per_task_in_order(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    await task_queue.create_task(queue_name, task_to(receiver, "/taken", "taken"))
    tasks = [task_to(receiver, f"/many-{n}", f"many-{n}") for n in range(205)]
    tasks.insert(150, task_to(receiver, "/taken", "taken"))  # in the second chunk of 100

    results = await task_queue.create_tasks(queue_name, tasks)
    await task_queue.resume_queue(queue_name)
    delivered = await receiver.wait_for(
        lambda requests: len([r for r in requests if r.path.startswith("/many-")]) == 205,
        timeout=30,
    )

    assert len(results) == 206
    assert isinstance(results[150], TaskAlreadyExists)
    created = [result for result in results if not isinstance(result, Exception)]
    assert [task.name for task in created] == [f"many-{n}" for n in range(205)]
    assert all(task.queue == queue_name for task in created)
    assert created[0].http_request.body == b"/many-0"
    assert len({request.path for request in delivered if request.path.startswith("/many-")}) == 205


async def test_create_tasks_reports_each_invalid_task_and_raises_for_a_missing_queue(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    with pytest.raises(QueueNotFound):
        await task_queue.create_tasks(queue_name, [task_to(receiver, "/x")])
    await task_queue.create_queue(QueueConfig(name=queue_name))
    await task_queue.pause_queue(queue_name)
    too_far = datetime.now(UTC) + timedelta(days=31)

    results = await task_queue.create_tasks(
        queue_name,
        [task_to(receiver, "/late", schedule_time=too_far), task_to(receiver, "/fine", "fine")],
    )

    assert isinstance(results[0], InvalidArgument) and "720h" in results[0].message
    assert not isinstance(results[1], Exception) and results[1].name == "fine"
    assert [task.name for task in await task_queue.list_tasks(queue_name)] == ["fine"]


async def test_a_tasks_own_retry_config_is_kept_and_replaces_the_queues(
    task_queue: TaskQueue, queue_name: str, receiver: Receiver
) -> None:
    """The queue would retry (5 attempts); the task's own policy allows one attempt."""
    await task_queue.create_queue(QueueConfig(name=queue_name, retry_config=FAST_RETRY))
    receiver.responder = lambda request: 500 if request.path == "/once" else 200
    once = RetryConfig(max_attempts=1, min_backoff=timedelta(seconds=1))
    await task_queue.pause_queue(queue_name)
    created = await task_queue.create_task(
        queue_name, task_to(receiver, "/once", "once", retry_config=once)
    )
    read = await task_queue.get_task(queue_name, "once")
    await task_queue.resume_queue(queue_name)
    await receiver.wait_for_path("/once")
    await barrier(task_queue, receiver, queue_name)

    assert created.retry_config == read.retry_config == once
    with pytest.raises(TaskNotFound):  # given up after its one attempt
        await task_queue.get_task(queue_name, "once")
    assert len(receiver.for_path("/once")) == 1
