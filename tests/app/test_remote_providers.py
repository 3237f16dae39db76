"""The seed's requests through the app with the three credentials set: each reaches its real
adapter (against the fakes), is polled on the queue on the virtual clock, and completes with
its result in storage; no delivery holds a request open while the provider renders."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from app.jobs.provider_tasks import ProviderTasks
from app.providers.bfl import BflProvider
from app.providers.replicate import ReplicateProvider
from app.providers.runway import RunwayProvider
from app.services import SERVICES
from tests.app.conftest import database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)
from tests.providers.adapter_support import assert_no_secret

SEED_IMAGE = {
    "prompt": "A beautiful sunset",
    "model": "flux-1.1-pro",
    "provider": "bfl",
    "options": {"width": 1024, "height": 1024},
}
SEED_VIDEO = {
    "prompt": "A cat playing with a ball",
    "model": "runway-gen4",
    "provider": "runway",
    "imageUrls": ["https://example.com/image.jpg"],
    "options": {"duration": 5},
}
SEED_UPSCALE = {
    "imageUrl": "https://example.com/image.jpg",
    "model": "real-esrgan",
    "provider": "upscale",
    "scale": 4,
    "options": {},
}


def _stored_file(tmp_path: Path, url: str, base_url: str) -> Path:
    assert url.startswith(base_url + "/media/"), url
    return tmp_path / "media" / url.removeprefix(base_url + "/media/")


async def test_the_credentials_select_the_real_adapters(rig: RemoteRig) -> None:
    service = await rig.start()
    providers = service.app[SERVICES].providers
    assert isinstance(providers.remote["bfl"], BflProvider)
    assert isinstance(providers.remote["runway"], RunwayProvider)
    assert isinstance(providers.remote["upscale"], ReplicateProvider)
    assert "local" not in providers.remote
    # BFL's 24 active tasks cap the image queue's dispatches in flight.
    queue = await rig.backend.get_queue("image-generation-queue")
    assert queue.config.rate_limits.max_concurrent_dispatches == 24
    video = await rig.backend.get_queue("video-generation-queue")
    assert video.config.rate_limits.max_concurrent_dispatches == 2


async def test_seed_image_request_completes_through_bfl(rig: RemoteRig, tmp_path: Path) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Pending", "Ready")
    job = await service.create("u1", "image-generation", SEED_IMAGE)
    # The delivery submits and answers at once; nothing has been polled yet.
    await rig.backend.advance(timedelta(0))
    assert len(rig.bfl.calls("POST", "/v1/flux-pro-1.1")) == 1
    assert rig.bfl.calls("GET", "/v1/get_result") == []
    stored = await ProviderTasks(rig.database).get(job["jobId"])
    assert stored is not None and stored.attempt == 1 and stored.provider == "bfl"
    assert stored.poll_url is not None and stored.task_id in stored.poll_url
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "PROCESSING"

    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert len(rig.bfl.calls("GET", "/v1/get_result")) == 3
    assert len(rig.bfl.calls("POST", "/v1/flux-pro-1.1")) == 1
    data = _stored_file(tmp_path, view["resultUrl"], service.base_url).read_bytes()
    assert data.startswith(b"\x89PNG")
    submitted = rig.bfl.calls("POST", "/v1/flux-pro-1.1")[0].body
    assert submitted["prompt"] == "A beautiful sunset"
    assert (submitted["width"], submitted["height"]) == (1024, 1024)
    assert await service.credits("u1") == 100 - 1
    assert_no_secret(repr(view))


async def test_seed_video_request_completes_through_runway(rig: RemoteRig, tmp_path: Path) -> None:
    service = await rig.start()
    job = await service.create("u1", "video-generation", SEED_VIDEO)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    path = _stored_file(tmp_path, view["resultUrl"], service.base_url)
    assert path.suffix == ".mp4" and b"ftyp" in path.read_bytes()[:16]
    (task,) = rig.runway.tasks.values()
    assert task.body["duration"] == 5
    assert task.body.get("promptText") == "A cat playing with a ball"


async def test_video_with_a_source_image_goes_to_gen4_turbo(rig: RemoteRig) -> None:
    service = await rig.start()
    body = {"prompt": "waves", "model": "runway-gen4", "imageUrl": "https://example.com/a.jpg"}
    job = await service.create("u1", "video-generation", body)
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    (task,) = rig.runway.tasks.values()
    assert task.endpoint == "/v1/image_to_video"
    assert task.body["model"] == "gen4_turbo"
    assert task.body["promptImage"] == "https://example.com/a.jpg"


async def test_three_minute_runway_render_with_30_polls_runs_on_the_virtual_clock(
    rig: RemoteRig,
) -> None:
    service = await rig.start()
    rig.runway.script(*(["THROTTLED"] * 2 + ["RUNNING"] * 27 + ["SUCCEEDED"]))
    started = rig.clock.now()
    job = await service.create("u1", "video-generation", SEED_VIDEO)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.calls("GET", "/v1/tasks/")) == 30
    waited = rig.clock.now() - started
    # Intervals start at 5 s and grow with the wait (capped at 15 s): minutes of virtual time.
    assert timedelta(minutes=3) <= waited <= timedelta(minutes=8), waited
    progress = [u.payload["progress"] for u in service.events.updates]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(5 < value < 100 for value in progress)  # RUNNING's progress is reported


async def test_seed_upscale_request_completes_through_replicate(
    rig: RemoteRig, tmp_path: Path
) -> None:
    service = await rig.start()
    rig.replicate.script("processing", "processing", "succeeded")
    job = await service.create("u1", "image-upscale", SEED_UPSCALE)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    (prediction,) = rig.replicate.predictions.values()
    assert prediction.input == {
        "image": "https://example.com/image.jpg",
        "scale": 4,
        "face_enhance": False,
    }
    path = _stored_file(tmp_path, view["resultUrl"], service.base_url)
    assert path.read_bytes().startswith(b"\x89PNG")


async def test_upscale_finished_within_prefer_wait_completes_without_a_poll(
    rig: RemoteRig,
) -> None:
    service = await rig.start()
    rig.replicate.script("succeeded")
    job = await service.create("u1", "image-upscale", SEED_UPSCALE)
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    assert rig.replicate.calls("GET", "/v1/predictions/") == []
