"""Every endpoint with bad input answers a 4xx JSON error naming the problem, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.app.conftest import INTERNAL_KEY, Service


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


OK_IMAGE = "https://example.com/cat.png"

# (job type, body, field named in the answer)
INVALID_BODIES = [
    ("image-generation", {}, "prompt"),
    ("image-generation", {"prompt": ""}, "prompt"),
    ("image-generation", {"prompt": "   "}, "prompt"),
    ("image-generation", {"prompt": "x" * 2001}, "prompt"),
    ("image-generation", {"prompt": 42}, "prompt"),
    ("image-generation", {"prompt": "x", "width": 10}, "width"),
    ("image-generation", {"prompt": "x", "width": 5000}, "width"),
    ("image-generation", {"prompt": "x", "height": "512"}, "height"),
    ("image-generation", {"prompt": "x", "height": 512.5}, "height"),
    ("image-generation", {"prompt": "x", "seed": -1}, "seed"),
    ("image-generation", {"prompt": "x", "model": "dall-e"}, "model"),
    ("image-generation", {"prompt": "x", "model": "local", "provider": "bfl"}, "provider"),
    ("image-generation", {"prompt": "x", "width": None}, "width"),
    ("video-generation", {"prompt": "x", "duration": 0}, "duration"),
    ("video-generation", {"prompt": "x", "duration": 11}, "duration"),
    ("video-generation", {"prompt": "x", "duration": "long"}, "duration"),
    ("video-generation", {"prompt": "x", "imageUrl": "file:///etc/passwd"}, "imageUrl"),
    ("video-generation", {"prompt": "x", "imageUrl": "ftp://example.com/a.png"}, "imageUrl"),
    ("video-generation", {"prompt": "x", "model": "flux-1.1-pro"}, "model"),
    ("image-upscale", {}, "imageUrl"),
    ("image-upscale", {"imageUrl": OK_IMAGE, "scale": 3}, "scale"),
    ("image-upscale", {"imageUrl": OK_IMAGE, "scale": "2x"}, "scale"),
    ("image-upscale", {"imageUrl": "javascript:alert(1)"}, "imageUrl"),
    ("image-upscale", {"imageUrl": ["https://example.com/a.png"]}, "imageUrl"),
    ("batch-generation", {}, "prompts"),
    ("batch-generation", {"prompts": []}, "prompts"),
    ("batch-generation", {"prompts": ["a"] * 101}, "prompts"),
    ("batch-generation", {"prompts": "a cat"}, "prompts"),
    ("batch-generation", {"prompts": ["a", ""]}, "prompts[1]"),
    ("batch-generation", {"prompts": ["a"], "batchSize": 0}, "batchSize"),
    ("batch-generation", {"prompts": ["a"], "batchSize": 11}, "batchSize"),
]


@pytest.mark.parametrize(("job_type", "body", "field"), INVALID_BODIES)
async def test_invalid_bodies_answer_422_naming_the_field(
    service: Service, job_type: str, body: dict, field: str
):
    status, error = await service.request("POST", f"/api/jobs/{job_type}", user="u", json=body)
    assert status == 422, error
    assert error["error"] == "validation_error"
    assert field in [item["field"] for item in error["fields"]], error
    assert field in error["message"]
    assert await service.credits("u") == 100


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"", 422, "validation_error"),
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2, 3]", 422, "validation_error"),
        (b'"a string"', 422, "validation_error"),
        (b"null", 422, "validation_error"),
        (b"[" * 50_000 + b"]" * 50_000, 400, "invalid_json"),
        (b"\xff\xfe garbage", 400, "invalid_json"),
    ],
)
async def test_malformed_bodies_answer_4xx(service: Service, raw: bytes, status: int, code: str):
    answer, error = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="u",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert (answer, error["error"]) == (status, code), error


async def test_a_huge_body_answers_413(service: Service):
    huge = json.dumps({"prompt": "x" * (service.settings.max_body_bytes + 10)})
    status, error = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="u",
        data=huge,
        headers={"Content-Type": "application/json"},
    )
    assert status == 413 and error["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-5", "limit"),
        ("cursor=garbage!", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),
    ],
)
async def test_bad_listing_parameters_answer_422(service: Service, query: str, field: str):
    status, error = await service.request("GET", f"/api/jobs?{query}", user="u")
    assert status == 422, error
    assert error["fields"][0]["field"] == field


async def test_unknown_routes_and_methods_answer_json(service: Service):
    status, error = await service.request("POST", "/api/jobs/teleportation", user="u", json={})
    assert status == 404 and "teleportation" in error["message"]
    status, error = await service.request("GET", "/nowhere")
    assert status == 404 and error["error"] == "not_found"
    status, error = await service.request("DELETE", "/api/me", user="u")
    assert status == 405 and error["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, b'{"jobId": "x"}', 400),  # no X-CloudTasks-* headers
        ({"X-CloudTasks-TaskRetryCount": "many"}, b'{"jobId": "x"}', 400),
        ({"X-CloudTasks-TaskRetryCount": "0"}, b"not json", 400),
        ({"X-CloudTasks-TaskRetryCount": "0"}, b"{}", 400),
        ({"X-CloudTasks-TaskRetryCount": "0"}, b'{"jobId": "unknown"}', 200),
    ],
)
async def test_bad_task_deliveries_answer_4xx_or_are_acknowledged(
    service: Service, headers: dict, body: bytes, expected: int
):
    base = {"X-Internal-Api-Key": INTERNAL_KEY}
    if headers:
        base.update({"X-CloudTasks-QueueName": "q", "X-CloudTasks-TaskName": "t", **headers})
    status, answer = await service.request(
        "POST", "/internal/tasks/image-generation", headers=base, data=body
    )
    assert status == expected, answer
    status, answer = await service.request("POST", "/internal/tasks/nope", headers=base, data=body)
    assert status == 404


async def test_browsers_on_another_origin_may_call_the_api(service: Service):
    origin = {"Origin": "http://localhost:5173"}
    async with service.http.options(
        service.base_url + "/api/jobs/image-generation",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    async with service.http.get(
        service.base_url + "/api/me", headers={**origin, **service.auth("u")}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    async with service.http.post(
        service.base_url + "/internal/tasks/image-generation", headers=origin
    ) as response:
        assert response.status == 401
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_can_be_limited_to_listed_origins(start_service):
    service = await start_service(cors_allowed_origins="https://app.daygen.example")
    for origin, allowed in [("https://app.daygen.example", True), ("https://evil.example", False)]:
        async with service.http.get(
            service.base_url + "/healthz", headers={"Origin": origin}
        ) as response:
            assert response.status == 200
            assert (response.headers.get("Access-Control-Allow-Origin") == origin) is allowed
