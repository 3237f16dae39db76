"""No input answers a 500, and errors speak to people: corrupt compressed bodies, tokens that
PyJWT reads as internals, an ``exp`` past year 9999, absurd delivery headers, the token
command's lifetime."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time

import jwt
import pytest

from tests.app.conftest import INTERNAL_KEY, JWT_SECRET, Service


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"\x1f\x8b\x08garbage"),
        ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 20),
        ("deflate", b"not deflate at all"),
    ],
)
async def test_corrupt_compressed_bodies_answer_400(
    service: Service, encoding: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    status, error = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="zed",
        data=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert status == 400, error
    assert encoding in error["message"]
    assert "Traceback" not in caplog.text and "Unhandled exception" not in caplog.text
    assert await service.credits("zed") == 100


async def test_a_good_gzip_body_is_read(service: Service) -> None:
    status, job = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="zed",
        data=gzip.compress(json.dumps({"prompt": "x", "width": 64, "height": 64}).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert status == 202, job


HEADER = segment(b'{"alg":"HS256","typ":"JWT"}')
UNREADABLE = {
    "one segment": ("abc", "not a JWT"),
    "bad utf-8 header": (segment(b"\xff\xfe") + "." + segment(b"{}") + ".sig", "not a JWT"),
    "bad padding": ("a.b.c", "not a JWT"),
    "wrong secret": (
        jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"),
        "signature does not match",
    ),
    "no exp": (jwt.encode({"sub": "a"}, JWT_SECRET, algorithm="HS256"), "'exp' claim is required"),
    "exp a string": (
        jwt.encode({"sub": "a", "exp": "soon"}, JWT_SECRET, algorithm="HS256"),
        "must be an integer",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
async def test_auth_errors_are_written_for_people(service: Service, case: str) -> None:
    token, words = UNREADABLE[case]
    status, error = await service.request(
        "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 401
    assert words in error["message"], error
    for internal in ("codec", "segments", "padding", "Error"):
        assert internal not in error["message"], error


async def test_an_exp_past_year_9999_is_accepted_not_a_500(service: Service) -> None:
    token = jwt.encode({"sub": "far", "exp": 10**12}, JWT_SECRET, algorithm="HS256")
    status, me = await service.request(
        "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and me["id"] == "far", me
    huge = jwt.encode({"sub": "far", "exp": 10**30}, JWT_SECRET, algorithm="HS256")
    status, me = await service.request(
        "GET", "/api/me", headers={"Authorization": f"Bearer {huge}"}
    )
    assert status in (200, 401), me


@pytest.mark.parametrize("count", [str(2**63), str(2**64 + 5), "٣", "-1", "1e3", "²", "0x1"])
async def test_absurd_retry_counts_answer_400(service: Service, count: str) -> None:
    job = await service.create(
        "amy", "image-generation", {"prompt": "x", "width": 64, "height": 64}
    )
    headers = {
        "X-Internal-Api-Key": INTERNAL_KEY,
        "X-CloudTasks-QueueName": "image-generation-queue",
        "X-CloudTasks-TaskName": job["jobId"],
        "X-CloudTasks-TaskRetryCount": count,
        "X-CloudTasks-TaskPreviousResponse": "²",
    }
    status, body = await service.request(
        "POST", "/internal/tasks/image-generation", headers=headers, json={"jobId": job["jobId"]}
    )
    assert status == 400, body
    assert body["error"] == "invalid_delivery"


@pytest.mark.parametrize("hours", ["-1", "0", "nan", "inf", "1e9", "soon"])
def test_the_token_command_refuses_a_lifetime_that_is_not_positive(hours: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "token", "bob", "--hours", hours],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--hours" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
