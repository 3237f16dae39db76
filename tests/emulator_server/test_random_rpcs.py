"""A hypothesis-driven stream of random RPCs, valid and not, against one gRPC server: every
call answers a Cloud Tasks status (never INTERNAL/UNKNOWN), and afterwards the server is
alive and its views agree (every listed queue can be read; v2beta3 stats count the tasks that
ListTasks returns)."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as beta_transports
from google.protobuf import field_mask_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.engine import Engine
from emulator.grpc_server import build_server
from emulator.service import CloudTasksService

T = TypeVar("T")
_EXAMPLES = itertools.count()
ALLOWED = {
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "FAILED_PRECONDITION",
    "ABORTED",
}


class LoopThread:
    """The server and its client on their own event loop, so that hypothesis can drive
    examples synchronously against one long-lived server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Fuzz:
    async def start(self) -> None:
        self.engine = Engine()
        await self.engine.start()
        self.server, port = build_server(CloudTasksService(self.engine), "127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.client = tasks_v2.CloudTasksAsyncClient(
            transport=transports.CloudTasksGrpcAsyncIOTransport(channel=self.channel)
        )
        self.beta = tasks_v2beta3.CloudTasksAsyncClient(
            transport=beta_transports.CloudTasksGrpcAsyncIOTransport(channel=self.channel)
        )

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(None)
        await self.engine.close()


@pytest.fixture(scope="module")
def fuzz() -> Iterator[tuple[LoopThread, Fuzz]]:
    runner = LoopThread()
    target = Fuzz()
    runner.run(target.start())
    try:
        yield runner, target
    finally:
        runner.run(target.stop())
        runner.close()


# Half valid names (so calls meet each other's state), half malformed ones.
queue_ids = st.one_of(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["bad name", "x" * 101, "", "é"])
)
task_ids = st.one_of(
    st.sampled_from(["t1", "t2", "t3"]), st.sampled_from(["bad id!", "", "y" * 501])
)
rates = st.one_of(
    st.floats(min_value=0.5, max_value=500),
    st.sampled_from([0.0, 500.1, -1.0, float("nan"), float("inf"), 5e-324, 1e-300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
ints = st.one_of(st.integers(-3, 6000), st.sampled_from([-1, 0, 1, 2**31 - 1, -(2**31)]))
durations = st.one_of(
    st.none(),
    st.integers(-10, 10**6).map(lambda s: timedelta(seconds=s)),
    st.sampled_from([timedelta(milliseconds=100), timedelta(0)]),
)
masks = st.one_of(
    st.none(),
    st.lists(
        st.sampled_from(
            [
                "rate_limits",
                "retry_config.max_attempts",
                "rate_limits.max_dispatches_per_second",
                "state",
                "retry_config.min_backoff",
                "bogus",
            ]
        ),
        max_size=3,
    ),
)


def queue_message(
    queue_id: str,
    rate: float,
    concurrent: int,
    attempts: int,
    min_backoff: timedelta | None,
    max_backoff: timedelta | None,
    doublings: int,
) -> dict[str, Any]:
    retry: dict[str, Any] = {"max_attempts": attempts, "max_doublings": doublings}
    if min_backoff is not None:
        retry["min_backoff"] = min_backoff
    if max_backoff is not None:
        retry["max_backoff"] = max_backoff
    return {
        "name": queue_id,  # made a full name under the example's parent by call()
        "rate_limits": {"max_dispatches_per_second": rate, "max_concurrent_dispatches": concurrent},
        "retry_config": retry,
    }


# Each field is usually valid, so that a single bad value gets past the others' validation.
queue_messages = st.builds(
    queue_message,
    queue_ids,
    rates,
    st.one_of(st.integers(0, 100), ints),
    st.one_of(st.integers(-1, 10), ints),
    st.one_of(st.none(), durations),
    st.one_of(st.none(), st.none(), durations),
    st.one_of(st.integers(0, 16), st.integers(-2, 20)),
)
tasks = st.fixed_dictionaries(
    {
        "name": st.one_of(st.none(), task_ids),
        "url": st.sampled_from(["http://127.0.0.1:9/x", "ftp://nope", "", "http://" + "h" * 2100]),
        "method": st.integers(0, 8),
        "body": st.sampled_from([b"", b"data"]),
        "deadline": durations,
        "schedule_in": st.one_of(st.none(), st.integers(-(10**6), 40 * 86400)),
    }
)
operations = st.one_of(
    st.tuples(st.just("create_queue"), queue_messages),
    st.tuples(st.just("update_queue"), queue_messages, st.none()),
    st.tuples(st.just("update_queue"), queue_messages, masks),
    st.tuples(
        st.sampled_from(
            [
                "get_queue",
                "delete_queue",
                "pause_queue",
                "resume_queue",
                "purge_queue",
                "list_tasks",
                "stats",
            ]
        ),
        queue_ids,
    ),
    st.tuples(st.just("create_task"), queue_ids, tasks),
    st.tuples(st.sampled_from(["get_task", "delete_task", "run_task"]), queue_ids, task_ids),
    st.tuples(
        st.just("list_queues"),
        st.sampled_from(["", "state: PAUSED", "garbage ("]),
        st.integers(-1, 20),
        st.sampled_from(["", "bad-token"]),
    ),
)


async def call(target: Fuzz, parent: str, operation: tuple[Any, ...]) -> None:
    client = target.client
    kind = operation[0]
    if kind in ("create_queue", "update_queue"):
        queue = dict(operation[1], name=f"{parent}/queues/{operation[1]['name']}")
        operation = (kind, queue, *operation[2:])
    options: dict[str, Any] = {"retry": None, "timeout": 10}
    if kind == "create_queue":
        await client.create_queue(parent=parent, queue=operation[1], **options)
    elif kind == "update_queue":
        mask = None if operation[2] is None else field_mask_pb2.FieldMask(paths=operation[2])
        await client.update_queue(queue=operation[1], update_mask=mask, **options)
    elif kind == "stats":
        await target.beta.get_queue(
            request={"name": f"{parent}/queues/{operation[1]}", "read_mask": {"paths": ["stats"]}},
            **options,
        )
    elif kind == "list_tasks":
        pager = await client.list_tasks(parent=f"{parent}/queues/{operation[1]}", **options)
        [task async for task in pager]
    elif kind in ("get_queue", "delete_queue", "pause_queue", "resume_queue", "purge_queue"):
        await getattr(client, kind)(name=f"{parent}/queues/{operation[1]}", **options)
    elif kind == "create_task":
        queue = f"{parent}/queues/{operation[1]}"
        spec = operation[2]
        task: dict[str, Any] = {
            "http_request": {
                "url": spec["url"],
                "http_method": spec["method"],
                "body": spec["body"],
            }
        }
        if spec["name"] is not None:
            task["name"] = f"{queue}/tasks/{spec['name']}"
        if spec["deadline"] is not None:
            task["dispatch_deadline"] = spec["deadline"]
        if spec["schedule_in"] is not None:
            from datetime import UTC, datetime

            task["schedule_time"] = datetime.now(UTC) + timedelta(seconds=spec["schedule_in"])
        await client.create_task(parent=queue, task=task, **options)
    elif kind in ("get_task", "delete_task", "run_task"):
        name = f"{parent}/queues/{operation[1]}/tasks/{operation[2]}"
        await getattr(client, kind)(name=name, **options)
    elif kind == "list_queues":
        request = {
            "parent": parent,
            "filter": operation[1],
            "page_size": operation[2],
            "page_token": operation[3],
        }
        [queue async for queue in await client.list_queues(request=request, **options)]


async def play(target: Fuzz, parent: str, stream: list[tuple[Any, ...]]) -> None:
    for operation in stream:
        try:
            await call(target, parent, operation)
        except exceptions.GoogleAPICallError as error:
            status = getattr(error.grpc_status_code, "name", None)
            assert status in ALLOWED, f"{operation!r} -> {status}: {error.message}"


async def check_consistent(target: Fuzz, parent: str) -> None:
    queues = [q async for q in await target.client.list_queues(parent=parent, retry=None)]
    for queue in queues:
        again = await target.client.get_queue(name=queue.name, retry=None)
        assert again.name == queue.name
        assert 0 < again.rate_limits.max_dispatches_per_second <= 500
        assert math.isfinite(again.rate_limits.max_dispatches_per_second)
        listed = [t async for t in await target.client.list_tasks(parent=queue.name, retry=None)]
        stats = await target.beta.get_queue(
            request={"name": queue.name, "read_mask": {"paths": ["stats"]}}, retry=None
        )
        assert stats.stats.tasks_count == len(listed)
        assert all(task.name.startswith(queue.name + "/tasks/") for task in listed)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=st.lists(operations, min_size=4, max_size=20))
def test_random_rpc_stream_leaves_the_server_alive_and_consistent(
    fuzz: tuple[LoopThread, Fuzz], stream: list[tuple[Any, ...]]
) -> None:
    runner, target = fuzz
    # A fresh project per example: deleted names stay reserved for days, and each example
    # should meet empty state; the server itself is shared and must survive them all.
    parent = f"projects/fuzz-{next(_EXAMPLES)}/locations/local"
    runner.run(play(target, parent, stream))
    runner.run(check_consistent(target, parent))
