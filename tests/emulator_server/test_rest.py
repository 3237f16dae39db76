"""The REST face, driven by Google's own client with ``transport="rest"`` against a real
``python -m emulator`` process; plus the OIDC discovery document and JWKS it serves."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import jwt
import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2

from tests.emulator_server.process import EmulatorProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow
PARENT = "projects/rest-project/locations/local"


@pytest.fixture
def rest_client(emulator_server: EmulatorProcess) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=emulator_server.http_url),
        credentials=AnonymousCredentials(),
    )


async def test_rest_client_creates_a_queue_and_a_task_that_is_delivered(
    rest_client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_name = f"{PARENT}/queues/rest-{uuid.uuid4().hex[:8]}"
    queue = await asyncio.to_thread(
        rest_client.create_queue,
        parent=PARENT,
        queue={"name": queue_name, "rate_limits": {"max_dispatches_per_second": 5}},
    )
    task = await asyncio.to_thread(
        rest_client.create_task,
        parent=queue_name,
        task={
            "name": f"{queue_name}/tasks/hello",
            "http_request": {
                "url": receiver.url("/rest"),
                "body": b'{"x": 1}',
                "headers": {"Content-Type": "application/json"},
            },
        },
    )
    [received] = await receiver.wait_for_path("/rest")

    assert queue.rate_limits.max_dispatches_per_second == 5
    assert queue.rate_limits.max_burst_size == 10
    assert task.name == f"{queue_name}/tasks/hello"
    assert received.body == b'{"x": 1}'
    assert received.header("X-CloudTasks-TaskName") == "hello"
    assert received.header("X-CloudTasks-QueueName") == queue_name.rsplit("/", 1)[-1]


async def test_rest_errors_use_google_codes_and_messages(
    rest_client: tasks_v2.CloudTasksClient,
) -> None:
    queue_name = f"{PARENT}/queues/rest-{uuid.uuid4().hex[:8]}"
    with pytest.raises(exceptions.NotFound, match="Queue does not exist"):
        await asyncio.to_thread(rest_client.get_queue, name=queue_name, retry=None)
    await asyncio.to_thread(rest_client.create_queue, parent=PARENT, queue={"name": queue_name})
    with pytest.raises(exceptions.Conflict, match="Queue already exists"):  # HTTP 409
        await asyncio.to_thread(rest_client.create_queue, parent=PARENT, queue={"name": queue_name})
    with pytest.raises(exceptions.BadRequest, match="must be less than or equal to 500"):
        await asyncio.to_thread(
            rest_client.update_queue,
            queue={"name": queue_name, "rate_limits": {"max_dispatches_per_second": 900}},
            update_mask=field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"]),
        )


async def test_rest_update_mask_paging_and_views(rest_client: tasks_v2.CloudTasksClient) -> None:
    queue_name = f"{PARENT}/queues/rest-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(rest_client.create_queue, parent=PARENT, queue={"name": queue_name})
    await asyncio.to_thread(rest_client.pause_queue, name=queue_name)
    updated = await asyncio.to_thread(
        rest_client.update_queue,
        queue={"name": queue_name, "retry_config": {"max_attempts": 4, "max_doublings": 2}},
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"]),
    )
    for _ in range(5):
        await asyncio.to_thread(
            rest_client.create_task,
            parent=queue_name,
            task={"http_request": {"url": "http://127.0.0.1:9/", "body": b"b"}},
        )

    def list_all() -> list[tasks_v2.Task]:
        request = {"parent": queue_name, "page_size": 2, "response_view": tasks_v2.Task.View.FULL}
        return list(rest_client.list_tasks(request=request))

    tasks = await asyncio.to_thread(list_all)

    assert updated.retry_config.max_attempts == 4 and updated.retry_config.max_doublings == 16
    assert updated.state == tasks_v2.Queue.State.PAUSED
    assert len(tasks) == 5 and {t.http_request.body for t in tasks} == {b"b"}


async def test_oidc_discovery_and_jwks_verify_a_delivered_token(
    emulator_server: EmulatorProcess, rest_client: tasks_v2.CloudTasksClient, receiver: Receiver
) -> None:
    queue_name = f"{PARENT}/queues/oidc-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(rest_client.create_queue, parent=PARENT, queue={"name": queue_name})
    await asyncio.to_thread(
        rest_client.create_task,
        parent=queue_name,
        task={
            "http_request": {
                "url": receiver.url("/oidc"),
                "oidc_token": {
                    "service_account_email": "worker@rest-project.iam.gserviceaccount.com",
                    "audience": "https://api.example.test",
                },
            }
        },
    )
    [received] = await receiver.wait_for_path("/oidc")
    token = (received.header("Authorization") or "").removeprefix("Bearer ")

    async with aiohttp.ClientSession() as session:
        async with session.get(emulator_server.http_url + "/.well-known/openid-configuration") as r:
            discovery = await r.json()
        async with session.get(discovery["jwks_uri"]) as r:
            jwks = await r.json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience="https://api.example.test",
        issuer=discovery["issuer"],
    )

    assert claims["email"] == "worker@rest-project.iam.gserviceaccount.com"
    assert claims["email_verified"] is True


async def test_rest_rejects_bad_json_and_unknown_paths_with_google_error_bodies(
    emulator_server: EmulatorProcess,
) -> None:
    base = f"{emulator_server.http_url}/v2/{PARENT}/queues"
    async with aiohttp.ClientSession() as session:
        async with session.post(base, data=b"{not json") as response:
            bad_json = (response.status, await response.json())
        async with session.get(f"{emulator_server.http_url}/v2/nonsense") as response:
            unknown = (response.status, await response.json())
        async with session.post(
            base + "?$alt=json;enum-encoding=int",
            json={"name": f"{PARENT}/queues/enum-{uuid.uuid4().hex[:8]}"},
        ) as response:
            numeric = await response.json()

    assert bad_json[0] == 400 and bad_json[1]["error"]["status"] == "INVALID_ARGUMENT"
    assert unknown[0] == 404 and unknown[1]["error"]["status"] == "NOT_FOUND"
    assert numeric["state"] == 1  # RUNNING, as a number when the client asks for numbers


async def test_rest_not_found_names_the_resource_type_like_grpc(
    rest_client: tasks_v2.CloudTasksClient,
) -> None:
    """A missing queue and a missing task answer the same message; the ResourceInfo detail
    (also on the gRPC face) is what tells them apart."""
    queue_name = f"{PARENT}/queues/rest-{uuid.uuid4().hex[:8]}"
    with pytest.raises(exceptions.NotFound) as missing_queue:
        await asyncio.to_thread(rest_client.delete_queue, name=queue_name, retry=None)
    await asyncio.to_thread(rest_client.create_queue, parent=PARENT, queue={"name": queue_name})
    with pytest.raises(exceptions.NotFound) as missing_task:
        await asyncio.to_thread(
            rest_client.delete_task, name=f"{queue_name}/tasks/nobody", retry=None
        )

    assert missing_queue.value.message.endswith("Requested entity was not found.")
    assert missing_task.value.message.endswith("Requested entity was not found.")
    assert missing_queue.value.details == [
        {
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceType": "cloudtasks.googleapis.com/Queue",
        }
    ]
    assert missing_task.value.details == [
        {
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceType": "cloudtasks.googleapis.com/Task",
        }
    ]


async def test_rest_v2_queue_http_target_round_trips_and_is_cleared_by_its_mask(
    rest_client: tasks_v2.CloudTasksClient, emulator_server: EmulatorProcess, receiver: Receiver
) -> None:
    queue_name = f"{PARENT}/queues/routed-{uuid.uuid4().hex[:8]}"
    port = int(receiver.base_url.rsplit(":", 1)[1])
    await asyncio.to_thread(
        rest_client.create_queue,
        parent=PARENT,
        queue={
            "name": queue_name,
            "http_target": {
                "uri_override": {"scheme": 1, "host": "127.0.0.1", "port": port},
                "http_method": tasks_v2.HttpMethod.PUT,
            },
        },
    )
    await asyncio.to_thread(
        rest_client.create_task,
        parent=queue_name,
        task={"http_request": {"url": "https://x.invalid/p"}},
    )
    [received] = await receiver.wait_for_path("/p")
    async with aiohttp.ClientSession() as http:
        raw = await (await http.get(f"{emulator_server.http_url}/v2/{queue_name}")).json()
    cleared = await asyncio.to_thread(
        rest_client.update_queue,
        queue={"name": queue_name},
        update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
    )

    assert received.method == "PUT"
    assert raw["httpTarget"]["uriOverride"]["port"] == str(port)  # int64: a JSON string
    assert raw["httpTarget"]["httpMethod"] == "PUT"
    assert "http_target" not in cleared
