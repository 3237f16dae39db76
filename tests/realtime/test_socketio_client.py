"""The real JavaScript socket.io-client v4, used the way the seed's frontend uses it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.realtime.conftest import IMAGE_BODY, RunNode, Service

pytestmark = pytest.mark.node


def statuses(updates: list[dict[str, Any]]) -> list[str]:
    return [update["status"] for update in updates]


async def test_frontend_follows_a_job_to_completed_with_its_result(
    service: Service, run_node: RunNode
) -> None:
    client = await run_node(
        "job_flow.mjs",
        URL=service.base_url,
        TOKEN=service.token("alice"),
        JOB_TYPE="image-generation",
        BODY=json.dumps(IMAGE_BODY),
    )
    created = await client.wait_for(lambda event: event["event"] == "created")
    assert created["status"] == 202
    done = await client.wait_for(lambda event: event["event"] != "created", timeout=20)
    assert done["event"] == "done", done
    updates = done["updates"]
    assert statuses(updates)[-1] == "COMPLETED"
    assert "PROCESSING" in statuses(updates)
    progress = [update["progress"] for update in updates]
    assert progress == sorted(progress) and progress[-1] == 100
    final = updates[-1]
    assert set(final) >= {"jobId", "type", "status", "progress", "resultUrl", "error", "updatedAt"}
    assert final["jobId"] == created["job"]["jobId"] and final["type"] == "image-generation"
    assert final["resultUrl"].startswith(service.base_url + "/media/")
    assert final["error"] is None
    async with service.http.get(final["resultUrl"]) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"\x89PNG")
    # The last event is exactly what the HTTP API answers.
    async with service.http.get(
        f"{service.base_url}/api/jobs/{final['jobId']}", headers=service.auth("alice")
    ) as response:
        assert await response.json() == final


async def test_frontend_receives_failed_with_the_error(service: Service, run_node: RunNode) -> None:
    # A host name resolving to loopback is refused when fetched (SSRF guard): FAILED at once.
    body = {"imageUrl": "http://localhost:9/missing.png", "scale": 2, "model": "local"}
    client = await run_node(
        "job_flow.mjs",
        URL=service.base_url,
        TOKEN=service.token("bob"),
        JOB_TYPE="image-upscale",
        BODY=json.dumps(body),
    )
    done = await client.wait_for(lambda event: event["event"] not in {"created"}, timeout=20)
    assert done["event"] == "done", done
    final = done["updates"][-1]
    assert final["status"] == "FAILED"
    assert final["error"] and "source image" in final["error"]
    assert final["resultUrl"] is None


async def test_expired_token_is_refused_with_a_connect_error(
    service: Service, run_node: RunNode
) -> None:
    expired = service.token("carol", ttl=timedelta(seconds=-5))
    client = await run_node("listen.mjs", URL=service.base_url, TOKENS=json.dumps([expired]))
    error = await client.next_event()
    assert error == {
        "event": "connect_error",
        "message": "unauthorized",
        "data": {"reason": "token expired"},
    }


async def test_seed_style_ws_url_with_the_token_in_the_query_string(
    service: Service, run_node: RunNode
) -> None:
    # The seed connects with io("ws://localhost:3000"); older clients add ?token=.
    client = await run_node(
        "listen.mjs",
        URL=service.base_url.replace("http://", "ws://"),
        TOKENS=json.dumps([service.token("dave")]),
        TOKEN_IN_QUERY="1",
    )
    assert (await client.next_event())["event"] == "connect"
    job = await service.create("dave", "image-generation", IMAGE_BODY)
    update = await client.wait_for(lambda event: event["event"] == "jobUpdate")
    assert update["data"]["jobId"] == job["jobId"]


async def test_socket_is_closed_at_token_expiry_and_reconnects_with_a_fresh_token(
    service: Service, run_node: RunNode
) -> None:
    # Long enough for Node to start and connect on a loaded machine, short enough to wait for.
    short = service.token("erin", ttl=timedelta(seconds=4))
    fresh = service.token("erin", ttl=timedelta(hours=1))
    client = await run_node("listen.mjs", URL=service.base_url, TOKENS=json.dumps([short, fresh]))
    first = await client.next_event()
    assert first["event"] == "connect" and first["tokenIndex"] == 0
    gone = await client.wait_for(lambda event: event["event"] == "disconnect", timeout=8)
    assert gone["reason"] == "transport close"  # so socket.io-client reconnects by itself
    again = await client.wait_for(lambda event: event["event"] == "connect", timeout=6)
    assert again["tokenIndex"] == 1
    # The new connection is live: it gets the user's updates.
    job = await service.create("erin", "image-generation", IMAGE_BODY)
    update = await client.wait_for(lambda event: event["event"] == "jobUpdate", timeout=10)
    assert update["data"]["jobId"] == job["jobId"]


async def test_subscribe_acks_with_the_job_and_refuses_another_users_job(
    service: Service, run_node: RunNode
) -> None:
    mine = await service.create("frank", "image-generation", IMAGE_BODY)
    theirs = await service.create("grace", "image-generation", IMAGE_BODY)
    client = await run_node(
        "listen.mjs", URL=service.base_url, TOKENS=json.dumps([service.token("frank")])
    )
    await client.wait_for(lambda event: event["event"] == "connect")
    await client.send({"cmd": "subscribe", "jobId": mine["jobId"]})
    ack = await client.wait_for(lambda event: event["event"] == "ack")
    assert ack["data"]["ok"] is True and ack["data"]["job"]["jobId"] == mine["jobId"]
    await client.send({"cmd": "subscribe", "jobId": theirs["jobId"]})
    ack = await client.wait_for(lambda event: event["event"] == "ack")
    assert ack["data"] == {"ok": False, "error": "not found"}
