"""Who gets which updates, who may connect, and what a client gets right after connecting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import jwt
import pytest

from tests.realtime.clients import RecordingClient
from tests.realtime.conftest import IMAGE_BODY, Service

NewClient = Callable[[], RecordingClient]


@pytest.fixture
async def new_client() -> AsyncIterator[NewClient]:
    clients: list[RecordingClient] = []

    def make() -> RecordingClient:
        client = RecordingClient()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_user_never_receives_another_users_updates(
    service: Service, new_client: NewClient
) -> None:
    alice, bob = new_client(), new_client()
    await alice.connect(service.base_url, service.token("alice"))
    await bob.connect(service.base_url, service.token("bob"))
    job = await service.create("alice", "image-generation", IMAGE_BODY)
    await alice.updates_until(job["jobId"], "COMPLETED")
    # Bob's own job is published after all of Alice's updates: had any of hers been routed to
    # him, it would be in his queue before this one.
    own = await service.create("bob", "image-generation", IMAGE_BODY)
    first = await bob.next_update()
    assert first["jobId"] == own["jobId"]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing token"),
        ("not-a-jwt", "invalid token"),
        (jwt.encode({"sub": "mallory", "exp": 4102444800}, "x" * 40), "invalid token"),
        ("expired", "token expired"),
    ],
)
async def test_bad_tokens_are_refused_with_a_reason(
    service: Service, new_client: NewClient, token: str | None, reason: str
) -> None:
    if token == "expired":
        token = service.token("mallory", ttl=timedelta(seconds=-1))
    data = await new_client().refusal(service.base_url, token)
    assert data["message"] == "unauthorized"
    assert data["data"]["reason"].startswith(reason)


async def test_unsigned_token_is_refused(service: Service, new_client: NewClient) -> None:
    unsigned = jwt.encode(
        {"sub": "mallory", "exp": 4102444800},
        None,  # type: ignore[arg-type]
        algorithm="none",
    )
    data = await new_client().refusal(service.base_url, unsigned)
    assert data == {"message": "unauthorized", "data": {"reason": data["data"]["reason"]}}
    assert data["data"]["reason"].startswith("invalid token")


async def test_subscribing_to_another_users_job_is_refused(
    service: Service, new_client: NewClient
) -> None:
    theirs = await service.create("alice", "image-generation", IMAGE_BODY)
    bob = new_client()
    await bob.connect(service.base_url, service.token("bob"))
    assert await bob.call("subscribe", theirs["jobId"]) == {"ok": False, "error": "not found"}
    assert await bob.call("subscribe", "no-such-job") == {"ok": False, "error": "not found"}
    assert (await bob.call("subscribe", None))["ok"] is False


async def test_subscribe_and_unsubscribe_own_job(service: Service, new_client: NewClient) -> None:
    job = await service.create("alice", "image-generation", IMAGE_BODY)
    alice = new_client()
    await alice.connect(service.base_url, service.token("alice"))
    ack = await alice.call("subscribe", {"jobId": job["jobId"]})
    assert ack["ok"] is True and ack["job"]["jobId"] == job["jobId"]
    assert await alice.call("unsubscribe", job["jobId"]) == {"ok": True}


async def test_unfinished_jobs_are_sent_right_after_connect(
    service: Service, new_client: NewClient
) -> None:
    await service.pause("image-generation")
    waiting = await service.create("alice", "image-generation", IMAGE_BODY)
    client = new_client()
    await client.connect(service.base_url, service.token("alice"))
    snapshot = await client.next_update()
    assert snapshot["jobId"] == waiting["jobId"] and snapshot["status"] == "PENDING"
    await service.resume("image-generation")
    updates = await client.updates_until(waiting["jobId"], "COMPLETED")
    assert updates[-1]["progress"] == 100 and updates[-1]["resultUrl"]


async def test_finished_jobs_are_not_in_the_snapshot(
    service: Service, new_client: NewClient
) -> None:
    first = new_client()
    await first.connect(service.base_url, service.token("alice"))
    done = await service.create("alice", "image-generation", IMAGE_BODY)
    await first.updates_until(done["jobId"], "COMPLETED")
    await service.pause("image-generation")
    waiting = await service.create("alice", "image-generation", IMAGE_BODY)
    second = new_client()
    await second.connect(service.base_url, service.token("alice"))
    snapshot = await second.next_update()
    assert snapshot["jobId"] == waiting["jobId"]  # the finished job is not re-sent
