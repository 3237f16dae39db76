"""Credits never go negative, even with many concurrent creations (both databases)."""

from __future__ import annotations

import asyncio
from collections import Counter

from app.jobs.credits import settle
from app.jobs.types import JOB_TYPES
from tests.app.conftest import StartService


def cost(job_type: str, body: dict) -> int:
    spec = JOB_TYPES[job_type]
    return spec.cost(spec.request.model_validate(body))


def test_the_cost_table():
    one_of_each = {
        "image-generation": {"prompt": "a"},
        "video-generation": {"prompt": "a"},
        "image-upscale": {"imageUrl": "https://example.com/a.png"},
        "batch-generation": {"prompts": ["a"]},
    }
    assert {name: cost(name, body) for name, body in one_of_each.items()} == {
        "image-generation": 1,
        "video-generation": 5,
        "image-upscale": 2,
        "batch-generation": 1,
    }
    assert cost("batch-generation", {"prompts": ["a"] * 7, "batchSize": 3}) == 7
    assert cost("image-generation", {"prompt": "a"}) == 1


def test_a_group_of_demands_is_settled_in_arrival_order_while_the_balance_covers_it():
    balances = {"alice": 6, "bob": 1}
    demands = [("alice", 5), ("bob", 1), ("alice", 5), ("alice", 1), ("bob", 1), ("carol", 0)]
    assert settle(balances, demands) == [True, True, False, True, False, False]
    assert balances == {"alice": 6, "bob": 1}  # pure: the caller's dict is untouched


async def test_concurrent_creations_of_many_users_each_stop_at_their_own_balance(
    start_service: StartService,
):
    service = await start_service(starting_credits=7)
    users = [f"user-{n}" for n in range(8)]
    headers = {user: service.auth(user) for user in users}

    async def create(user: str, job_type: str, body: dict) -> tuple[str, str, int]:
        async with service.http.post(
            f"{service.base_url}/api/jobs/{job_type}", json=body, headers=headers[user]
        ) as response:
            await response.read()
            return user, job_type, response.status

    requests = []
    for user in users:  # per user: 2 videos (5 each) and 4 images (1 each), interleaved
        requests += [create(user, "video-generation", {"prompt": "v"}) for _ in range(2)]
        requests += [create(user, "image-generation", {"prompt": "i"}) for _ in range(4)]
    results = await asyncio.gather(*requests)
    for user in users:
        mine = [(job_type, status) for who, job_type, status in results if who == user]
        assert {status for _, status in mine} <= {202, 402}
        balance = await service.credits(user)
        _, page = await service.request("GET", "/api/jobs?limit=100", user=user)
        spent = sum(5 if job["type"] == "video-generation" else 1 for job in page["jobs"])
        assert spent + balance == 7 and balance >= 0
        assert len(page["jobs"]) == sum(1 for _, status in mine if status == 202)
        # A refusal only ever happens when the balance could not cover the job.
        if ("image-generation", 402) in mine:
            assert balance == 0
        if ("video-generation", 402) in mine:
            assert balance < 5


async def test_200_concurrent_creations_with_credits_for_50_accept_exactly_50(
    start_service: StartService,
):
    service = await start_service(starting_credits=50)
    headers = service.auth("spender")
    body = {"prompt": "a coin", "width": 64, "height": 64}

    async def create() -> int:
        async with service.http.post(
            service.base_url + "/api/jobs/image-generation", json=body, headers=headers
        ) as response:
            payload = await response.json()
            assert "error" in payload or payload["status"] == "PENDING"
            return response.status

    statuses = Counter(await asyncio.gather(*(create() for _ in range(200))))
    assert statuses == {202: 50, 402: 150}
    assert await service.credits("spender") == 0
    status, page = await service.request("GET", "/api/jobs?limit=100", user="spender")
    assert status == 200 and len(page["jobs"]) == 50


async def test_a_job_costing_more_than_the_balance_is_refused_with_402(
    start_service: StartService,
):
    service = await start_service(starting_credits=4)
    status, error = await service.request(
        "POST", "/api/jobs/video-generation", user="poor", json={"prompt": "a film"}
    )
    assert status == 402
    assert error["error"] == "insufficient_credits"
    assert await service.credits("poor") == 4
