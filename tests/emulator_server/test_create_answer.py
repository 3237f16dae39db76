"""CreateTask's answer is built from the task as sent (its fast path): it must equal the
task as GetTask reports it, for every view, API version and kind of HTTP task."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from daygen_queue import SystemClock, VirtualClock
from emulator import conversions as conv
from emulator.apis import APIS, Api
from emulator.dispatch import CallableDispatcher, DispatchRequest
from emulator.engine import Engine
from emulator.service import CloudTasksService

PARENT = "projects/p/locations/l"


async def _ok(request: DispatchRequest) -> int:
    return 200


def _tasks(api: Api, queue: str) -> list[Any]:
    """HTTP tasks with and without the optional parts, one with output-only fields filled."""
    task = api.Task
    return [
        task(http_request={"url": "http://127.0.0.1:9/a", "body": b"x"}),
        task(
            name=f"{queue}/tasks/named",
            http_request={
                "url": "http://127.0.0.1:9/b",
                "http_method": 4,  # PUT
                "headers": {"Content-Type": "text/plain", "X-A": "1"},
                "body": b"payload",
                "oidc_token": {"service_account_email": "a@p.iam.gserviceaccount.com"},
            },
            schedule_time=timestamp_pb2.Timestamp(seconds=1_767_229_200, nanos=5_000),
            dispatch_deadline=duration_pb2.Duration(seconds=30),
            retry_config={"max_attempts": 3},
            dispatch_count=7,
            response_count=2,
            first_attempt={"dispatch_time": {"seconds": 5}},
            view=2,
        ),
        task(
            http_request={
                "url": "http://127.0.0.1:9/c",
                "http_method": 2,  # GET
                "oauth_token": {"service_account_email": "b@p.iam.gserviceaccount.com"},
            }
        ),
        task(http_request={"url": "http://127.0.0.1:9/d"}),  # method left unspecified
    ]


@pytest.mark.parametrize("api", APIS, ids=lambda api: api.service_name.split(".")[3])
@pytest.mark.parametrize("view", [0, conv.VIEW_BASIC, conv.VIEW_FULL])
@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("running", [False, True])
async def test_create_answer_equals_the_stored_task(
    api: Api, view: int, owned: bool, running: bool
) -> None:
    # On the wall clock a running queue starts the attempt just after the answer (at the
    # driver's next pump, within PUMP_SOON_SECONDS), as Cloud Tasks answers before it
    # dispatches; the answer is what GetTask reports at that moment.
    clock = SystemClock() if running else VirtualClock()
    tasks = _tasks(api, f"{PARENT}/queues/q")
    all_delivered = asyncio.Event()
    delivered = 0

    async def count(request: DispatchRequest) -> int:
        nonlocal delivered
        delivered += 1
        if delivered == len(tasks):
            all_delivered.set()
        return 200

    engine = Engine(clock=clock, dispatcher=CallableDispatcher(count))
    await engine.start()
    await asyncio.sleep(0)  # one turn of the loop: the wall clock's driver task starts
    service = CloudTasksService(engine)
    queue = f"{PARENT}/queues/q"
    await service.create_queue(
        api.request("CreateQueueRequest")(parent=PARENT, queue={"name": queue}), api
    )
    if not running:
        await service.pause_queue(api.request("PauseQueueRequest")(name=queue), api)
    for sent in tasks:
        request = api.request("CreateTaskRequest")(parent=queue, task=sent, response_view=view)
        answer = await service.create_task(request, api, owned=owned)
        stored = engine.get_task(answer.name)
        assert answer == conv.task_to_pb(stored, view, api)
        assert stored.dispatch_count == 0
    if running:
        await asyncio.wait_for(all_delivered.wait(), 10)
    await engine.close()


async def _fail(request: DispatchRequest) -> int:
    return 503


@pytest.mark.parametrize("api", APIS, ids=lambda api: api.service_name.split(".")[3])
@pytest.mark.parametrize("view", [conv.VIEW_BASIC, conv.VIEW_FULL])
async def test_an_answer_built_after_attempts_began_reports_them(api: Api, view: int) -> None:
    """A durable store's flush may let the driver start the task before CreateTask answers:
    the answer built from the task as sent then carries the attempts, as GetTask does."""
    clock = VirtualClock()
    engine = Engine(clock=clock, dispatcher=CallableDispatcher(_fail))
    await engine.start()
    service = CloudTasksService(engine)
    queue = f"{PARENT}/queues/q"
    await service.create_queue(
        api.request("CreateQueueRequest")(parent=PARENT, queue={"name": queue}), api
    )
    for sent in _tasks(api, queue):
        kept = type(sent)()
        kept.CopyFrom(sent)
        request = api.request("CreateTaskRequest")(parent=queue, task=sent, response_view=view)
        name = (await service.create_task(request, api)).name
        # Just past its schedule time: the first attempt has failed and the task backs off.
        due = engine.get_task(name).schedule_time
        await engine.advance(due - clock.now() + timedelta(milliseconds=1))
        stored = engine.get_task(name)
        assert stored.first_attempt is not None and stored.last_attempt is not None
        answer = conv.created_task_to_pb(kept, stored, view, api)
        assert answer == conv.task_to_pb(stored, view, api)
    await engine.close()
