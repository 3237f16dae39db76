"""Two ``python -m app`` processes sharing a database and Redis: a job processed on instance A
reaches the socket and the SSE stream held by instance B."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.realtime.conftest import RunNode, SourceGate, StartAppProcess, token_for
from tests.realtime.sse_client import SseStream

pytestmark = [pytest.mark.slow, pytest.mark.node]


async def test_job_processed_on_a_reaches_socket_and_sse_on_b(
    start_app_process: StartAppProcess,
    run_node: RunNode,
    redis_url: str,
    redis_channel: str,
    source_gate: SourceGate,
    tmp_path: Path,
) -> None:
    shared = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "STORAGE_DIR": str(tmp_path / "media"),
        "REDIS_URL": redis_url,
        "SOCKETIO_REDIS_CHANNEL": redis_channel,
        "SOURCE_FETCH_ALLOW_PRIVATE": "true",  # the source image is served on loopback
    }
    instance_a = await start_app_process(**shared)
    instance_b = await start_app_process(**shared)
    token = token_for("alice")
    auth = {"Authorization": f"Bearer {token}"}

    client = await run_node("listen.mjs", URL=instance_b.base_url, TOKENS=json.dumps([token]))
    assert (await client.next_event(15))["event"] == "connect"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        # The job lives in A's queue; A's processor holds it PROCESSING on the source image.
        body = {"imageUrl": source_gate.url, "scale": 2, "model": "local"}
        async with http.post(
            f"{instance_a.base_url}/api/jobs/image-upscale", json=body, headers=auth
        ) as response:
            job = await response.json()
            assert response.status == 202, job
        await asyncio.wait_for(source_gate.requested.wait(), 15)

        async with http.get(
            f"{instance_b.base_url}/api/jobs/{job['jobId']}/events", headers=auth
        ) as response:
            assert response.status == 200
            stream = SseStream(response)
            first = await stream.next_event()
            assert first is not None and first[1]["status"] == "PROCESSING"
            source_gate.release()
            rest = await stream.all_events(timeout=20)

    assert rest[-1]["status"] == "COMPLETED" and rest[-1]["progress"] == 100
    # Written by A (its base URL), delivered by B.
    assert rest[-1]["resultUrl"].startswith(instance_a.base_url + "/media/")

    done = await client.wait_for(
        lambda event: event["event"] == "jobUpdate" and event["data"]["status"] == "COMPLETED",
        timeout=20,
    )
    assert done["data"] == rest[-1]
    via_socket = [e["data"] for e in client.seen if e["event"] == "jobUpdate"]
    assert [u["status"] for u in via_socket][:2] == ["PENDING", "PROCESSING"]
    assert via_socket[-len(rest) :] == rest
