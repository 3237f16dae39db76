"""Source images: our own /media/ URLs come from storage, anything else is fetched SSRF-safely.

Every refusal test passes a session that fails on use, proving the refusal happens before any
connection. The only server ever contacted is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.providers import PermanentProviderError, RetryableProviderError
from app.providers import guard as guard_module
from app.providers.fetch import fetch_source_image, is_forbidden_address
from app.storage import LocalStorage
from tests.providers.conftest import BASE_URL, NoNetworkSession, ServeFn, png_bytes

IMAGE = png_bytes(16, 16)


async def fetch(url: str, storage: LocalStorage, **kwargs: Any) -> bytes:
    return await fetch_source_image(url, storage=storage, **kwargs)


def image_app() -> web.Application:
    """A tiny origin server with the behaviours the tests need."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 200_000, content_type="image/png")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(50):
            await resp.write(b"\0" * 10_000)
        await resp.write_eof()
        return resp

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=IMAGE)

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=request.host)

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/host", host)
    return app


@pytest.fixture
async def origin(serve: ServeFn) -> TestServer:
    return await serve(image_app())


def url_of(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


# ---------------------------------------------------------------- our own media


async def test_own_media_url_is_read_from_storage_without_http(storage: LocalStorage) -> None:
    url = await storage.save("results/job-1.png", IMAGE, "image/png")
    got = await fetch(url, storage, session=NoNetworkSession())
    assert got == IMAGE


async def test_missing_own_media_is_a_clear_permanent_error(storage: LocalStorage) -> None:
    with pytest.raises(PermanentProviderError, match="not found in storage"):
        await fetch(f"{BASE_URL}/media/results/gone.png", storage, session=NoNetworkSession())


async def test_own_media_larger_than_the_limit_is_refused(storage: LocalStorage) -> None:
    url = await storage.save("big.png", b"x" * 2000, "image/png")
    with pytest.raises(PermanentProviderError, match="larger than"):
        await fetch(url, storage, max_bytes=1000, session=NoNetworkSession())


# ---------------------------------------------------------------- refusals before connecting


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://127.8.9.10:8080/x.png",
        "http://10.1.2.3/x.png",
        "http://172.16.0.1/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x.png",
        "http://0.0.0.0/x.png",
        "http://224.0.0.1/x.png",
        "http://240.0.0.1/x.png",
        "http://[::1]/x.png",
        "http://[::]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[::ffff:10.0.0.1]/x.png",
        "http://[::ffff:169.254.169.254]/x.png",
        "http://[fe80::1]/x.png",
        "http://[fc00::1]/x.png",
        "http://[2002:7f00:1::1]/x.png",
        "http://[64:ff9b::a9fe:a9fe]/x.png",
        "http://localhost/x.png",
        "https://localhost:8443/x.png",
    ],
)
async def test_private_and_reserved_addresses_are_refused(storage: LocalStorage, url: str) -> None:
    with pytest.raises(PermanentProviderError, match="private or reserved") as err:
        await fetch(url, storage, session=NoNetworkSession())
    assert err.value.retryable is False


@pytest.mark.parametrize("url", ["http://2130706433/x.png", "http://0x7f000001/x.png"])
async def test_addresses_in_disguise_are_refused_by_the_parser(
    storage: LocalStorage, url: str
) -> None:
    with pytest.raises(PermanentProviderError, match="not a valid IPv4 address") as err:
        await fetch(url, storage, session=NoNetworkSession())
    assert err.value.retryable is False


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x.png",
        "gopher://x/",
        "data:image/png;base64,AA",
        "/media/x.png",
    ],
)
async def test_non_http_schemes_are_refused(storage: LocalStorage, url: str) -> None:
    with pytest.raises(PermanentProviderError, match="http or https"):
        await fetch(url, storage, session=NoNetworkSession())


async def test_credentials_in_the_url_are_refused(storage: LocalStorage) -> None:
    with pytest.raises(PermanentProviderError, match="credentials"):
        await fetch("http://user:pw@127.0.0.1/x", storage, session=NoNetworkSession())


def test_public_addresses_are_allowed() -> None:
    for address in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]:
        assert not is_forbidden_address(ipaddress.ip_address(address)), address


# ---------------------------------------------------------------- real fetches on 127.0.0.1


async def test_allow_private_fetches_from_a_local_server(
    storage: LocalStorage, origin: TestServer
) -> None:
    assert await fetch(url_of(origin, "/image.png"), storage, allow_private=True) == IMAGE


async def test_original_host_header_is_sent_to_the_pinned_address(
    storage: LocalStorage, origin: TestServer
) -> None:
    url = f"http://localhost:{origin.port}/host"
    assert await fetch(url, storage, allow_private=True) == f"localhost:{origin.port}".encode()


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_size_limit_is_enforced(storage: LocalStorage, origin: TestServer, path: str) -> None:
    with pytest.raises(PermanentProviderError, match="larger than the limit of 100000 bytes"):
        await fetch(url_of(origin, path), storage, allow_private=True, max_bytes=100_000)


async def test_redirects_are_followed_and_each_hop_is_checked(
    storage: LocalStorage, origin: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Treat 127.0.0.1 (the test origin) as public so the redirect target is what gets judged.
    real = is_forbidden_address
    monkeypatch.setattr(
        guard_module,
        "is_forbidden_address",
        lambda ip: ip != ipaddress.ip_address("127.0.0.1") and real(ip),
    )
    ok = url_of(origin, "/redirect?to=/image.png")
    assert await fetch(ok, storage) == IMAGE
    for target in ["http://10.0.0.5/x.png", "http://169.254.169.254/", "http://[::1]:9/x"]:
        bad = url_of(origin, f"/redirect?to={target}")
        with pytest.raises(PermanentProviderError, match="private or reserved"):
            await fetch(bad, storage)
    with pytest.raises(PermanentProviderError, match="http or https"):
        await fetch(url_of(origin, "/redirect?to=file:///etc/passwd"), storage)


async def test_redirect_to_our_own_media_reads_storage(
    storage: LocalStorage, origin: TestServer
) -> None:
    own = await storage.save("r.png", b"own", "image/png")
    assert await fetch(url_of(origin, f"/redirect?to={own}"), storage, allow_private=True) == b"own"


async def test_redirect_loops_stop(storage: LocalStorage, origin: TestServer) -> None:
    with pytest.raises(PermanentProviderError, match="redirects"):
        await fetch(url_of(origin, "/loop"), storage, allow_private=True)


async def test_unreachable_host_gives_a_clear_permanent_error(storage: LocalStorage) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PermanentProviderError, match="source image unreachable"):
        await fetch(f"http://127.0.0.1:{port}/x.png", storage, allow_private=True)


async def test_4xx_is_permanent_and_5xx_is_retryable(
    storage: LocalStorage, origin: TestServer
) -> None:
    with pytest.raises(PermanentProviderError, match="HTTP 404"):
        await fetch(url_of(origin, "/status/404"), storage, allow_private=True)
    for code in (500, 503, 429):
        with pytest.raises(RetryableProviderError, match=f"HTTP {code}"):
            await fetch(url_of(origin, f"/status/{code}"), storage, allow_private=True)


async def test_slow_server_times_out_as_retryable(
    storage: LocalStorage, origin: TestServer
) -> None:
    with pytest.raises(RetryableProviderError, match=r"timed out after 0\.3s"):
        await fetch(url_of(origin, "/slow?token=secret"), storage, allow_private=True, timeout=0.3)


async def test_error_messages_do_not_leak_query_strings(
    storage: LocalStorage, origin: TestServer
) -> None:
    with pytest.raises(PermanentProviderError) as err:
        await fetch(
            url_of(origin, "/status/403?X-Signature=topsecret"), storage, allow_private=True
        )
    assert "topsecret" not in str(err.value)


# ---------------------------------------------------------------- TLS on the pinned address


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (also its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_origin(tmp_path: Path) -> AsyncIterator[tuple[TestServer, Path, list[str | None]]]:
    cert_path, key_path = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    server = TestServer(image_app(), host="127.0.0.1")
    await server.start_server(ssl=server_ctx)
    yield server, cert_path, names
    await server.close()


async def test_https_connects_to_the_checked_ip_but_verifies_the_hostname(
    storage: LocalStorage, tls_origin: tuple[TestServer, Path, list[str | None]]
) -> None:
    server, cert_path, names = tls_origin
    url = f"https://localhost:{server.port}/image.png"
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as http:
        assert await fetch(url, storage, allow_private=True, session=http) == IMAGE
    assert names and names[-1] == "localhost"  # SNI carries the name, not the pinned IP


async def test_untrusted_certificate_is_a_permanent_tls_error(
    storage: LocalStorage, tls_origin: tuple[TestServer, Path, list[str | None]]
) -> None:
    server, _, _ = tls_origin
    with pytest.raises(PermanentProviderError, match="TLS error"):
        await fetch(f"https://localhost:{server.port}/image.png", storage, allow_private=True)
