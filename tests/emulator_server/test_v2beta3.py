"""v2beta3, the whole API, on the same engine: its own queue fields (type, task_ttl,
tombstone_ttl, stats behind a read mask), PULL queues, BufferTask over REST, and
UNIMPLEMENTED (naming the method) for what no Cloud Tasks client of 2.26 calls."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import aiohttp
import grpc
import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2beta3
from google.protobuf import field_mask_pb2

from tests.emulator_server.conftest import PARENT, GrpcStack
from tests.emulator_server.process import EmulatorProcess
from tests.support.receiver import Receiver

Type = tasks_v2beta3.Queue.Type


async def test_v2beta3_queue_fields_are_validated_and_echoed(stack: GrpcStack) -> None:
    queue = stack.queue("beta")
    created = await stack.beta.create_queue(
        parent=PARENT,
        queue={"name": queue, "task_ttl": timedelta(days=20), "tombstone_ttl": timedelta(hours=2)},
    )
    plain = await stack.beta.create_queue(parent=PARENT, queue={"name": stack.queue("plain")})
    with pytest.raises(exceptions.InvalidArgument, match="taskTtl must be between 10 days"):
        await stack.beta.create_queue(
            parent=PARENT, queue={"name": stack.queue("short"), "task_ttl": timedelta(days=1)}
        )
    with pytest.raises(exceptions.InvalidArgument, match="tombstoneTtl must be between 1 hour"):
        await stack.beta.create_queue(
            parent=PARENT,
            queue={"name": stack.queue("long"), "tombstone_ttl": timedelta(days=10)},
        )
    with pytest.raises(exceptions.InvalidArgument, match="maxBurstSize must be less than"):
        await stack.beta.create_queue(
            parent=PARENT,
            queue={"name": stack.queue("burst"), "rate_limits": {"max_burst_size": 501}},
        )
    through_v2 = await stack.client.get_queue(name=queue)

    assert created.type_ == Type.PUSH
    assert created.task_ttl == timedelta(days=20) and created.tombstone_ttl == timedelta(hours=2)
    assert plain.task_ttl == timedelta(days=31) and plain.tombstone_ttl == timedelta(hours=1)
    assert "stats" not in created
    assert through_v2.name == queue  # one engine: the same queue through v2


async def test_stats_come_only_when_the_read_mask_names_them(stack: GrpcStack) -> None:
    queue = stack.queue("stats")
    await stack.beta.create_queue(parent=PARENT, queue={"name": queue})
    await stack.beta.pause_queue(name=queue)
    await stack.beta.create_task(
        parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"}}
    )

    bare = await stack.beta.get_queue(name=queue)
    masked = await stack.beta.get_queue(request={"name": queue, "read_mask": {"paths": ["stats"]}})
    everything = await stack.beta.get_queue(request={"name": queue, "read_mask": {"paths": ["*"]}})
    listed = await stack.beta.list_queues(
        request={"parent": PARENT, "read_mask": {"paths": ["stats"]}}
    )
    listed_stats = {q.name: q.stats.tasks_count async for q in listed}

    assert "stats" not in bare and bare.state == tasks_v2beta3.Queue.State.PAUSED
    assert masked.stats.tasks_count == 1 and masked.name == ""  # only what the mask names
    assert everything.stats.tasks_count == 1 and everything.name == queue
    assert everything.stats.oldest_estimated_arrival_time is not None
    assert listed_stats[queue] == 1


async def test_a_pull_queue_takes_no_push_task_and_its_type_cannot_change(
    stack: GrpcStack,
) -> None:
    queue = stack.queue("pull")
    created = await stack.beta.create_queue(
        parent=PARENT, queue={"name": queue, "type_": Type.PULL}
    )
    with pytest.raises(exceptions.InvalidArgument, match="push task to a pull queue"):
        await stack.beta.create_task(
            parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"}}
        )
    with pytest.raises(exceptions.InvalidArgument, match="pullMessage cannot be set"):
        await stack.beta.create_task(parent=queue, task={"pull_message": {"payload": b"x"}})
    with pytest.raises(exceptions.InvalidArgument, match="type is immutable"):
        await stack.beta.update_queue(
            queue={"name": queue, "type_": Type.PUSH},
            update_mask=field_mask_pb2.FieldMask(paths=["type"]),
        )
    updated = await stack.beta.update_queue(
        queue={"name": queue, "rate_limits": {"max_dispatches_per_second": 3}},
        update_mask=field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"]),
    )

    assert created.type_ == Type.PULL and updated.type_ == Type.PULL
    assert updated.rate_limits.max_dispatches_per_second == 3


async def test_methods_no_client_calls_are_unimplemented_and_named(stack: GrpcStack) -> None:
    channel = grpc.aio.insecure_channel(stack.address)
    try:
        for method in (
            "/google.cloud.tasks.v2beta2.CloudTasks/LeaseTasks",
            "/google.longrunning.Operations/ListOperations",
            "/google.cloud.tasks.v2.CloudTasks/BufferTask",
        ):
            call = channel.unary_unary(method)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(b"")
            assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
            expected = method.strip("/").replace("/", ".")
            assert caught.value.details() == (
                f"Method {expected} is not implemented by the Cloud Tasks emulator."
            )
    finally:
        await channel.close()


@pytest.fixture
def beta_rest(emulator_server: EmulatorProcess) -> tasks_v2beta3.CloudTasksClient:
    return tasks_v2beta3.CloudTasksClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_server.http_url),
        credentials=AnonymousCredentials(),
    )


@pytest.mark.slow
async def test_v2beta3_over_rest_and_buffer_task_on_a_routed_queue(
    beta_rest: tasks_v2beta3.CloudTasksClient,
    emulator_server: EmulatorProcess,
    receiver: Receiver,
) -> None:
    parent = "projects/beta-rest/locations/local"
    queue = f"{parent}/queues/buf-{uuid.uuid4().hex[:8]}"
    port = int(receiver.base_url.rsplit(":", 1)[1])
    created = await asyncio.to_thread(
        beta_rest.create_queue,
        parent=parent,
        queue={
            "name": queue,
            "http_target": {
                "uri_override": {
                    "scheme": tasks_v2beta3.UriOverride.Scheme.HTTP,
                    "host": "127.0.0.1",
                    "port": port,
                    "path_override": {"path": "/buffered"},
                },
                "header_overrides": [{"header": {"key": "X-From", "value": "queue"}}],
            },
        },
    )
    base = f"{emulator_server.http_url}/v2beta3/{queue}/tasks"
    async with aiohttp.ClientSession() as http:
        named = await http.post(
            f"{base}/named-one:buffer", data=b"first", skip_auto_headers=["Content-Type"]
        )
        generated = await http.post(
            f"{base}:buffer", data=b"<p/>", headers={"Content-Type": "text/html"}
        )
        raw_queue = await (await http.get(f"{emulator_server.http_url}/v2beta3/{queue}")).json()
        v2beta2 = await http.get(f"{emulator_server.http_url}/v2beta2/{queue}")
        list_operations = await http.get(f"{emulator_server.http_url}/v2/{parent}/operations")
        named_body, generated_body = await named.json(), await generated.json()
        v2beta2_body, operations_body = await v2beta2.json(), await list_operations.json()
    delivered = await receiver.wait_for(lambda requests: len(requests) == 2)
    plain = f"{parent}/queues/plain-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(beta_rest.create_queue, parent=parent, queue={"name": plain})
    async with aiohttp.ClientSession() as http:
        refused = await http.post(
            f"{emulator_server.http_url}/v2beta3/{plain}/tasks:buffer", data=b"x"
        )
        refused_body = await refused.json()
    beta_rest.transport.close()

    assert created.http_target.uri_override.port == port
    assert raw_queue["httpTarget"]["uriOverride"]["port"] == str(port)  # int64: a JSON string
    assert named.status == 200 and named_body["task"]["name"] == f"{queue}/tasks/named-one"
    assert generated_body["task"]["name"].startswith(f"{queue}/tasks/")
    by_body = {request.body: request for request in delivered}
    assert by_body[b"first"].path == "/buffered"
    assert by_body[b"first"].header("Content-Type") == "application/json"
    assert by_body[b"<p/>"].header("Content-Type") == "text/html"
    assert by_body[b"first"].header("X-From") == "queue"
    assert refused.status == 400 and refused_body["error"]["status"] == "FAILED_PRECONDITION"
    assert v2beta2.status == 501 and v2beta2_body["error"]["status"] == "UNIMPLEMENTED"
    assert "v2beta2 API is not implemented" in v2beta2_body["error"]["message"]
    assert list_operations.status == 501
    assert "google.longrunning.Operations.ListOperations" in operations_body["error"]["message"]


@pytest.mark.slow
async def test_every_v2beta3_rpc_of_the_rest_client(
    beta_rest: tasks_v2beta3.CloudTasksClient,
) -> None:
    """One call of each v2beta3 method over REST (the batches are in their own tests)."""
    parent = "projects/beta-rest/locations/local"
    queue = f"{parent}/queues/all-{uuid.uuid4().hex[:8]}"

    def calls() -> list[object]:
        c = beta_rest
        answers: list[object] = [
            c.create_queue(parent=parent, queue={"name": queue}),
            c.update_queue(
                queue={"name": queue, "retry_config": {"max_attempts": 7}},
                update_mask={"paths": ["retry_config.max_attempts"]},
            ),
            c.pause_queue(name=queue),
            c.resume_queue(name=queue),
            c.pause_queue(name=queue),
            c.create_task(
                parent=queue,
                task={"name": f"{queue}/tasks/t", "http_request": {"url": "http://127.0.0.1:9/"}},
            ),
            c.get_task(name=f"{queue}/tasks/t"),
            list(c.list_tasks(parent=queue)),
            c.run_task(name=f"{queue}/tasks/t"),
            c.delete_task(name=f"{queue}/tasks/t"),
            c.get_iam_policy(resource=queue),
            c.set_iam_policy(request={"resource": queue, "policy": {}}),
            c.test_iam_permissions(resource=queue, permissions=["cloudtasks.tasks.create"]),
            c.get_cmek_config(name=f"{parent}/cmekConfig"),
            c.update_cmek_config(cmek_config={"name": f"{parent}/cmekConfig", "kms_key": ""}),
            c.get_location({"name": parent}),
            c.list_locations({"name": "projects/beta-rest"}),
            c.purge_queue(name=queue),
            c.get_queue(name=queue),
            list(c.list_queues(parent=parent)),
        ]
        c.delete_queue(name=queue)
        return answers

    answers = await asyncio.to_thread(calls)
    beta_rest.transport.close()

    updated = answers[1]
    assert updated.retry_config.max_attempts == 7  # type: ignore[attr-defined]
    assert answers[9] is None  # DeleteTask answers Empty
    assert answers[18].purge_time is not None  # type: ignore[attr-defined]
    assert queue in [q.name for q in answers[19]]  # type: ignore[attr-defined]
