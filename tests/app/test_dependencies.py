"""Job dependencies end to end: three calls made at once (image -> upscale -> video) complete
in order, each result feeding the next; a failed parent cancels and refunds its children;
parents that are not the caller's are refused before anything is charged."""

from __future__ import annotations

import asyncio
import io

from PIL import Image
from sqlalchemy import update

from app.models import Job
from app.providers.base import PermanentProviderError
from tests.app.conftest import Service, StartService
from tests.app.fakes import scripted, with_images

SMALL = {"width": 64, "height": 80}


async def chain(service: Service, user: str) -> tuple[dict, dict, dict]:
    image = await service.create(user, "image-generation", {"prompt": "a lighthouse", **SMALL})
    upscale = await service.create(
        user, "image-upscale", {"imageUrl": f"job:{image['jobId']}", "scale": 2}
    )
    video = await service.create(
        user,
        "video-generation",
        {"prompt": "waves", "duration": 1, "imageUrl": f"job:{upscale['jobId']}", **SMALL},
    )
    return image, upscale, video


async def test_image_upscale_video_made_at_once_complete_in_order(service: Service):
    image, upscale, video = await chain(service, "alice")
    assert image["status"] == "PENDING"
    assert upscale["status"] == "WAITING"
    assert upscale["dependsOn"] == upscale["waitingFor"] == [image["jobId"]]
    assert video["status"] == "WAITING" and video["waitingFor"] == [upscale["jobId"]]
    assert await service.credits("alice") == 100 - 1 - 2 - 5  # reserved at creation

    await service.run_until_idle()
    jobs = [await service.job("alice", job["jobId"]) for job in (image, upscale, video)]
    assert [job["status"] for job in jobs] == ["COMPLETED"] * 3
    picture = Image.open(io.BytesIO(await service.download(jobs[1]["resultUrl"])))
    assert picture.size == (128, 160)  # the upscale read the image job's result
    rows = [await service.store.get_job(job["jobId"]) for job in (image, upscale, video)]
    assert all(row is not None for row in rows)
    assert rows[0].completed_at <= rows[1].started_at  # type: ignore[union-attr,operator]
    assert rows[1].completed_at <= rows[2].started_at  # type: ignore[union-attr,operator]
    assert rows[1].params["image_url"] == rows[0].result["url"]  # type: ignore[union-attr,index]
    # The waiting job's live updates said what it waited for, then that it stopped waiting.
    first, *rest = service.events.for_job(upscale["jobId"])
    assert first.payload["status"] == "WAITING"
    assert first.payload["waitingFor"] == [image["jobId"]]
    assert rest[0].payload["status"] == "PENDING" and rest[0].payload["waitingFor"] == []
    assert await service.credits("alice") == 92


async def test_a_failed_parent_cancels_and_refunds_its_children(start_service: StartService):
    images = scripted([PermanentProviderError("prompt refused by the provider")])
    service = await start_service(providers=with_images(images))
    image, upscale, video = await chain(service, "bob")
    assert await service.credits("bob") == 92
    await service.run_until_idle()
    assert (await service.job("bob", image["jobId"]))["status"] == "FAILED"
    cancelled = await service.job("bob", upscale["jobId"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["error"] == f"parent job {image['jobId']} was failed"
    grandchild = await service.job("bob", video["jobId"])
    assert grandchild["status"] == "CANCELLED"
    assert grandchild["error"] == f"parent job {upscale['jobId']} was cancelled"
    assert await service.credits("bob") == 100  # every job refunded, once
    for job in (upscale, video):  # never enqueued
        assert service.backend.events.for_task(job["jobId"]) == []


async def test_a_child_of_completed_parents_is_pending_at_once(service: Service):
    first = await service.create("carol", "image-generation", {"prompt": "a", **SMALL})
    second = await service.create("carol", "image-generation", {"prompt": "b", **SMALL})
    await service.run_until_idle()
    child = await service.create(
        "carol",
        "image-upscale",
        {"imageUrl": f"job:{second['jobId']}", "dependsOn": [first["jobId"]]},
    )
    assert child["status"] == "PENDING"
    assert child["dependsOn"] == [first["jobId"], second["jobId"]]
    await service.run_until_idle()
    assert (await service.job("carol", child["jobId"]))["status"] == "COMPLETED"


async def test_parents_that_are_not_the_callers_are_refused_naming_the_field(service: Service):
    theirs = await service.create("dave", "image-generation", {"prompt": "a", **SMALL})
    clip = await service.create("erin", "video-generation", {"prompt": "w", "duration": 1})
    cases = [
        ({"imageUrl": f"job:{theirs['jobId']}"}, "imageUrl", "no job"),
        (
            {"imageUrl": "http://example.com/a.png", "dependsOn": ["nope"]},
            "dependsOn[0]",
            "no job",
        ),
        ({"imageUrl": f"job:{clip['jobId']}"}, "imageUrl", "not an image"),
        ({"imageUrl": "job:"}, "imageUrl", "job id"),
        (
            {"imageUrl": "http://example.com/a.png", "dependsOn": ["x", "x"]},
            "dependsOn",
            "more than once",
        ),
    ]
    for body, field, message in cases:
        status, answer = await service.request(
            "POST", "/api/jobs/image-upscale", user="erin", json=body
        )
        assert status == 422, answer
        assert answer["fields"][0]["field"] == field
        assert message in answer["fields"][0]["message"]
    assert await service.credits("erin") == 95  # only the clip was charged


async def test_a_parent_that_already_failed_is_refused(start_service: StartService):
    images = scripted([PermanentProviderError("refused")])
    service = await start_service(providers=with_images(images))
    image = await service.create("fay", "image-generation", {"prompt": "a", **SMALL})
    await service.run_until_idle()
    status, answer = await service.request(
        "POST", "/api/jobs/image-upscale", user="fay", json={"imageUrl": f"job:{image['jobId']}"}
    )
    assert status == 422
    assert "FAILED" in answer["fields"][0]["message"]
    assert await service.credits("fay") == 100


async def test_the_reconciler_releases_a_child_left_waiting_on_a_completed_parent(
    service: Service,
):
    image = await service.create("gus", "image-generation", {"prompt": "a", **SMALL})
    await service.run_until_idle()
    # A child saved WAITING whose parent completed without settling it (a crash in between).
    child = await service.create(
        "gus", "image-upscale", {"dependsOn": [image["jobId"]], "imageUrl": f"job:{image['jobId']}"}
    )
    assert child["status"] == "PENDING"  # the parent was already done: nothing to settle
    waiting = await service.create(
        "gus", "image-generation", {"prompt": "b", "dependsOn": [child["jobId"]], **SMALL}
    )
    assert waiting["status"] == "WAITING"

    def complete_without_settling(conn):
        conn.execute(
            update(Job)
            .where(Job.id == child["jobId"])
            .values(status="COMPLETED", result={"url": image["resultUrl"]})
        )

    await service.database.write(complete_without_settling)
    await service.reconciler.run_once()
    assert (await service.job("gus", waiting["jobId"]))["status"] == "PENDING"
    await service.run_until_idle()
    assert (await service.job("gus", waiting["jobId"]))["status"] == "COMPLETED"


async def test_cancelling_a_parent_cancels_its_waiting_children_with_a_refund(
    service: Service,
):
    image = await service.create(
        "hal", "image-generation", {"prompt": "a", "runAt": "2026-01-02T00:00:00Z", **SMALL}
    )
    upscale = await service.create("hal", "image-upscale", {"imageUrl": f"job:{image['jobId']}"})
    assert await service.credits("hal") == 97
    status, _ = await service.request("POST", f"/api/jobs/{image['jobId']}/cancel", user="hal")
    assert status == 200
    child = await service.job("hal", upscale["jobId"])
    assert child["status"] == "CANCELLED"
    assert child["error"] == f"parent job {image['jobId']} was cancelled"
    assert await service.credits("hal") == 100


async def test_a_waiting_job_can_be_cancelled_and_its_children_follow(service: Service):
    image = await service.create(
        "ida", "image-generation", {"prompt": "a", "runAt": "2026-01-02T00:00:00Z", **SMALL}
    )
    image_, upscale, video = await chain(service, "ida")
    status, body = await service.request("POST", f"/api/jobs/{upscale['jobId']}/cancel", user="ida")
    assert status == 200 and body["status"] == "CANCELLED"
    assert (await service.job("ida", video["jobId"]))["status"] == "CANCELLED"
    await service.run_until_idle()
    assert (await service.job("ida", image_["jobId"]))["status"] == "COMPLETED"
    assert (await service.job("ida", image["jobId"]))["status"] == "COMPLETED"
    assert await service.credits("ida") == 100 - 1 - 1  # the two images; upscale, video refunded


async def test_children_created_while_their_parent_completes_are_never_left_waiting(
    service: Service,
):
    parent = await service.create("jay", "image-generation", {"prompt": "a", **SMALL})
    drive = asyncio.create_task(service.run_until_idle())
    children = await asyncio.gather(
        *(
            service.create("jay", "image-upscale", {"imageUrl": f"job:{parent['jobId']}"})
            for _ in range(8)
        )
    )
    await drive
    await service.run_until_idle()
    statuses = [(await service.job("jay", child["jobId"]))["status"] for child in children]
    assert statuses == ["COMPLETED"] * 8
    assert await service.credits("jay") == 100 - 1 - 8 * 2


async def test_a_batch_waiting_for_a_parent_fans_out_when_released(service: Service):
    parent = await service.create("kim", "image-generation", {"prompt": "a", **SMALL})
    batch = await service.create(
        "kim",
        "batch-generation",
        {"prompts": ["b", "c", "d"], "batchSize": 2, "dependsOn": [parent["jobId"]], **SMALL},
    )
    assert batch["status"] == "WAITING"
    await service.run_until_idle()
    done = await service.job("kim", batch["jobId"])
    assert done["status"] == "COMPLETED" and len(done["resultUrls"]) == 3
    names = {
        event.task
        for event in service.backend.events
        if event.queue.startswith("batch") and event.task is not None
    }
    assert names == {f"{batch['jobId']}-chunk-0", f"{batch['jobId']}-chunk-1"}
