"""``FetchGuard`` and ``FETCH_ALLOW_HOSTS``: chosen hosts exempt from the private-address
refusal, every other rule kept, for source images, plain requests and provider results."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr, ValidationError

from app.outbound import OutboundHttp
from app.providers import PermanentProviderError
from app.providers.fetch import fetch_source_image
from app.providers.guard import FetchGuard, FetchRefused, parse_allow_host
from app.providers.http import HostPolicy, ProviderHttp
from app.settings import Settings
from app.storage import LocalStorage
from tests.providers.conftest import NoNetworkSession, ServeFn, png_bytes

IMAGE = png_bytes(8, 8)


def origin_app() -> web.Application:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.method} {await request.text()} {request.host}")

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/redirect", redirect)
    app.router.add_route("*", "/echo", echo)
    return app


@pytest.fixture
async def origin(serve: ServeFn) -> TestServer:
    return await serve(origin_app())


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("Fake.Internal", ("fake.internal", None)),
        ("bücher.example:9000", ("xn--bcher-kva.example", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("::1", ("::1", None)),
    ],
)
def test_allow_host_entries_are_host_or_host_and_port(
    entry: str, parsed: tuple[str, int | None]
) -> None:
    assert parse_allow_host(entry) == parsed


@pytest.mark.parametrize("entry", ["http://a.example", "a.example/path", "a:99999", "a b", "@x"])
def test_bad_allow_host_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="host"):
        parse_allow_host(entry)


def test_fetch_allow_hosts_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_ALLOW_HOSTS", " 127.0.0.1:8081, fake.internal ,")
    settings = Settings(app_env="test")
    assert settings.fetch_allow_hosts == ["127.0.0.1:8081", "fake.internal"]
    guard = FetchGuard.from_settings(settings)
    assert guard.allow_hosts == {("127.0.0.1", 8081), ("fake.internal", None)}
    monkeypatch.setenv("FETCH_ALLOW_HOSTS", "ok.example,http://bad.example/")
    with pytest.raises(ValidationError, match="not host or host:port"):
        Settings(app_env="test")
    monkeypatch.delenv("FETCH_ALLOW_HOSTS")
    assert Settings(app_env="test").fetch_allow_hosts == []


async def test_a_listed_host_and_port_is_fetched_and_no_other(
    storage: LocalStorage, origin: TestServer
) -> None:
    url = str(origin.make_url("/image.png"))
    allowed = FetchGuard.of([f"127.0.0.1:{origin.port}"])
    assert await fetch_source_image(url, storage=storage, guard=allowed) == IMAGE
    assert await fetch_source_image(url, storage=storage, guard=FetchGuard.of(["127.0.0.1"])) == (
        IMAGE
    )
    for guard in (FetchGuard(), FetchGuard.of([f"127.0.0.1:{origin.port + 1}"])):
        with pytest.raises(PermanentProviderError, match="private or reserved"):
            await fetch_source_image(url, storage=storage, guard=guard)
    # The name is what is listed: localhost is not 127.0.0.1.
    by_name = f"http://localhost:{origin.port}/image.png"
    with pytest.raises(PermanentProviderError, match="private or reserved"):
        await fetch_source_image(by_name, storage=storage, guard=allowed)
    named = FetchGuard.of([f"localhost:{origin.port}"])
    assert await fetch_source_image(by_name, storage=storage, guard=named) == IMAGE


async def test_a_redirect_from_a_listed_host_to_another_private_one_is_refused(
    storage: LocalStorage, origin: TestServer
) -> None:
    guard = FetchGuard.of([f"127.0.0.1:{origin.port}"])
    hop = origin.make_url("/redirect").with_query(to="http://10.0.0.7/x.png")
    with pytest.raises(PermanentProviderError, match="private or reserved"):
        await fetch_source_image(str(hop), storage=storage, guard=guard)
    inside = origin.make_url("/redirect").with_query(to="/image.png")
    assert await fetch_source_image(str(inside), storage=storage, guard=guard) == IMAGE


async def test_the_other_rules_still_hold_for_listed_hosts(storage: LocalStorage) -> None:
    guard = FetchGuard.of(["127.0.0.1"])
    for url, problem in [
        ("http://user:pw@127.0.0.1/x", "credentials"),
        ("ftp://127.0.0.1/x", "http or https"),
        ("http://127.0.0.1:99999/x", "port"),
    ]:
        with pytest.raises(PermanentProviderError, match=problem):
            await fetch_source_image(url, storage=storage, guard=guard, session=NoNetworkSession())


def test_check_url_refuses_literal_private_addresses_without_dns() -> None:
    guard = FetchGuard.of(["10.0.0.7:8080"])
    assert guard.check_url("http://10.0.0.7:8080/hook").port == 8080
    assert guard.check_url("https://example.com/x").host == "example.com"
    with pytest.raises(FetchRefused, match="private or reserved"):
        guard.check_url("http://10.0.0.7/hook", what="webhookUrl")
    with pytest.raises(FetchRefused, match=r"^webhookUrl port must be between 1 and 65535$"):
        guard.check_url("http://example.com:0/", what="webhookUrl")


async def test_request_posts_to_a_listed_host_and_follows_redirects_checked(
    origin: TestServer,
) -> None:
    guard = FetchGuard.of([f"127.0.0.1:{origin.port}"])
    async with aiohttp.ClientSession(trust_env=False) as session:
        url = str(origin.make_url("/echo"))
        async with guard.request(session, "POST", url, data=b"ping") as response:
            assert response.status == 200
            assert await response.text() == f"POST ping 127.0.0.1:{origin.port}"
        hop = origin.make_url("/redirect").with_query(to="/echo")
        async with guard.request(session, "GET", str(hop)) as response:
            assert await response.text() == f"GET  127.0.0.1:{origin.port}"
        async with guard.request(session, "GET", str(hop), max_redirects=0) as response:
            assert response.status == 302
        with pytest.raises(FetchRefused, match="private or reserved"):
            async with FetchGuard().request(session, "POST", url, data=b"x"):
                pass


async def test_provider_result_downloads_go_through_the_guard(origin: TestServer) -> None:
    outbound = OutboundHttp()
    try:

        def provider_http(guard: FetchGuard | None) -> ProviderHttp:
            return ProviderHttp(
                "fake",
                outbound,
                base_url="https://api.fake.example",
                auth_headers={"Authorization": SecretStr("k")},
                policy=HostPolicy.of("https://api.fake.example"),
                guard=guard,
            )

        url = str(origin.make_url("/image.png"))
        with pytest.raises(PermanentProviderError, match="private or reserved"):
            await provider_http(FetchGuard()).download(url)
        listed = provider_http(FetchGuard.of([f"127.0.0.1:{origin.port}"]))
        assert (await listed.download(url)).data == IMAGE
    finally:
        await outbound.close()
