"""Who may call what: user JWTs on the API, the internal key or an OIDC token on the task
endpoint, and nobody sees another user's jobs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.oidc import OidcIssuer
from tests.app.conftest import JWT_SECRET, Service, StartService, free_socket


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def hs256(claims: dict, secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def future(seconds: int = 600) -> int:
    return int(time.time()) + seconds


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

BAD_TOKENS = {
    "missing": None,
    "not bearer": "Basic YWxpY2U6c2VjcmV0",
    "empty bearer": "Bearer ",
    "malformed": "Bearer not-a-jwt",
    "wrongly signed": "Bearer "
    + hs256({"sub": "alice", "exp": future()}, "another-secret-that-is-long-enough-0123"),
    "expired": "Bearer " + hs256({"sub": "alice", "exp": int(time.time()) - 60}),
    "without exp": "Bearer " + hs256({"sub": "alice"}),
    "without sub": "Bearer " + hs256({"exp": future()}),
    "alg none": "Bearer "
    + b64({"alg": "none", "typ": "JWT"})
    + "."
    + b64({"sub": "alice", "exp": future()})
    + ".",
    "RS256 when HS256 is configured": "Bearer "
    + jwt.encode({"sub": "alice", "exp": future()}, RSA_KEY, algorithm="RS256"),
    "bad sub": "Bearer " + hs256({"sub": "../../etc", "exp": future()}),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_refused_with_401(service: Service, case: str):
    header = BAD_TOKENS[case]
    headers = {} if header is None else {"Authorization": header}
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/jobs"),
        ("POST", "/api/jobs/image-generation"),
    ]:
        status, body = await service.request(method, path, headers=headers, json={"prompt": "x"})
        assert status == 401, (case, path, body)
        assert body["error"] == "unauthorized"
    assert await service.store.get_user("alice") is None


async def test_a_good_token_is_accepted_and_grants_starting_credits(service: Service):
    status, me = await service.request("GET", "/api/me", user="newcomer")
    assert (status, me) == (200, {"id": "newcomer", "credits": 100})


async def test_another_users_job_answers_404(service: Service):
    job = await service.create("alice", "image-generation", {"prompt": "mine"})
    status, body = await service.request("GET", f"/api/jobs/{job['jobId']}", user="mallory")
    assert status == 404 and body["error"] == "not_found"
    status, page = await service.request("GET", "/api/jobs", user="mallory")
    assert status == 200 and page["jobs"] == []
    status, body = await service.request("GET", "/api/jobs/no-such-job", user="alice")
    assert status == 404


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"X-Internal-Api-Key": "wrong"}, 403),
        ({"X-Internal-Api-Key": ""}, 403),
        ({"Authorization": "Bearer forged"}, 403),
    ],
)
async def test_the_internal_endpoint_refuses_missing_or_wrong_keys(
    service: Service, headers: dict, expected: int
):
    job = await service.create("alice", "image-generation", {"prompt": "x"})
    headers = {
        **headers,
        "X-CloudTasks-QueueName": "image-generation-queue",
        "X-CloudTasks-TaskName": job["jobId"],
        "X-CloudTasks-TaskRetryCount": "0",
    }
    status, body = await service.request(
        "POST", "/internal/tasks/image-generation", headers=headers, json={"jobId": job["jobId"]}
    )
    assert status == expected, body
    assert (await service.job("alice", job["jobId"]))["status"] == "PENDING"


async def serve_jwks(jwks: dict) -> tuple[web.AppRunner, str]:
    app = web.Application()

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    app.router.add_get("/jwks", keys)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}/jwks"


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    runner, url = await serve_jwks(
        {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
    )
    yield url
    await runner.cleanup()


async def test_rs256_tokens_are_verified_against_the_jwks(
    start_service: StartService, jwks_url: str
):
    service = await start_service(jwt_jwks_url=jwks_url, jwt_secret=None)
    good = jwt.encode(
        {"sub": "rsa-user", "exp": future()}, RSA_KEY, algorithm="RS256", headers={"kid": "k1"}
    )
    status, me = await service.request(
        "GET", "/api/me", headers={"Authorization": f"Bearer {good}"}
    )
    assert (status, me["id"]) == (200, "rsa-user")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"sub": "rsa-user", "exp": future()}, other, algorithm="RS256", headers={"kid": "k1"}
    )
    hs = hs256({"sub": "rsa-user", "exp": future()})
    for token in (forged, hs):
        status, body = await service.request(
            "GET", "/api/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 401, body


async def test_tasks_authenticated_by_oidc_tokens_run_the_whole_flow(
    start_service: StartService,
):
    issuer = OidcIssuer()
    runner, url = await serve_jwks(issuer.jwks())
    try:
        account = "tasks@local-project.iam.gserviceaccount.com"
        service = await start_service(
            backend_options={"token_minter": issuer},
            task_service_account_email=account,
            oidc_audience="daygen-app",
            oidc_jwks_url=url,
            oidc_service_account_email=account,
        )
        job = await service.create(
            "alice", "image-generation", {"prompt": "x", "width": 64, "height": 64}
        )
        await service.run_until_idle()
        assert (await service.job("alice", job["jobId"]))["status"] == "COMPLETED"

        wrong = issuer.mint(service_account_email="intruder@evil.example", audience="daygen-app")
        status, _ = await service.request(
            "POST",
            "/internal/tasks/image-generation",
            headers={
                "Authorization": f"Bearer {wrong}",
                "X-CloudTasks-QueueName": "q",
                "X-CloudTasks-TaskName": "t",
                "X-CloudTasks-TaskRetryCount": "0",
            },
            json={"jobId": job["jobId"]},
        )
        assert status == 403
    finally:
        await runner.cleanup()


async def test_a_remembered_token_is_refused_once_it_expires():
    from datetime import UTC, datetime, timedelta

    from freezegun import freeze_time

    from app.auth import AuthError, UserAuthenticator
    from app.settings import Settings

    authenticator = UserAuthenticator(
        Settings(jwt_secret=JWT_SECRET, internal_api_key="k", app_env="test")
    )
    start = datetime(2030, 1, 1, tzinfo=UTC)
    token = hs256({"sub": "alice", "exp": int((start + timedelta(seconds=60)).timestamp())})
    with freeze_time(start):
        assert (await authenticator.verify(token)).user_id == "alice"
    with freeze_time(start + timedelta(seconds=30)):
        assert (await authenticator.verify(token)).user_id == "alice"
    with freeze_time(start + timedelta(seconds=61)), pytest.raises(AuthError, match="expired"):
        await authenticator.verify(token)
