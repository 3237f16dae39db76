"""The shapes of Google's published Python samples (python-docs-samples ``cloud_tasks/``
snippets and ``http_queues/``, and the App Engine task sample), rewritten here with the same
calls and arguments, against the emulator over gRPC and over REST: only the way the client is
pointed at it differs. Each test names the sample it mirrors.

The App Engine sample calls ``client.create_task(parent, task)`` positionally, the 1.x
client's signature, which the 2.x client refuses whatever the server; it is exercised with
keywords.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
import requests
from aiohttp.test_utils import TestServer
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports as v2_transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as beta_transports
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from emulator.engine import Engine
from emulator.grpc_server import build_server
from emulator.oidc import OidcIssuer
from emulator.rest import build_app
from emulator.service import CloudTasksService
from tests.support.receiver import Receiver

PROJECT = "sample-project"
LOCATION = "us-central1"
SA = f"invoker@{PROJECT}.iam.gserviceaccount.com"


@dataclass
class Emulator:
    grpc_address: str
    rest_url: str

    def client(self, module: Any, transport: str) -> Any:
        """The sample's ``CloudTasksClient()``, pointed at the emulator."""
        if transport == "rest":
            return module.CloudTasksClient(
                transport="rest",
                client_options=ClientOptions(api_endpoint=self.rest_url),
                credentials=AnonymousCredentials(),
            )
        transports = v2_transports if module is tasks_v2 else beta_transports
        channel = grpc.insecure_channel(self.grpc_address)
        return module.CloudTasksClient(
            transport=transports.CloudTasksGrpcTransport(channel=channel)
        )


@pytest.fixture
async def emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    """gRPC and REST faces in this loop; the receiver also plays the App Engine app."""
    issuer = OidcIssuer()
    engine = Engine(token_minter=issuer, app_engine_host=receiver.base_url)
    await engine.start()
    service = CloudTasksService(engine, default_location=LOCATION)
    server, port = build_server(service, "127.0.0.1:0")
    await server.start()
    rest = TestServer(build_app(service, issuer), host="127.0.0.1")
    await rest.start_server()
    try:
        yield Emulator(f"127.0.0.1:{port}", str(rest.make_url("")).rstrip("/"))
    finally:
        await rest.close()
        await server.stop(None)
        await engine.close()


TRANSPORTS = pytest.mark.parametrize("transport", ["grpc", "rest"])


async def in_thread(call: Callable[[], Any]) -> Any:
    """The samples use the synchronous client; the emulator runs on this loop."""
    return await asyncio.to_thread(call)


@TRANSPORTS
async def test_snippets_create_list_and_delete_queue(emulator: Emulator, transport: str) -> None:
    """cloud_tasks/snippets: create_queue.py, list_queues.py, delete_queue.py."""
    client = emulator.client(tasks_v2, transport)
    parent = f"projects/{PROJECT}/locations/{LOCATION}"
    queue = {"name": client.queue_path(PROJECT, LOCATION, f"snippets-{transport}")}

    def run() -> tuple[Any, list[str], list[str]]:
        created = client.create_queue(request={"parent": parent, "queue": queue})
        names = [q.name for q in client.list_queues(request={"parent": parent})]
        client.delete_queue(request={"name": created.name})
        after = [q.name for q in client.list_queues(request={"parent": parent})]
        return created, names, after

    created, names, after = await in_thread(run)

    assert created.name == queue["name"] and created.name in names
    assert created.name not in after


@TRANSPORTS
async def test_snippets_create_http_task_with_payload_schedule_name_and_deadline(
    emulator: Emulator, transport: str, receiver: Receiver
) -> None:
    """cloud_tasks/snippets/create_http_task.py with every optional argument."""
    client = emulator.client(tasks_v2, transport)
    queue = f"http-{transport}"
    await in_thread(
        lambda: client.create_queue(
            request={
                "parent": f"projects/{PROJECT}/locations/{LOCATION}",
                "queue": {"name": client.queue_path(PROJECT, LOCATION, queue)},
            }
        )
    )

    def create() -> Any:
        parent = client.queue_path(PROJECT, LOCATION, queue)
        task: dict[str, Any] = {
            "http_request": {
                "http_method": tasks_v2.HttpMethod.POST,
                "url": receiver.url("/handler"),
            }
        }
        payload = json.dumps({"param": "value"})
        task["http_request"]["headers"] = {"Content-type": "application/json"}
        task["http_request"]["body"] = payload.encode()
        when = datetime.datetime.utcnow() + datetime.timedelta(seconds=0)  # the sample's naive UTC
        timestamp = timestamp_pb2.Timestamp()
        timestamp.FromDatetime(when)
        task["schedule_time"] = timestamp
        task["name"] = client.task_path(PROJECT, LOCATION, queue, "my-unique-task")
        duration = duration_pb2.Duration()
        duration.FromSeconds(900)
        task["dispatch_deadline"] = duration
        return client.create_task(request={"parent": parent, "task": task})

    response = await in_thread(create)
    [received] = await receiver.wait_for_path("/handler")

    assert response.name.endswith("/tasks/my-unique-task")
    assert response.dispatch_deadline == datetime.timedelta(seconds=900)
    assert json.loads(received.body) == {"param": "value"}
    assert received.header("Content-type") == "application/json"
    assert received.header("X-CloudTasks-TaskName") == "my-unique-task"


@TRANSPORTS
async def test_snippets_create_http_task_with_token(
    emulator: Emulator, transport: str, receiver: Receiver
) -> None:
    """cloud_tasks/snippets/create_http_task_with_token.py (an OIDC token with an audience)."""
    client = emulator.client(tasks_v2, transport)
    queue = f"token-{transport}"
    await in_thread(
        lambda: client.create_queue(
            parent=f"projects/{PROJECT}/locations/{LOCATION}",
            queue={"name": client.queue_path(PROJECT, LOCATION, queue)},
        )
    )
    url = receiver.url("/task_handler?param=value")
    task = {
        "http_request": {
            "http_method": tasks_v2.HttpMethod.POST,
            "url": url,
            "oidc_token": {"service_account_email": SA, "audience": receiver.url("/task_handler")},
            "body": b"hello",
        }
    }
    parent = client.queue_path(PROJECT, LOCATION, queue)
    await in_thread(lambda: client.create_task(request={"parent": parent, "task": task}))
    [received] = await receiver.wait_for_path("/task_handler?param=value")
    token = (received.header("Authorization") or "").removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})

    assert (claims["aud"], claims["email"]) == (receiver.url("/task_handler"), SA)
    assert received.body == b"hello"


def _http_target(uri: str) -> dict[str, Any]:
    """What http_queues/create_http_queue.py and update_http_queue.py build from a URI."""
    parsed = urllib.parse.urlparse(uri)
    http_target: dict[str, Any] = {
        "uri_override": {
            "host": parsed.hostname,
            "uri_override_enforce_mode": tasks_v2beta3.UriOverride.UriOverrideEnforceMode.ALWAYS,
        }
    }
    if parsed.scheme == "http":
        http_target["uri_override"]["scheme"] = tasks_v2beta3.UriOverride.Scheme.HTTP
    if parsed.port:
        http_target["uri_override"]["port"] = f"{parsed.port}"  # a string, as the sample sends
    if parsed.path:
        http_target["uri_override"]["path_override"] = {"path": parsed.path}
    if parsed.query:
        http_target["uri_override"]["query_override"] = {"query_params": parsed.query}
    return http_target


@TRANSPORTS
async def test_http_queues_create_get_update_buffer_and_delete(
    emulator: Emulator, transport: str, receiver: Receiver
) -> None:
    """cloud_tasks/http_queues: create_http_queue.py, get_http_queue.py, update_http_queue.py
    (as its test calls it: a new URI, then rate and attempts), send_task_to_http_queue.py
    (BufferTask with ``requests``) and delete_http_queue.py, all on v2beta3."""
    client = emulator.client(tasks_v2beta3, transport)
    name = f"httpq-{transport}"

    def scenario() -> tuple[Any, Any, Any, Any, int]:
        queue = client.create_queue(
            tasks_v2beta3.CreateQueueRequest(
                parent=client.common_location_path(PROJECT, LOCATION),
                queue={
                    "name": f"projects/{PROJECT}/locations/{LOCATION}/queues/{name}",
                    "http_target": _http_target(receiver.url("/first")),
                },
            )
        )
        fetched = client.get_queue(name=f"projects/{PROJECT}/locations/{LOCATION}/queues/{name}")
        update_mask = {"paths": ["http_target"]}
        fetched.http_target = _http_target(receiver.url("/somepath"))
        update_mask["paths"].extend(["rate_limits", "retry_config"])
        moved = client.update_queue(
            tasks_v2beta3.UpdateQueueRequest(queue=fetched, update_mask=update_mask)
        )
        moved.rate_limits.max_dispatches_per_second = 5.0
        moved.retry_config.max_attempts = 2
        tuned = client.update_queue(
            tasks_v2beta3.UpdateQueueRequest(
                queue=moved,
                update_mask=field_mask_pb2.FieldMask(paths=["rate_limits", "retry_config"]),
            )
        )
        endpoint = f"{emulator.rest_url}/v2beta3/{tuned.name}/tasks:buffer"
        status = requests.post(
            endpoint, "something", headers={"Authorization": "Bearer token"}
        ).status_code
        return queue, fetched, moved, tuned, status

    queue, fetched, moved, tuned, status = await in_thread(scenario)
    [received] = await receiver.wait_for_path("/somepath")
    await in_thread(lambda: client.delete_queue(name=tuned.name))

    assert queue.http_target.uri_override.path_override.path == "/first"
    assert fetched.name == queue.name
    assert moved.http_target.uri_override.path_override.path == "/somepath"
    assert tuned.rate_limits.max_dispatches_per_second == 5.0
    assert tuned.retry_config.max_attempts == 2
    assert status < 400
    assert received.body == b"something" and received.method == "POST"
    assert received.header("Authorization") is None  # the buffering call's token is not copied


@TRANSPORTS
async def test_app_engine_task_sample(
    emulator: Emulator, transport: str, receiver: Receiver
) -> None:
    """appengine/flexible/tasks/create_app_engine_queue_task.py (keywords, see the module)."""
    client = emulator.client(tasks_v2, transport)
    queue = f"appengine-{transport}"
    await in_thread(
        lambda: client.create_queue(
            parent=f"projects/{PROJECT}/locations/{LOCATION}",
            queue={"name": client.queue_path(PROJECT, LOCATION, queue)},
        )
    )
    parent = client.queue_path(PROJECT, LOCATION, queue)
    task = {
        "app_engine_http_request": {"http_method": "POST", "relative_uri": "/example_task_handler"}
    }
    task["app_engine_http_request"]["body"] = b"hello"  # type: ignore[index]
    response = await in_thread(lambda: client.create_task(parent=parent, task=task))
    [received] = await receiver.wait_for_path("/example_task_handler")

    assert response.app_engine_http_request.app_engine_routing.host == f"{PROJECT}.appspot.com"
    assert received.body == b"hello"
    assert received.header("X-AppEngine-QueueName") == queue
    assert received.header("Host") == f"{PROJECT}.appspot.com"
