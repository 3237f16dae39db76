"""Every job type through the in-process emulator with real HTTP delivery and the real local
providers, on SQLite and PostgreSQL: completes, downloads a real result, charges exactly."""

from __future__ import annotations

import io

from PIL import Image

from tests.app.conftest import Service

START = 100


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def finished(service: Service, user: str, job_id: str) -> dict:
    await service.run_until_idle()
    job = await service.job(user, job_id)
    assert job["status"] == "COMPLETED", job
    assert job["progress"] == 100
    assert job["error"] is None
    return job


async def usage_credits(service: Service, job_id: str) -> list[int]:
    return [record.credits for record in await service.store.usage_for(job_id)]


async def test_image_generation_completes_with_a_png_of_the_requested_size(service: Service):
    job = await service.create(
        "alice", "image-generation", {"prompt": "a red fox in snow", "width": 96, "height": 64}
    )
    assert job["status"] == "PENDING"
    done = await finished(service, "alice", job["jobId"])
    picture = image_of(await service.download(done["resultUrl"]))
    assert picture.format == "PNG"
    assert picture.size == (96, 64)
    assert await service.credits("alice") == START - 1
    assert await usage_credits(service, job["jobId"]) == [1]
    statuses = service.events.statuses(job["jobId"])
    assert statuses[0] == "PENDING" and statuses[-1] == "COMPLETED"
    assert "PROCESSING" in statuses


async def test_video_generation_completes_with_an_animation_of_the_requested_length(
    service: Service,
):
    job = await service.create(
        "bob",
        "video-generation",
        {"prompt": "waves", "model": "local", "duration": 2, "width": 80, "height": 64},
    )
    done = await finished(service, "bob", job["jobId"])
    clip = Image.open(io.BytesIO(await service.download(done["resultUrl"])))
    assert clip.size == (80, 64)
    assert getattr(clip, "n_frames", 1) > 1
    total_ms = 0
    for frame in range(clip.n_frames):
        clip.seek(frame)
        clip.load()  # Pillow fills a WebP frame's duration when the frame is decoded
        total_ms += clip.info["duration"]
    assert abs(total_ms - 2000) <= 100
    assert await service.credits("bob") == START - 5
    assert await usage_credits(service, job["jobId"]) == [5]


async def test_image_upscale_of_a_generated_image_doubles_its_size(service: Service):
    source = await service.create(
        "carol", "image-generation", {"prompt": "a lighthouse", "width": 64, "height": 80}
    )
    source_done = await finished(service, "carol", source["jobId"])
    job = await service.create(
        "carol", "image-upscale", {"imageUrl": source_done["resultUrl"], "scale": 2}
    )
    done = await finished(service, "carol", job["jobId"])
    picture = image_of(await service.download(done["resultUrl"]))
    assert picture.format == "PNG"
    assert picture.size == (128, 160)
    assert await service.credits("carol") == START - 1 - 2
    assert await usage_credits(service, job["jobId"]) == [2]


async def test_batch_generation_fans_out_in_chunks_and_charges_per_image(service: Service):
    prompts = ["a cat", "a dog", "a bird", "a fish", "a horse"]
    job = await service.create(
        "dave",
        "batch-generation",
        {"prompts": prompts, "batchSize": 2, "width": 64, "height": 72, "model": "local"},
    )
    done = await finished(service, "dave", job["jobId"])
    assert len(done["resultUrls"]) == len(prompts)
    for url in done["resultUrls"]:
        picture = image_of(await service.download(url))
        assert picture.size == (64, 72)
    assert await service.credits("dave") == START - len(prompts)
    assert await usage_credits(service, job["jobId"]) == [len(prompts)]
    names = sorted(
        {
            event.task
            for event in service.backend.events
            if event.queue == "batch-generation-queue" and event.task is not None
        }
    )
    assert names == [f"{job['jobId']}-chunk-{i}" for i in range(3)]
    progress = [update.payload["progress"] for update in service.events.for_job(job["jobId"])]
    assert progress == sorted(progress)
    # images done / total (5 images: steps of 20), held below 100 until the job completes
    assert set(progress) <= {0, 20, 40, 60, 80, 99, 100}
    assert progress[-1] == 100 and any(0 < value < 100 for value in progress)


async def test_a_source_image_on_a_private_address_fails_the_job_with_a_clear_error(
    service: Service,
):
    # A literal private address is refused at creation; a name is judged once resolved.
    status, error = await service.request(
        "POST",
        "/api/jobs/image-upscale",
        user="erin",
        json={"imageUrl": "http://10.0.0.7/cat.png", "scale": 2},
    )
    assert status == 422 and error["fields"][0]["field"] == "imageUrl", error
    assert "private" in error["message"]
    job = await service.create(
        "erin", "image-upscale", {"imageUrl": "http://localhost:9/cat.png", "scale": 2}
    )
    await service.run_until_idle()
    failed = await service.job("erin", job["jobId"])
    assert failed["status"] == "FAILED"
    assert "private" in failed["error"]
    assert await service.credits("erin") == START
    assert await usage_credits(service, job["jobId"]) == []
