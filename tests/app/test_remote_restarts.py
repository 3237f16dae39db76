"""At-least-once delivery and dying instances against remote providers: the stored provider task
decides, so nothing is lost and nothing is submitted twice for the same attempt.

An instance "dies" by being thrown away: a fresh app is built on the same database, queue and
port (nothing held in memory survives), as when Cloud Run replaces an instance.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from app.jobs.provider_tasks import ProviderTasks
from tests.app.conftest import INTERNAL_KEY, database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)

IMAGE = {"prompt": "A beautiful sunset", "model": "flux-1.1-pro", "provider": "bfl"}
VIDEO = {"prompt": "A cat", "model": "runway-gen4", "imageUrl": "https://example.com/a.jpg"}


async def test_app_killed_between_submit_and_poll_loses_nothing(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.runway.script("RUNNING", "RUNNING", "SUCCEEDED")
    job = await service.create("u1", "video-generation", VIDEO)
    await rig.backend.advance(timedelta(0))  # the delivery: submitted, first poll scheduled
    assert len(rig.runway.tasks) == 1
    assert rig.runway.calls("GET", "/v1/tasks/") == []

    service = await rig.restart()
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.calls("POST", "/v1/")) == 1
    assert len(rig.runway.calls("GET", "/v1/tasks/")) == 3


async def test_app_dying_after_submit_but_before_answering_adopts_the_stored_task(
    rig: RemoteRig,
) -> None:
    """The first instance submits and stores the task, then its answer never reaches the
    queue (modelled by a 500 after the work). The queue redelivers to a fresh instance, which
    finds the stored id and polls that task instead of starting a second one."""

    @web.middleware
    async def answer_lost(
        request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        if request.path.startswith("/internal/tasks/"):
            return web.json_response({"error": "instance died"}, status=500)
        return response

    service = await rig.start(middlewares=(answer_lost,))
    rig.runway.script("RUNNING", "RUNNING", "RUNNING", "SUCCEEDED")
    job = await service.create("u1", "video-generation", VIDEO)
    await rig.backend.advance(timedelta(0))
    assert len(rig.runway.tasks) == 1

    service = await rig.restart()
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.calls("POST", "/v1/")) == 1  # never submitted again
    stored = await ProviderTasks(rig.database).get(job["jobId"])
    assert stored is not None and stored.attempt == 2  # adopted by the redelivery
    assert await service.credits("u1") == 100 - 5


async def test_a_duplicated_poll_delivery_does_not_fork_the_poll_chain(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    # Poll 1 delivered twice (Cloud Tasks may): each answers, one poll 2 exists.
    for _ in range(2):
        async with service.http.post(
            f"{service.base_url}/internal/providers/poll/image-generation",
            data=json.dumps({"jobId": job["jobId"], "attempt": 1, "poll": 1}),
            headers={"X-Internal-Api-Key": INTERNAL_KEY, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 200
    names = [task.name for task in await rig.backend.list_tasks("image-generation-queue")]
    assert sorted(names) == sorted([f"{job['jobId']}-a1-p1", f"{job['jobId']}-a1-p2"])
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    assert len(rig.bfl.calls("POST", "/v1/")) == 1


async def test_a_poll_of_a_superseded_attempt_stops_its_chain(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await service.run_until_idle()
    async with service.http.post(
        f"{service.base_url}/internal/providers/poll/image-generation",
        data=json.dumps({"jobId": job["jobId"], "attempt": 1, "poll": 9}),
        headers={"X-Internal-Api-Key": INTERNAL_KEY},
    ) as response:
        assert response.status == 200
        assert (await response.json())["result"] == "already_finished"
    async with service.http.post(
        f"{service.base_url}/internal/providers/poll/image-generation",
        data=json.dumps({"jobId": job["jobId"], "attempt": 1, "poll": 9}),
    ) as response:
        assert response.status == 401  # poll deliveries are authenticated like tasks


async def _cancel(rig: RemoteRig, job_id: str) -> dict[str, object]:
    assert rig.service is not None
    status, body = await rig.service.request("POST", f"/api/jobs/{job_id}/cancel", user="u1")
    assert status == 200, body
    return dict(body)


async def test_cancel_mid_render_cancels_the_runway_task_and_stops_polling(
    rig: RemoteRig,
) -> None:
    service = await rig.start()
    rig.runway.script("RUNNING")
    job = await service.create("u1", "video-generation", VIDEO)
    await rig.backend.advance(timedelta(seconds=30))  # a few polls in
    polls = len(rig.runway.calls("GET", "/v1/tasks/"))
    assert polls >= 2
    cancelled = await _cancel(rig, job["jobId"])
    assert cancelled["status"] == "CANCELLED"
    (task,) = rig.runway.tasks.values()
    assert [r.path for r in rig.runway.calls("DELETE")] == [f"/v1/tasks/{task.id}"]
    assert task.status == "CANCELLED"
    await service.run_until_idle()
    assert len(rig.runway.calls("GET", "/v1/tasks/")) == polls  # the chain stopped
    assert await service.credits("u1") == 100
    assert (await service.job("u1", job["jobId"]))["status"] == "CANCELLED"


async def test_cancel_mid_render_cancels_the_replicate_prediction(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.replicate.script("starting", "processing")
    body = {"imageUrl": "https://example.com/image.jpg", "model": "real-esrgan"}
    job = await service.create("u1", "image-upscale", body)
    await rig.backend.advance(timedelta(seconds=3))
    await _cancel(rig, job["jobId"])
    (prediction,) = rig.replicate.predictions.values()
    assert prediction.status == "canceled"
    assert len(rig.replicate.calls("POST", f"/v1/predictions/{prediction.id}/cancel")) == 1
    await service.run_until_idle()
    assert await service.credits("u1") == 100


async def test_cancel_of_a_bfl_job_stops_polling_and_stores_nothing(rig: RemoteRig) -> None:
    """BFL has no cancel: its task runs to its end, but the job is cancelled and refunded and
    the result is never fetched."""
    service = await rig.start()
    rig.bfl.script("Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", IMAGE)
    await rig.backend.advance(timedelta(0))
    await _cancel(rig, job["jobId"])
    await service.run_until_idle()
    assert rig.bfl.calls("GET", "/files/") == []
    assert rig.bfl.calls("DELETE") == []
    view = await service.job("u1", job["jobId"])
    assert (view["status"], view["resultUrl"]) == ("CANCELLED", None)
    assert await service.credits("u1") == 100
