"""``daygen_live_connections``: the Socket.IO sockets and SSE streams open on this instance,
read when Prometheus scrapes."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.main import LIVE_UPDATES
from tests.realtime.clients import RecordingClient
from tests.realtime.conftest import IMAGE_BODY, Service, StartService
from tests.realtime.sse_client import SseStream


async def connections(service: Service) -> dict[str, float]:
    async with service.http.get(service.base_url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        sample.labels["transport"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "daygen_live_connections"
        for sample in family.samples
    }


def on_server_disconnect(service: Service) -> asyncio.Event:
    """Set once the server's disconnect handler has run: a client's disconnect reaches the
    server on the socket's own connection, after the client has returned."""
    handlers = service.app[LIVE_UPDATES].sio.handlers["/"]
    original, done = handlers["disconnect"], asyncio.Event()

    async def observed(*args: Any) -> None:
        await original(*args)
        done.set()

    handlers["disconnect"] = observed
    return done


async def test_live_connections_count_sockets_and_streams(start_service: StartService) -> None:
    service = await start_service(sse_heartbeat_seconds=0.2)
    assert await connections(service) == {"socketio": 0, "sse": 0}
    client = RecordingClient()
    await client.connect(service.base_url, service.token("alice"))
    try:
        # The connect answer comes after the server's handler: the socket is counted.
        assert await connections(service) == {"socketio": 1, "sse": 0}
        await service.pause("image-generation")
        job = await service.create("alice", "image-generation", IMAGE_BODY)
        url = f"{service.base_url}/api/jobs/{job['jobId']}/events"
        async with service.http.get(url, headers=service.auth("alice")) as response:
            stream = SseStream(response)
            assert await stream.next_event() is not None  # the stream is open and subscribed
            assert await connections(service) == {"socketio": 1, "sse": 1}
            await service.resume("image-generation")
            # The job finishes: the server ends the stream and unsubscribes in the same step.
            await stream.all_events()
        assert await connections(service) == {"socketio": 1, "sse": 0}
        gone = on_server_disconnect(service)
    finally:
        await client.close()
    await asyncio.wait_for(gone.wait(), 5)
    assert await connections(service) == {"socketio": 0, "sse": 0}
