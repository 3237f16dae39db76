"""Listing: newest first, paginated by an opaque cursor, only the caller's jobs."""

from __future__ import annotations

from datetime import timedelta

from tests.app.conftest import Service


async def test_jobs_are_listed_newest_first_page_by_page(service: Service):
    created = []
    for n in range(5):
        job = await service.create("alice", "image-generation", {"prompt": f"picture {n}"})
        created.append(job["jobId"])
        service.clock.advance(timedelta(seconds=1))
    await service.create("bob", "image-generation", {"prompt": "not alice's"})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await service.request("GET", f"/api/jobs{query}", user="alice")
        assert status == 200
        pages += 1
        seen += [job["jobId"] for job in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    assert pages == 3
    status, page = await service.request("GET", "/api/jobs", user="alice")
    assert [job["jobId"] for job in page["jobs"]] == list(reversed(created))


async def test_jobs_created_in_the_same_instant_are_paginated_without_loss(service: Service):
    ids = {
        (await service.create("carol", "image-generation", {"prompt": "x"}))["jobId"]
        for _ in range(7)
    }
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        _, page = await service.request("GET", f"/api/jobs{query}", user="carol")
        seen += [job["jobId"] for job in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == ids


async def test_the_job_view_has_the_seed_fields(service: Service):
    job = await service.create("dave", "image-generation", {"prompt": "x"})
    assert set(job) == {
        "jobId",
        "type",
        "status",
        "progress",
        "resultUrl",
        "resultUrls",
        "error",
        "createdAt",
        "updatedAt",
        # planning (priority, runAt, dependsOn)
        "priority",
        "runAt",
        "dependsOn",
        "waitingFor",
    }
    assert job["createdAt"] == "2026-01-01T00:00:00.000Z"  # the virtual clock's time
