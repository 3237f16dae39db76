"""``Idempotency-Key`` on the create routes: replays, refusals, expiry, and twenty identical
requests at once making one job (the database's primary key decides)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from app.idempotency import _Claim, _take, fingerprint
from app.models import IdempotencyKey, Job
from tests.app.conftest import Service, StartService

BODY = {"prompt": "a red fox", "width": 64, "height": 64, "model": "local"}


async def post(
    service: Service,
    user: str,
    key: str | None,
    body: Any = BODY,
    job_type: str = "image-generation",
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {service.token(user)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = body if isinstance(body, str) else json.dumps(body)
    async with service.http.post(
        f"{service.base_url}/api/jobs/{job_type}",
        data=data,
        headers={**headers, "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json(), dict(response.headers)


async def jobs_of(service: Service, user: str) -> int:
    def count(conn: Any) -> int:
        return int(conn.execute(select(func.count()).where(Job.user_id == user)).scalar_one())

    return await service.database.read(count)


async def test_the_same_key_and_body_answers_the_same_job_and_charges_once(service: Service):
    status, first, headers = await post(service, "alice", "order-1")
    assert status == 202 and "Idempotent-Replayed" not in headers
    status, again, headers = await post(service, "alice", "order-1")
    assert status == 202 and headers["Idempotent-Replayed"] == "true"
    assert again == first
    assert await service.credits("alice") == 99
    assert await jobs_of(service, "alice") == 1

    await service.run_until_idle()
    # Same body spelled differently (key order, spacing): still the same request.
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=2)
    status, later, headers = await post(service, "alice", "order-1", reordered)
    assert (status, headers["Idempotent-Replayed"]) == (202, "true")
    assert later["jobId"] == first["jobId"] and later["status"] == "COMPLETED"
    assert await service.credits("alice") == 99


async def test_the_same_key_with_another_body_or_job_type_answers_422(service: Service):
    status, _, _ = await post(service, "bob", "k")
    assert status == 202
    status, answer, _ = await post(service, "bob", "k", {**BODY, "prompt": "a grey wolf"})
    assert status == 422
    assert answer["fields"][0]["field"] == "Idempotency-Key"
    assert answer["fields"][0]["type"] == "idempotency_key_reused"
    status, answer, _ = await post(
        service, "bob", "k", {"prompts": ["a red fox"], "model": "local"}, "batch-generation"
    )
    assert status == 422
    assert await service.credits("bob") == 99
    assert await jobs_of(service, "bob") == 1


async def test_keys_are_per_user(service: Service):
    _, mine, _ = await post(service, "carol", "shared-key")
    _, theirs, headers = await post(service, "dave", "shared-key")
    assert mine["jobId"] != theirs["jobId"] and "Idempotent-Replayed" not in headers
    assert await service.credits("carol") == 99 and await service.credits("dave") == 99


async def test_twenty_identical_requests_at_once_make_one_job(service: Service):
    answers = await asyncio.gather(*(post(service, "erin", "burst") for _ in range(20)))
    created = [body for status, body, headers in answers if status == 202]
    assert created, answers
    assert len({body["jobId"] for body in created}) == 1
    fresh = [h for status, _, h in answers if status == 202 and "Idempotent-Replayed" not in h]
    assert len(fresh) == 1  # one request created it; any other 202 is a replay
    for status, body, _ in answers:
        assert status in (202, 409), body
        if status == 409:
            assert body["error"] == "request_in_flight"
    assert await jobs_of(service, "erin") == 1
    assert await service.credits("erin") == 99


async def test_a_request_in_flight_answers_409_until_abandoned(service: Service):
    """A key whose job never appeared (its process died after taking the key) is in flight
    for a minute, then the next request with it creates the job."""
    await service.store.ensure_user("frank")
    now = service.clock.now()
    print_ = fingerprint("image-generation", BODY)
    claim = _Claim("frank", "k", print_, "ghost-job", now)
    taken = await service.database.write(_take, claim)
    assert taken.won
    status, answer, _ = await post(service, "frank", "k")
    assert (status, answer["error"]) == (409, "request_in_flight")
    assert await service.credits("frank") == 100

    service.clock.advance(timedelta(seconds=61))
    status, job, headers = await post(service, "frank", "k")
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert job["jobId"] != "ghost-job"
    status, again, headers = await post(service, "frank", "k")
    assert (status, again["jobId"], headers["Idempotent-Replayed"]) == (202, job["jobId"], "true")
    assert await service.credits("frank") == 99


async def test_a_key_is_remembered_for_24_hours(service: Service):
    _, first, _ = await post(service, "gina", "daily")
    service.clock.advance(timedelta(hours=23, minutes=59))
    _, again, headers = await post(service, "gina", "daily")
    assert again["jobId"] == first["jobId"] and headers["Idempotent-Replayed"] == "true"
    service.clock.advance(timedelta(minutes=2))
    status, new, headers = await post(service, "gina", "daily", {**BODY, "prompt": "new day"})
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert new["jobId"] != first["jobId"]
    assert await service.credits("gina") == 98


async def test_a_bad_key_is_refused_before_anything_is_charged(service: Service):
    for key in ("", "   ", "x" * 256):
        status, answer, _ = await post(service, "hana", key)
        assert status == 422, key
        assert answer["fields"][0]["field"] == "Idempotency-Key"
    assert await service.credits("hana") == 100
    status, _, _ = await post(service, "hana", "x" * 255)
    assert status == 202


async def test_a_refused_create_does_not_keep_its_key(start_service: StartService):
    service = await start_service(starting_credits=3)
    video = {"prompt": "waves", "model": "local", "duration": 1, "width": 64, "height": 64}
    for _ in range(2):  # refused twice: not "in flight", not a replay of a 402
        status, answer, _ = await post(service, "ivan", "v", video, "video-generation")
        assert (status, answer["error"]) == (402, "insufficient_credits")
    status, answer, _ = await post(service, "ivan", "v", {"prompt": ""}, "video-generation")
    assert status == 422 and answer["fields"][0]["field"] == "prompt"

    def keys(conn: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one())

    assert await service.database.read(keys) == 0
    status, _, _ = await post(service, "ivan", "v", BODY)  # the key is free for a new request
    assert status == 202
    assert await service.credits("ivan") == 2
