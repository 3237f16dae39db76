"""``GET /api/jobs/{jobId}/events``: the job's updates as server-sent events, as curl sees them."""

from __future__ import annotations

from tests.realtime.clients import RecordingClient
from tests.realtime.conftest import IMAGE_BODY, Service, StartService
from tests.realtime.sse_client import SseStream


def events_url(service: Service, job_id: str) -> str:
    return f"{service.base_url}/api/jobs/{job_id}/events"


async def test_sse_streams_current_state_then_updates_until_finished(
    start_service: StartService,
) -> None:
    service = await start_service(sse_heartbeat_seconds=0.2)
    socket_client = RecordingClient()
    await socket_client.connect(service.base_url, service.token("alice"))
    try:
        await service.pause("image-generation")
        job = await service.create("alice", "image-generation", IMAGE_BODY)
        async with service.http.get(
            events_url(service, job["jobId"]), headers=service.auth("alice")
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            stream = SseStream(response)
            first = await stream.next_event()
            assert first is not None and first[0] == "jobUpdate"
            assert first[1]["status"] == "PENDING" and first[1]["jobId"] == job["jobId"]
            # Nothing happens while the queue is paused: the stream stays open with heartbeats.
            assert await stream.heartbeat() == "heartbeat"
            await service.resume("image-generation")
            rest = await stream.all_events()
        assert rest[-1]["status"] == "COMPLETED" and rest[-1]["progress"] == 100
        assert rest[-1]["resultUrl"]
        # The socket saw the very same sequence.
        via_socket = await socket_client.updates_until(job["jobId"], "COMPLETED")
        assert [first[1], *rest] == via_socket
    finally:
        await socket_client.close()


async def test_sse_of_a_finished_job_is_one_event(service: Service) -> None:
    client = RecordingClient()
    await client.connect(service.base_url, service.token("alice"))
    try:
        job = await service.create("alice", "image-generation", IMAGE_BODY)
        await client.updates_until(job["jobId"], "COMPLETED")
    finally:
        await client.close()
    async with service.http.get(
        events_url(service, job["jobId"]), headers=service.auth("alice")
    ) as response:
        updates = await SseStream(response).all_events()
    assert [update["status"] for update in updates] == ["COMPLETED"]


async def test_sse_requires_the_owner(service: Service) -> None:
    job = await service.create("alice", "image-generation", IMAGE_BODY)
    url = events_url(service, job["jobId"])
    async with service.http.get(url) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"
    async with service.http.get(url, headers=service.auth("bob")) as response:
        assert response.status == 404
    async with service.http.get(
        events_url(service, "x" * 65), headers=service.auth("alice")
    ) as response:
        assert response.status == 404
