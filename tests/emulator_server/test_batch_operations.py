"""BatchCreateTasks, BatchDeleteTasks and GetOperation through Google's own clients: v2 and
v2beta3 over gRPC (in process), v2 over REST (``python -m emulator``); partial failures,
limits, request ids, the operation lifecycle (done at once, and not done on the first
answer, which makes the client poll), retention on the virtual clock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2, tasks_v2beta3
from google.longrunning import operations_pb2

from daygen_queue import VirtualClock
from emulator.apis import V2
from emulator.batch import NONE_SUCCEEDED
from emulator.engine import Engine
from emulator.errors import NotFound
from emulator.service import CloudTasksService
from tests.emulator_server.conftest import PARENT, GrpcStack, grpc_stack
from tests.emulator_server.process import EmulatorProcess
from tests.support.receiver import Receiver

CreateState = tasks_v2.BatchCreateTasksMetadata.State
DeleteState = tasks_v2.BatchDeleteTasksMetadata.State


def create_request(queue: str, url: str, task_id: str | None = None) -> dict[str, object]:
    task: dict[str, object] = {"http_request": {"url": url}}
    if task_id is not None:
        task["name"] = f"{queue}/tasks/{task_id}"
    return {"parent": queue, "task": task}


async def test_batch_create_is_one_done_operation_and_every_task_is_delivered(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("batch")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})

    operation = await stack.client.batch_create_tasks(
        parent=queue,
        requests=[create_request(queue, receiver.url(f"/b{n}"), f"t{n}") for n in range(3)],
    )
    response = await operation.result()
    delivered = await receiver.wait_for(lambda requests: len(requests) == 3)

    assert operation.operation.done  # answered done: the client never polled
    assert operation.operation.name.startswith(f"{PARENT}/operations/")
    assert [task.name for task in response.tasks] == [f"{queue}/tasks/t{n}" for n in range(3)]
    metadata = operation.metadata
    assert metadata.state == CreateState.SUCCEEDED
    assert metadata.start_time is not None and metadata.end_time >= metadata.start_time
    assert not metadata.failed_requests
    assert sorted(request.path for request in delivered) == ["/b0", "/b1", "/b2"]
    assert {request.header("X-CloudTasks-TaskName") for request in delivered} == {
        "t0",
        "t1",
        "t2",
    }


async def test_a_partial_failure_keeps_the_others_and_reports_the_failures_by_index(
    stack: GrpcStack,
) -> None:
    queue = stack.queue("partial")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    await stack.client.pause_queue(name=queue)
    url = "http://127.0.0.1:9/"
    await stack.client.create_task(
        parent=queue, task={"name": f"{queue}/tasks/taken", "http_request": {"url": url}}
    )

    operation = await stack.client.batch_create_tasks(
        parent=queue,
        requests=[
            create_request(queue, url, "fresh"),
            create_request(queue, url, "taken"),
            create_request(queue, "ftp://nowhere/", "bad-url"),
            create_request(queue, url),
        ],
    )
    response = await operation.result()
    metadata = operation.metadata
    listed = await stack.client.list_tasks(parent=queue)

    assert metadata.state == CreateState.PARTIALLY_SUCCEEDED
    assert int(metadata.state) == 5  # the proto's numbering: 5, not 3
    failed = metadata.failed_requests
    assert set(failed) == {1, 2}
    assert (failed[1].code, failed[1].message) == (6, "Requested entity already exists")
    assert failed[2].code == 3 and "must start with 'http://'" in failed[2].message
    assert response.tasks[0].name == f"{queue}/tasks/fresh"
    assert len(response.tasks) == 2
    assert len([task async for task in listed]) == 3  # taken, fresh, and the generated one


async def test_a_batch_whose_every_request_fails_is_aborted_with_the_documented_message(
    stack: GrpcStack,
) -> None:
    queue = stack.queue("all-fail")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})

    operation = await stack.client.batch_create_tasks(
        parent=queue, requests=[create_request(queue, "ftp://x/"), create_request(queue, "")]
    )
    # The async client raises a bare GoogleAPICallError for an operation's error (the sync
    # one an Aborted, as the REST test shows); the operation itself says ABORTED.
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        await operation.result()
    raw = await stack.client.get_operation({"name": operation.operation.name})

    message = NONE_SUCCEEDED.format(metadata="BatchCreateTasksMetadata")
    assert caught.value.message == message
    assert (raw.error.code, raw.error.message) == (10, message)  # ABORTED
    assert operation.metadata.state == CreateState.PARTIALLY_SUCCEEDED
    assert set(operation.metadata.failed_requests) == {0, 1}


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("too-many", "has 101 requests; the maximum is 100"),
        ("other-parent", "requests[1].parent"),
        ("empty", "requests is required"),
    ],
)
async def test_a_wrong_batch_is_invalid_before_anything_is_created(
    stack: GrpcStack, shape: str, message: str
) -> None:
    queue = stack.queue(f"limits-{shape}")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    url = "http://127.0.0.1:9/"
    requests = {
        "too-many": [create_request(queue, url) for _ in range(101)],
        "other-parent": [create_request(queue, url), create_request(stack.queue("other"), url)],
        "empty": [],
    }[shape]

    with pytest.raises(exceptions.InvalidArgument, match=message.replace("[", r"\[")):
        await stack.client.batch_create_tasks(parent=queue, requests=requests)

    assert [task async for task in await stack.client.list_tasks(parent=queue)] == []


async def test_a_batch_for_a_missing_queue_is_not_found(stack: GrpcStack) -> None:
    queue = stack.queue("missing")
    with pytest.raises(exceptions.NotFound, match="Queue does not exist"):
        await stack.client.batch_create_tasks(
            parent=queue, requests=[create_request(queue, "http://127.0.0.1:9/")]
        )
    with pytest.raises(exceptions.NotFound, match="Queue does not exist"):
        await stack.client.batch_delete_tasks(parent=queue, names=[f"{queue}/tasks/a"])


async def test_a_reused_request_id_returns_the_same_operation_and_creates_nothing_twice(
    stack: GrpcStack,
) -> None:
    queue = stack.queue("idempotent")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    await stack.client.pause_queue(name=queue)
    request_id = str(uuid.uuid4())
    url = "http://127.0.0.1:9/"
    request = {
        "parent": queue,
        "requests": [create_request(queue, url), create_request(queue, url)],
        "request_id": request_id,
    }

    first = await stack.client.batch_create_tasks(request=request)
    again = await stack.client.batch_create_tasks(request=request)
    other = await stack.client.batch_create_tasks(request={**request, "request_id": ""})

    assert again.operation.name == first.operation.name
    assert other.operation.name != first.operation.name
    assert [t.name for t in (await again.result()).tasks] == [
        t.name for t in (await first.result()).tasks
    ]
    assert len([task async for task in await stack.client.list_tasks(parent=queue)]) == 4


async def test_an_operation_not_done_on_the_first_answer_is_polled_to_its_end(
    receiver: Receiver,
) -> None:
    async with grpc_stack(pending_operation_polls=2) as stack:
        queue = stack.queue("polled")
        await stack.client.create_queue(parent=PARENT, queue={"name": queue})
        operation = await stack.client.batch_create_tasks(
            parent=queue, requests=[create_request(queue, receiver.url("/polled"), "p")]
        )
        first = operation.operation
        running = tasks_v2.BatchCreateTasksMetadata.deserialize(first.metadata.value)
        raw = await stack.client.get_operation({"name": first.name})  # the second answer
        response = await operation.result()  # the client polls GetOperation
        [received] = await receiver.wait_for_path("/polled")

    assert not first.done and running.state == CreateState.RUNNING
    assert not raw.done
    assert await operation.done()
    assert [task.name for task in response.tasks] == [f"{queue}/tasks/p"]
    assert operation.metadata.state == CreateState.SUCCEEDED
    assert received.header("X-CloudTasks-TaskName") == "p"


async def test_get_operation_answers_not_found_for_an_unknown_one_and_invalid_for_a_bad_name(
    stack: GrpcStack,
) -> None:
    with pytest.raises(exceptions.NotFound):
        await stack.client.get_operation({"name": f"{PARENT}/operations/nope"})
    with pytest.raises(exceptions.InvalidArgument, match="not an operation name"):
        await stack.client.get_operation({"name": "operations/nope"})


async def test_operations_are_kept_for_the_retention_time_on_the_engine_clock() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start()
    service = CloudTasksService(engine, operation_retention=timedelta(hours=2))
    queue = f"{PARENT}/queues/kept"
    await service.create_queue(
        V2.request("CreateQueueRequest")(parent=PARENT, queue={"name": queue})
    )
    request = V2.request("BatchCreateTasksRequest")(parent=queue, request_id="r-1")
    request.requests.add(parent=queue).task.http_request.url = "http://127.0.0.1:9/"
    operation = await service.batch_create_tasks(request)
    lookup = operations_pb2.GetOperationRequest(name=operation.name)

    clock.advance(timedelta(hours=1, minutes=59))
    kept = await service.get_operation(lookup)
    replayed = await service.batch_create_tasks(request)
    clock.advance(timedelta(minutes=2))
    with pytest.raises(NotFound):
        await service.get_operation(lookup)
    fresh = await service.batch_create_tasks(request)  # the request id is forgotten too
    await engine.close()

    assert kept.done and replayed.name == operation.name
    assert fresh.name != operation.name
    assert len(engine.list_tasks(queue)) == 2


async def test_batch_delete_reports_missing_and_foreign_names_and_aborts_when_none_succeeds(
    stack: GrpcStack,
) -> None:
    queue = stack.queue("deletes")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    await stack.client.pause_queue(name=queue)
    for task_id in ("a", "b"):
        await stack.client.create_task(
            parent=queue,
            task={
                "name": f"{queue}/tasks/{task_id}",
                "http_request": {"url": "http://127.0.0.1:9/"},
            },
        )

    partial = await stack.client.batch_delete_tasks(
        parent=queue,
        names=[f"{queue}/tasks/a", f"{queue}/tasks/ghost", f"{stack.queue('other')}/tasks/b"],
    )
    await partial.result()
    none = await stack.client.batch_delete_tasks(parent=queue, names=[f"{queue}/tasks/a"])
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        await none.result()
    with pytest.raises(exceptions.InvalidArgument, match="has 1001 names; the maximum is 1000"):
        await stack.client.batch_delete_tasks(
            parent=queue, names=[f"{queue}/tasks/n{i}" for i in range(1001)]
        )
    left = [task.name async for task in await stack.client.list_tasks(parent=queue)]

    metadata = partial.metadata
    assert metadata.state == DeleteState.PARTIALLY_SUCCEEDED and int(metadata.state) == 3
    assert set(metadata.failed_requests) == {1, 2}
    assert metadata.failed_requests[1].code == 5  # NOT_FOUND
    assert metadata.failed_requests[2].code == 3  # INVALID_ARGUMENT: another queue's task
    assert caught.value.message == NONE_SUCCEEDED.format(metadata="BatchDeleteTasksMetadata")
    assert none.metadata.failed_requests[0].message == "Requested entity was not found."
    assert left == [f"{queue}/tasks/b"]


async def test_v2beta3_batches_answer_v2beta3_messages(stack: GrpcStack) -> None:
    queue = stack.queue("beta-batch")
    await stack.beta.create_queue(parent=PARENT, queue={"name": queue})
    await stack.beta.pause_queue(name=queue)
    operation = await stack.beta.batch_create_tasks(
        parent=queue,
        requests=[
            {
                "parent": queue,
                "task": {
                    "name": f"{queue}/tasks/one",
                    "http_request": {"url": "http://127.0.0.1:9/"},
                    "retry_config": {"max_attempts": 2},
                },
                "response_view": tasks_v2beta3.Task.View.FULL,
            }
        ],
    )
    response = await operation.result()
    deleted = await stack.beta.batch_delete_tasks(parent=queue, names=[f"{queue}/tasks/one"])
    await deleted.result()

    assert operation.operation.metadata.type_url.endswith("v2beta3.BatchCreateTasksMetadata")
    assert operation.operation.response.type_url.endswith("v2beta3.BatchCreateTasksResponse")
    assert response.tasks[0].retry_config.max_attempts == 2
    assert response.tasks[0].view == tasks_v2beta3.Task.View.FULL
    assert deleted.metadata.state == tasks_v2beta3.BatchDeleteTasksMetadata.State.SUCCEEDED


@pytest.mark.slow
async def test_batches_and_get_operation_over_rest(
    emulator_server: EmulatorProcess, receiver: Receiver
) -> None:
    client = tasks_v2.CloudTasksClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_server.http_url),
        credentials=AnonymousCredentials(),
    )
    parent = "projects/rest-batch/locations/local"
    queue = f"{parent}/queues/b-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(client.create_queue, parent=parent, queue={"name": queue})

    operation = await asyncio.to_thread(
        client.batch_create_tasks,
        parent=queue,
        requests=[
            create_request(queue, receiver.url("/rest-batch"), "r1"),
            create_request(queue, "ftp://x/", "r2"),
        ],
    )
    response = await asyncio.to_thread(operation.result)
    raw = await asyncio.to_thread(client.get_operation, {"name": operation.operation.name})
    await receiver.wait_for_path("/rest-batch")
    with pytest.raises(exceptions.BadRequest, match="has 101 requests"):
        await asyncio.to_thread(
            client.batch_create_tasks,
            parent=queue,
            requests=[create_request(queue, receiver.url("/x")) for _ in range(101)],
        )
    deleted = await asyncio.to_thread(
        client.batch_delete_tasks, parent=queue, names=[f"{queue}/tasks/r1"]
    )
    with pytest.raises(exceptions.Aborted):  # r1 was delivered and is gone: nothing deleted
        await asyncio.to_thread(deleted.result)
    client.transport.close()

    assert [task.name for task in response.tasks] == [f"{queue}/tasks/r1"]
    assert operation.metadata.state == CreateState.PARTIALLY_SUCCEEDED
    assert set(operation.metadata.failed_requests) == {1}
    assert raw.done and raw.metadata.type_url.endswith("v2.BatchCreateTasksMetadata")
