"""Where and how tasks are delivered, checked on the receiving side, through the official
async client: the queue-level ``http_target`` (URI, method, headers, tokens; applied at
dispatch time, so also to tasks queued before it changed), App Engine tasks with their
routing and ``X-AppEngine-*`` headers, OAuth tokens, and CMEK's refusal of queue routing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2

from emulator.oauth import TOKEN_PREFIX
from emulator.rest import build_app
from emulator.targets import APP_ENGINE_USER_AGENT
from tests.emulator_server.conftest import PARENT, GrpcStack, grpc_stack
from tests.support.receiver import Receiver

SA = "worker@test-project.iam.gserviceaccount.com"


def uri_override(receiver: Receiver, **extra: object) -> dict[str, object]:
    port = urlsplit(receiver.base_url).port
    return {"scheme": tasks_v2.UriOverride.Scheme.HTTP, "host": "127.0.0.1", "port": port, **extra}


@pytest.fixture
async def app_engine_stack(receiver: Receiver) -> AsyncIterator[GrpcStack]:
    """The receiver plays the App Engine app (``--app-engine-host``)."""
    async with grpc_stack(engine_options={"app_engine_host": receiver.base_url}) as ready:
        yield ready


async def test_queue_routing_reaches_tasks_queued_before_it_and_after_it(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("routed")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    await stack.client.pause_queue(name=queue)
    before = await stack.client.create_task(
        parent=queue,
        task={"http_request": {"url": "http://10.255.255.1:1/old/path?x=1", "body": b"early"}},
    )
    updated = await stack.client.update_queue(
        queue={
            "name": queue,
            "http_target": {
                "uri_override": uri_override(receiver, path_override={"path": "/new"}),
                "http_method": tasks_v2.HttpMethod.PUT,
                "header_overrides": [{"header": {"key": "X-Queue", "value": "routed"}}],
            },
        },
        update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
    )
    await stack.client.create_task(
        parent=queue, task={"http_request": {"url": "https://example.invalid/other"}}
    )
    stored = await stack.client.get_task(name=before.name)
    await stack.client.resume_queue(name=queue)
    delivered = await receiver.wait_for(lambda requests: len(requests) == 2)

    # ALWAYS (the default): the override's path replaces the task's, its query is kept.
    assert sorted(request.path for request in delivered) == ["/new", "/new?x=1"]
    assert {request.method for request in delivered} == {"PUT"}
    assert {request.header("X-Queue") for request in delivered} == {"routed"}
    assert next(r.body for r in delivered if r.path == "/new?x=1") == b"early"
    assert stored.http_request.url == "http://10.255.255.1:1/old/path?x=1"  # as created
    shown = updated.http_target.uri_override
    assert (shown.host, shown.path_override.path) == ("127.0.0.1", "/new")
    assert shown.uri_override_enforce_mode == 0  # unset: ALWAYS, echoed as sent


async def test_if_not_exists_routes_only_tasks_without_a_url_and_fills_missing_headers(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("fallback")
    await stack.client.create_queue(
        parent=PARENT,
        queue={
            "name": queue,
            "http_target": {
                "uri_override": uri_override(
                    receiver,
                    path_override={"path": "/fallback"},
                    query_override={"query_params": "from=queue"},
                    uri_override_enforce_mode=tasks_v2.UriOverride.UriOverrideEnforceMode.IF_NOT_EXISTS,
                ),
                "http_method": tasks_v2.HttpMethod.GET,
                "header_overrides": [
                    {"header": {"key": "X-Mine", "value": "queue"}},
                    {"header": {"key": "X-Extra", "value": "queue"}},
                ],
            },
        },
    )
    await stack.client.create_task(
        parent=queue,
        task={
            "http_request": {
                "url": receiver.url("/own"),
                "headers": {"x-mine": "task"},
                "body": b"kept",
            }
        },
    )
    await stack.client.create_task(parent=queue, task={"http_request": {"body": b"dropped"}})
    delivered = await receiver.wait_for(lambda requests: len(requests) == 2)
    own = next(r for r in delivered if r.path == "/own")
    routed = next(r for r in delivered if r.path.startswith("/fallback"))

    assert (own.method, own.body, own.header("X-Mine")) == ("POST", b"kept", "task")
    assert own.header("X-Extra") == "queue"
    assert routed.path == "/fallback?from=queue" and routed.method == "GET"
    assert routed.body == b""  # a GET override drops the body


async def test_an_empty_url_is_refused_on_a_queue_without_routing(stack: GrpcStack) -> None:
    queue = stack.queue("plain")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    with pytest.raises(exceptions.InvalidArgument, match=r"HttpRequest\.url is required"):
        await stack.client.create_task(parent=queue, task={"http_request": {}})


async def test_a_queue_token_replaces_the_tasks_and_port_zero_clears_the_port(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("tokens")
    await stack.client.create_queue(
        parent=PARENT,
        queue={
            "name": queue,
            "http_target": {
                "uri_override": {"path_override": {"path": "/t"}},
                "oidc_token": {"service_account_email": SA, "audience": "https://aud"},
            },
        },
    )
    await stack.client.create_task(
        parent=queue,
        task={"http_request": {"url": receiver.url("/x"), "headers": {"Authorization": "mine"}}},
    )
    [received] = await receiver.wait_for_path("/t")
    token = (received.header("Authorization") or "").removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["aud"] == "https://aud" and claims["email"] == SA
    with pytest.raises(exceptions.InvalidArgument, match="both serviceAccountEmail and audience"):
        await stack.client.update_queue(
            queue={"name": queue, "http_target": {"oidc_token": {"service_account_email": SA}}},
            update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
        )
    with pytest.raises(exceptions.InvalidArgument, match="host cannot be an empty string"):
        await stack.client.update_queue(
            queue={"name": queue, "http_target": {"uri_override": {"host": ""}}},
            update_mask=field_mask_pb2.FieldMask(paths=["http_target"]),
        )


async def test_routing_is_removed_by_a_mask_naming_http_target_with_none_sent(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("unrouted")
    await stack.client.create_queue(
        parent=PARENT,
        queue={"name": queue, "http_target": {"uri_override": {"path_override": {"path": "/q"}}}},
    )
    cleared = await stack.client.update_queue(
        queue={"name": queue}, update_mask=field_mask_pb2.FieldMask(paths=["http_target"])
    )
    await stack.client.create_task(
        parent=queue, task={"http_request": {"url": receiver.url("/own")}}
    )
    [received] = await receiver.wait_for_path("/own")

    assert "http_target" not in cleared
    assert received.method == "POST"


async def test_cmek_refuses_queue_routing_and_tasks_on_routed_queues(stack: GrpcStack) -> None:
    routed = stack.queue("cmek-routed")
    await stack.client.create_queue(
        parent=PARENT,
        queue={"name": routed, "http_target": {"uri_override": {"host": "127.0.0.1"}}},
    )
    key = f"{PARENT}/keyRings/ring/cryptoKeys/key"
    config = await stack.client.update_cmek_config(
        cmek_config={"name": f"{PARENT}/cmekConfig", "kms_key": key}
    )

    with pytest.raises(exceptions.FailedPrecondition, match="not compatible with CMEK"):
        await stack.client.create_task(parent=routed, task={"http_request": {}})
    with pytest.raises(exceptions.FailedPrecondition, match="not compatible with CMEK"):
        await stack.client.create_queue(
            parent=PARENT,
            queue={"name": stack.queue("cmek-new"), "http_target": {"http_method": 1}},
        )
    await stack.client.update_cmek_config(cmek_config={"name": f"{PARENT}/cmekConfig"})
    created = await stack.client.create_task(parent=routed, task={"http_request": {}})

    assert config.kms_key == key and config.name == f"{PARENT}/cmekConfig"
    assert created.name.startswith(routed + "/tasks/")


async def test_cmek_configs_are_kept_per_location_validated_and_cleared(
    stack: GrpcStack,
) -> None:
    other = "projects/test-project/locations/elsewhere"
    empty = await stack.client.get_cmek_config(name=f"{PARENT}/cmekConfig")
    key = "projects/test-project/locations/local/keyRings/r/cryptoKeys/k"
    await stack.client.update_cmek_config(
        cmek_config={"name": f"{PARENT}/cmekConfig", "kms_key": key},
        update_mask=field_mask_pb2.FieldMask(paths=["kms_key"]),
    )
    kept = await stack.client.get_cmek_config(name=f"{PARENT}/CmekConfig")
    elsewhere = await stack.client.get_cmek_config(name=f"{other}/cmekConfig")
    with pytest.raises(exceptions.InvalidArgument, match="kmsKey must be of the form"):
        await stack.client.update_cmek_config(
            cmek_config={"name": f"{PARENT}/cmekConfig", "kms_key": "my-key"}
        )
    with pytest.raises(exceptions.InvalidArgument, match="not a CMEK config name"):
        await stack.client.get_cmek_config(name=f"{PARENT}/queues/q")
    beta = await stack.beta.get_cmek_config(name=f"{PARENT}/cmekConfig")

    assert empty.kms_key == "" and empty.name == f"{PARENT}/cmekConfig"
    assert kept.kms_key == key and elsewhere.kms_key == ""
    assert beta.kms_key == key


async def test_app_engine_tasks_reach_the_app_engine_host_with_routing_and_headers(
    app_engine_stack: GrpcStack, receiver: Receiver
) -> None:
    stack = app_engine_stack
    queue = stack.queue("appengine")
    attempts = iter([503, 404, 200])
    receiver.responder = lambda request: next(attempts)
    await stack.client.create_queue(
        parent=PARENT,
        queue={
            "name": queue,
            "retry_config": {
                "min_backoff": timedelta(milliseconds=1),
                "max_backoff": timedelta(milliseconds=5),
            },
        },
    )
    created = await stack.client.create_task(
        parent=queue,
        task={
            "name": f"{queue}/tasks/ae",
            "app_engine_http_request": {
                "http_method": tasks_v2.HttpMethod.POST,
                "relative_uri": "/log_payload?x=1",
                "app_engine_routing": {"service": "worker", "version": "v2"},
                "headers": {"X-AppEngine-Fake": "dropped", "X-Mine": "kept"},
                "body": b"hello",
            },
        },
    )
    delivered = await receiver.wait_for(lambda requests: len(requests) == 3)

    routing = created.app_engine_http_request.app_engine_routing
    assert routing.host == "v2.worker.test-project.appspot.com"
    headers = dict(created.app_engine_http_request.headers)
    assert headers["User-Agent"] == APP_ENGINE_USER_AGENT
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == "5" and "X-AppEngine-Fake" not in headers
    first, second, third = delivered
    assert first.path == "/log_payload?x=1" and first.body == b"hello"
    assert first.header("Host") == "v2.worker.test-project.appspot.com"
    assert first.header("X-AppEngine-QueueName") == "appengine"
    assert first.header("X-AppEngine-TaskName") == "ae"
    assert first.header("X-Mine") == "kept" and first.header("X-AppEngine-Fake") is None
    assert first.header("User-Agent") == APP_ENGINE_USER_AGENT
    # Recorded from Cloud Tasks: ExecutionCount counts the 503 too; RetryReason "App Error".
    counts = [
        (r.header("X-AppEngine-TaskRetryCount"), r.header("X-AppEngine-TaskExecutionCount"))
        for r in delivered
    ]
    assert counts == [("0", "0"), ("1", "1"), ("2", "2")]
    assert first.header("X-AppEngine-TaskPreviousResponse") is None
    assert second.header("X-AppEngine-TaskPreviousResponse") == "503"
    assert third.header("X-AppEngine-TaskPreviousResponse") == "404"
    assert third.header("X-AppEngine-TaskRetryReason") == "App Error"
    assert first.header("X-CloudTasks-QueueName") is None


async def test_the_queue_routing_override_wins_and_is_shown_with_its_host(
    app_engine_stack: GrpcStack, receiver: Receiver
) -> None:
    stack = app_engine_stack
    queue = stack.queue("ae-override")
    created_queue = await stack.client.create_queue(
        parent=PARENT,
        queue={"name": queue, "app_engine_routing_override": {"service": "api"}},
    )
    await stack.client.pause_queue(name=queue)
    task = await stack.client.create_task(
        parent=queue,
        task={"app_engine_http_request": {"app_engine_routing": {"service": "ignored"}}},
    )
    await stack.client.resume_queue(name=queue)
    [received] = await receiver.wait_for_path("/")

    assert created_queue.app_engine_routing_override.host == "api.test-project.appspot.com"
    assert task.app_engine_http_request.app_engine_routing.service == "api"
    assert task.app_engine_http_request.relative_uri == "/"
    assert received.header("Host") == "api.test-project.appspot.com"
    assert received.method == "POST"


async def test_app_engine_request_rules(app_engine_stack: GrpcStack) -> None:
    stack = app_engine_stack
    queue = stack.queue("ae-rules")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    with pytest.raises(
        exceptions.InvalidArgument, match="only allowed if the HTTP method is POST or PUT"
    ):
        await stack.client.create_task(
            parent=queue,
            task={
                "app_engine_http_request": {"http_method": tasks_v2.HttpMethod.PATCH, "body": b"x"}
            },
        )
    with pytest.raises(exceptions.InvalidArgument, match="relativeUri must begin with '/'"):
        await stack.client.create_task(
            parent=queue, task={"app_engine_http_request": {"relative_uri": "no-slash"}}
        )
    with pytest.raises(exceptions.InvalidArgument, match=r"\[15s, 24h15s\]"):
        await stack.client.create_task(
            parent=queue,
            task={"app_engine_http_request": {}, "dispatch_deadline": timedelta(hours=25)},
        )
    long = await stack.client.create_task(
        parent=queue,
        task={"app_engine_http_request": {}, "dispatch_deadline": timedelta(hours=2)},
    )
    assert long.dispatch_deadline == timedelta(hours=2)


async def test_an_oauth_task_gets_an_opaque_bearer_token_the_tokeninfo_explains(
    stack: GrpcStack, receiver: Receiver
) -> None:
    queue = stack.queue("oauth")
    await stack.client.create_queue(parent=PARENT, queue={"name": queue})
    scope = "https://www.googleapis.com/auth/cloud-platform"
    for path in ("/o1", "/o2"):
        await stack.client.create_task(
            parent=queue,
            task={
                "http_request": {
                    "url": receiver.url(path),
                    "oauth_token": {"service_account_email": SA, "scope": scope},
                }
            },
        )
    one, two = await receiver.wait_for(lambda requests: len(requests) == 2)
    token = (one.header("Authorization") or "").removeprefix("Bearer ")
    async with TestClient(TestServer(build_app(stack.service, stack.issuer))) as http:
        info = await (await http.get("/oauth2/v3/tokeninfo", params={"access_token": token})).json()
        refused = await http.get("/oauth2/v3/tokeninfo", params={"access_token": "forged"})

    assert token.startswith(TOKEN_PREFIX)
    assert two.header("Authorization") == one.header("Authorization")  # reused while valid
    assert (info["email"], info["scope"]) == (SA, scope)
    assert int(info["expires_in"]) > 3000
    assert refused.status == 400
