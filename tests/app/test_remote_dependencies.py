"""Dependencies and priorities with the remote providers (against their local fakes): a parent
finished by a poll task releases its children at once, and a high job's polls stay on the high
queue."""

from __future__ import annotations

from app.jobs import dependencies
from tests.app.conftest import database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)

IMAGE = {"prompt": "A beautiful sunset", "model": "flux-1.1-pro", "width": 512, "height": 512}


async def test_a_bfl_image_polled_to_completion_releases_its_replicate_upscale(
    rig: RemoteRig, monkeypatch
) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", "Ready")
    rig.replicate.script("processing", "succeeded")
    swept: list[int] = []
    real_sweep = dependencies.sweep

    async def counting_sweep(context):  # the reconciler's safety net must not be what did it
        swept.append(await real_sweep(context))
        return swept[-1]

    monkeypatch.setattr(dependencies, "sweep", counting_sweep)
    image = await service.create("u1", "image-generation", {**IMAGE, "priority": "high"})
    upscale = await service.create(
        "u1", "image-upscale", {"imageUrl": f"job:{image['jobId']}", "model": "real-esrgan"}
    )
    assert upscale["status"] == "WAITING"
    await service.run_until_idle()
    done = await service.job("u1", upscale["jobId"])
    assert done["status"] == "COMPLETED", done
    assert swept == []
    (prediction,) = rig.replicate.predictions.values()
    assert prediction.input["scale"] == 2
    image_queues = {
        event.queue
        for event in rig.backend.events
        if event.task is not None and event.task.startswith(image["jobId"])
    }
    assert image_queues == {"image-generation-high-queue"}  # the job and its polls
