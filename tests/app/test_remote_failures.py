"""Every way a remote provider fails, through the app on the virtual clock: the job ends in the
right state with a short safe message, refunded when it failed, and with exactly one provider
submission per attempt (never a second paid task for the same attempt)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from aiohttp import web

from tests.app.conftest import database, db_kind  # noqa: F401  (fixtures)
from tests.app.remote_support import RemoteRig, rig_fixture  # noqa: F401  (fixtures)
from tests.providers.adapter_support import assert_no_secret
from tests.providers.fakes.common import Canned

IMAGE = {"prompt": "A beautiful sunset", "model": "flux-1.1-pro", "provider": "bfl"}
VIDEO = {"prompt": "A cat", "model": "runway-gen4", "imageUrl": "https://example.com/a.jpg"}
UPSCALE = {"imageUrl": "https://example.com/image.jpg", "model": "real-esrgan", "scale": 2}
START = 100


@dataclass(frozen=True)
class Answer:
    at: datetime
    path: str
    status: int
    retry_after: str | None


def recorder(rig: RemoteRig, answers: list[Answer]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware keeping what the app answered the queue, and when."""

    @web.middleware
    async def record(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]):
        response = await handler(request)
        if request.path.startswith("/internal/"):
            answers.append(
                Answer(
                    rig.clock.now(),
                    request.path,
                    response.status,
                    response.headers.get("Retry-After"),
                )
            )
        return response

    return record


async def _run(rig: RemoteRig, job_type: str, body: dict[str, object]) -> dict[str, object]:
    assert rig.service is not None
    job = await rig.service.create("u1", job_type, body)
    await rig.service.run_until_idle()
    return await rig.service.job("u1", str(job["jobId"]))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("Request Moderated", "the image provider's content moderation refused this prompt"),
        ("Content Moderated", "the image provider's content moderation withheld the generated"),
        ("Error", "the image provider failed to generate the image"),
        ("Task not found", "the image provider lost the task"),
    ],
)
async def test_bfl_final_statuses_fail_the_job_refunded_after_one_submission(
    rig: RemoteRig, caplog: pytest.LogCaptureFixture, status: str, message: str
) -> None:
    service = await rig.start()
    rig.bfl.script("Pending", status)
    with caplog.at_level(logging.DEBUG):
        view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "FAILED"
    assert str(view["error"]).startswith(message)
    assert await service.credits("u1") == START
    assert len(rig.bfl.calls("POST", "/v1/")) == 1
    # The provider's own words are in the log for operators; keys are nowhere.
    assert status in caplog.text
    assert_no_secret(caplog.text, repr(view), repr(service.events.updates))


async def test_bfl_402_fails_at_once_as_out_of_credits_and_refunds(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.inject("submit", Canned(402, {"detail": "Insufficient credits"}))
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "FAILED"
    assert view["error"] == "bfl: provider out of credits; the job was refunded"
    assert await service.credits("u1") == START
    assert len(rig.bfl.calls("POST", "/v1/")) == 1
    assert rig.bfl.tasks == {}


async def test_bfl_429_on_submit_answers_503_with_retry_after_then_completes(
    rig: RemoteRig,
) -> None:
    answers: list[Answer] = []
    service = await rig.start(middlewares=(recorder(rig, answers),))
    rig.bfl.inject(
        "submit", Canned(429, {"detail": "too many active tasks"}, headers={"Retry-After": "7"})
    )
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "COMPLETED", view
    first, second = [a for a in answers if a.path == "/internal/tasks/image-generation"]
    assert (first.status, first.retry_after) == (503, "7")
    assert second.status == 200
    assert (second.at - first.at).total_seconds() >= 7  # the queue honoured Retry-After
    # The refused submit started nothing: one task at BFL, one charge.
    assert len(rig.bfl.tasks) == 1
    assert await service.credits("u1") == START - 1


async def test_bfl_429_on_a_poll_answers_503_and_the_poll_is_retried(rig: RemoteRig) -> None:
    answers: list[Answer] = []
    await rig.start(middlewares=(recorder(rig, answers),))
    rig.bfl.script("Pending", "Ready")
    rig.bfl.inject("poll", Canned(429, {"detail": "slow down"}, headers={"Retry-After": "3"}))
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "COMPLETED", view
    polls = [a for a in answers if a.path == "/internal/providers/poll/image-generation"]
    assert (polls[0].status, polls[0].retry_after) == (503, "3")
    assert all(a.status == 200 for a in polls[1:])
    assert len(rig.bfl.calls("POST", "/v1/")) == 1


async def test_bfl_502_on_submit_then_success_completes_with_one_task(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.inject("submit", Canned(502, "Bad Gateway"))
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "COMPLETED", view
    # Attempt 1's submit got a 502 (nothing started); attempt 2 submitted once.
    assert len(rig.bfl.calls("POST", "/v1/")) == 2
    assert len(rig.bfl.tasks) == 1
    job = await service.store.get_job(str(view["jobId"]))
    assert job is not None and job.attempts == 2


async def test_a_502_on_a_poll_then_success_completes(rig: RemoteRig) -> None:
    await rig.start()
    rig.runway.inject("poll", Canned(502, "Bad Gateway"))
    view = await _run(rig, "video-generation", VIDEO)
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.tasks) == 1


async def test_submits_refused_on_every_attempt_fail_the_job_refunded(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.inject("submit", *[Canned(503, "unavailable")] * 3)
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "FAILED"
    assert view["error"] == "bfl is unavailable right now"
    assert len(rig.bfl.calls("POST", "/v1/")) == 3  # one per attempt
    assert await service.credits("u1") == START


async def test_runway_throttled_first_then_completes(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.runway.script("THROTTLED", "THROTTLED", "RUNNING", "SUCCEEDED")
    view = await _run(rig, "video-generation", VIDEO)
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.calls("GET", "/v1/tasks/")) == 4
    assert len(rig.runway.calls("POST", "/v1/")) == 1
    assert await service.credits("u1") == START - 5


async def test_runway_safety_failure_is_final_with_a_safe_message(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.runway.script("RUNNING", "FAILED:SAFETY.INPUT.TEXT")
    view = await _run(rig, "video-generation", VIDEO)
    assert view["status"] == "FAILED"
    assert view["error"] == "the video provider's content moderation refused this request"
    assert "raw provider text" not in str(view)
    assert len(rig.runway.calls("POST", "/v1/")) == 1
    assert await service.credits("u1") == START


async def test_runway_internal_failure_submits_again_on_the_next_attempt(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.runway.script("RUNNING", "FAILED:INTERNAL.BAD_OUTPUT")
    rig.runway.script("RUNNING", "SUCCEEDED")
    view = await _run(rig, "video-generation", VIDEO)
    assert view["status"] == "COMPLETED", view
    assert len(rig.runway.calls("POST", "/v1/")) == 2
    job = await service.store.get_job(str(view["jobId"]))
    assert job is not None and job.attempts == 2
    assert await service.credits("u1") == START - 5


async def test_replicate_aborted_is_retried_then_fails_after_the_last_attempt(
    rig: RemoteRig,
) -> None:
    service = await rig.start()
    for _ in range(3):
        rig.replicate.script("starting", "aborted")
    view = await _run(rig, "image-upscale", UPSCALE)
    assert view["status"] == "FAILED"
    assert view["error"] == "the upscaler dropped the task before starting it; trying again"
    assert len(rig.replicate.predictions) == 3  # one per attempt, three attempts
    assert await service.credits("u1") == START


async def test_replicate_aborted_once_then_succeeds(rig: RemoteRig) -> None:
    await rig.start()
    rig.replicate.script("starting", "aborted")
    rig.replicate.script("processing", "succeeded")
    view = await _run(rig, "image-upscale", UPSCALE)
    assert view["status"] == "COMPLETED", view
    assert len(rig.replicate.predictions) == 2


async def test_replicate_failed_is_final(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.replicate.script("processing", "failed")
    view = await _run(rig, "image-upscale", UPSCALE)
    assert view["status"] == "FAILED"
    assert view["error"] == "the upscaler failed on this image"
    assert "CUDA" not in str(view)
    assert await service.credits("u1") == START


async def test_an_expired_result_link_is_fetched_again_from_a_new_poll(rig: RemoteRig) -> None:
    await rig.start()
    rig.bfl.script("Pending", "Ready")
    rig.bfl.inject("file", Canned(403, "AuthenticationFailed"))
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "COMPLETED", view
    assert len(rig.bfl.calls("POST", "/v1/")) == 1
    assert len(rig.bfl.calls("GET", "/files/")) == 2


async def test_a_task_still_pending_after_the_deadline_fails_refunded(rig: RemoteRig) -> None:
    service = await rig.start()
    rig.bfl.script("Pending")
    started = rig.clock.now()
    view = await _run(rig, "image-generation", IMAGE)
    assert view["status"] == "FAILED"
    assert view["error"] == "the image provider did not finish in time"
    assert 600 <= (rig.clock.now() - started).total_seconds() <= 700
    assert len(rig.bfl.calls("POST", "/v1/")) == 1
    assert await service.credits("u1") == START
