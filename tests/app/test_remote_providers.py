"""The seed's requests through the app with the three credentials set: each reaches its real
adapter (against the fakes), is polled on the queue on the virtual clock, and completes with
its result in storage; no delivery holds a request open while the provider renders."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from app.jobs.provider_tasks import ProviderTasks
from app.providers.bfl import BflProvider
from app.providers.replicate import ReplicateProvider
from app.providers.runway import RunwayProvider
from app.services import SERVICES
from tests.app.conftest import database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)
from tests.providers.adapter_support import assert_no_secret
from tests.providers.fakes.common import Canned
from tests.providers.fakes.gcs import FakeGcsServer
from tests.providers.gcs_support import (  # noqa: F401  (fixtures)
    ServiceAccountKey,
    bucket,
    gcs_server,
    sa_key,
    signed_query,
)

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
    # BFL's 24 active tasks cap the image queues' dispatches in flight (the budget the three
    # priority queues share: 6 + 15 + 3).
    images = [
        (await rig.backend.get_queue(f"image-generation-{p}queue")).config.rate_limits
        for p in ("high-", "", "low-")
    ]
    assert [limits.max_concurrent_dispatches for limits in images] == [6, 15, 3]
    # Runway's 2: below one slot per priority, each queue keeps one (documented).
    videos = [
        (await rig.backend.get_queue(f"video-generation-{p}queue")).config.rate_limits
        for p in ("high-", "", "low-")
    ]
    assert [limits.max_concurrent_dispatches for limits in videos] == [1, 1, 1]


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
    assert task.endpoint == "/v1/image_to_video"  # imageUrls[0] is the first frame
    assert task.body["model"] == "gen4_turbo"
    assert task.body["promptImage"] == "https://example.com/image.jpg"
    assert task.body["duration"] == 5  # options.duration
    assert task.body.get("promptText") == "A cat playing with a ball"


async def test_text_only_video_goes_to_gen4_5_text_to_video(rig: RemoteRig) -> None:
    service = await rig.start()
    body = {"prompt": "waves", "model": "runway-gen4", "options": {"duration": 4}}
    job = await service.create("u1", "video-generation", body)
    await service.run_until_idle()
    assert (await service.job("u1", job["jobId"]))["status"] == "COMPLETED"
    (task,) = rig.runway.tasks.values()
    assert (task.endpoint, task.body["model"]) == ("/v1/text_to_video", "gen4.5")
    assert task.body["duration"] == 4


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


SEED_BATCH = {
    "prompts": ["A beautiful sunset", "A cat playing", "A mountain landscape"],
    "model": "flux-1.1-pro",
    "provider": "bfl",
    "batchSize": 5,
    "options": {},
}


async def test_seed_batch_request_completes_through_bfl(rig: RemoteRig, tmp_path: Path) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Ready")
    rig.bfl.script("Pending", "Pending", "Pending", "Ready")
    rig.bfl.script("Ready")
    job = await service.create("u1", "batch-generation", SEED_BATCH)
    await rig.backend.advance(timedelta(0))
    assert len(rig.bfl.tasks) == 3 and rig.bfl.calls("GET", "/v1/get_result") == []
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    urls = view["resultUrls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["000.png", "001.png", "002.png"]
    for url in urls:
        assert _stored_file(tmp_path, url, service.base_url).read_bytes().startswith(b"\x89PNG")
    prompts = [t.body["prompt"] for t in rig.bfl.tasks.values()]
    assert prompts == SEED_BATCH["prompts"]
    assert len(rig.bfl.calls("POST", "/v1/")) == 3
    assert await service.credits("u1") == 100 - 3


async def test_batch_image_moderated_fails_the_batch_refunded(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Ready")
    rig.bfl.script("Pending", "Request Moderated")
    body = {**SEED_BATCH, "batchSize": 1}
    job = await service.create("u1", "batch-generation", body)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "FAILED"
    assert view["error"] == "the image provider's content moderation refused this prompt"
    assert await service.credits("u1") == 100
    assert len(rig.bfl.calls("POST", "/v1/")) == 3


async def test_batch_redelivered_after_a_failed_submit_submits_only_the_missing_images(
    rig: RemoteRig,
) -> None:
    service = await rig.start()
    # The chunk's second submit gets a 502: the delivery answers 503 with one task stored;
    # the retry adopts it and submits the two others.
    rig.bfl.inject("submit", None, Canned(502, "Bad Gateway"))
    job = await service.create("u1", "batch-generation", SEED_BATCH)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert len(rig.bfl.calls("POST", "/v1/")) == 4  # 1 ok + 1 refused, then the 2 missing
    assert len(rig.bfl.tasks) == 3


async def test_results_land_in_cloud_storage_and_feed_the_next_provider_signed(
    rig: RemoteRig,
    gcs_server: FakeGcsServer,  # noqa: F811
    bucket: str,  # noqa: F811
    sa_key: ServiceAccountKey,  # noqa: F811
    tmp_path: Path,
) -> None:
    """With STORAGE_URL=gs://…: the BFL result is uploaded to the bucket, shown signed, and an
    upscale of it hands Replicate a signed URL of the object (never the app's own address)."""
    service = await rig.start(
        storage_url=f"gs://{bucket}/media",
        storage_emulator_host=gcs_server.url,
        storage_signing_key_file=sa_key.write(tmp_path),
    )
    job = await service.create("u1", "image-generation", SEED_IMAGE)
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED", view
    assert urlsplit(view["resultUrl"]).path == f"/{bucket}/media/jobs/{job['jobId']}/image.png"
    assert "X-Goog-Signature" in signed_query(view["resultUrl"])
    async with service.http.get(view["resultUrl"]) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"\x89PNG")

    up = await service.create(
        "u1", "image-upscale", {"imageUrl": view["resultUrl"], "model": "real-esrgan"}
    )
    await service.run_until_idle()
    assert (await service.job("u1", up["jobId"]))["status"] == "COMPLETED"
    (prediction,) = rig.replicate.predictions.values()
    sent = prediction.input["image"]
    assert urlsplit(sent).path == f"/{bucket}/media/jobs/{job['jobId']}/image.png"
    assert "X-Goog-Signature" in signed_query(sent)
