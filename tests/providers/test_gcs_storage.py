"""Cloud Storage against a real fake-gcs-server: uploads, downloads, signed URLs fetched over
HTTP, their lifetime read from the URL (the emulator checks neither signature nor expiry), the
``/media/`` redirect, and our own URLs recognised as keys."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from google.oauth2.credentials import Credentials as TokenCredentials

from app.outbound import OutboundHttp
from app.providers.fetch import fetch_source_image
from app.settings import Settings
from app.storage import GcsStorage, MediaPrefixes, Storage, StorageNotFound, media_routes
from app.storage.factory import open_storage
from app.storage.signing import IamSignBlobIdentity, KeyFileIdentity, UrlSigner
from tests.providers.conftest import NoNetworkSession, ServeFn, png_bytes
from tests.providers.fakes.gcs import FakeGcsServer
from tests.providers.gcs_support import (
    APP_BASE,
    SIGNER_EMAIL,
    ServiceAccountKey,
    make_service_account_key,
    signed_query,
)


async def test_upload_then_download_and_metadata(gcs: GcsStorage) -> None:
    image = png_bytes(8, 8)
    reference = await gcs.save("jobs/j1/image.png", image, "image/png")
    assert reference == f"{APP_BASE}/media/jobs/j1/image.png"  # stable: kept in the database
    assert await gcs.load("jobs/j1/image.png") == image
    meta = await gcs.metadata("jobs/j1/image.png")
    assert meta["name"] == "results/jobs/j1/image.png"  # under the configured prefix
    assert meta["contentType"] == "image/png"
    assert int(meta["size"]) == len(image)
    assert isinstance(gcs, Storage)


async def test_missing_object_is_storage_not_found(gcs: GcsStorage) -> None:
    with pytest.raises(StorageNotFound):
        await gcs.load("jobs/none/image.png")


async def test_large_and_concurrent_uploads(gcs: GcsStorage) -> None:
    big = bytes(range(256)) * (7 * 4096)  # 7 MiB: gcloud-aio-storage's resumable upload
    blobs = {f"many/{n}.bin": bytes([n]) * 20_000 for n in range(16)}
    await asyncio.gather(
        gcs.save("big.bin", big, "application/octet-stream"),
        *(gcs.save(k, v, "application/octet-stream") for k, v in blobs.items()),
    )
    assert await gcs.load("big.bin") == big
    loaded = await asyncio.gather(*(gcs.load(k) for k in blobs))
    assert loaded == list(blobs.values())


async def test_signed_url_is_fetchable_and_states_its_lifetime(
    gcs: GcsStorage, gcs_server: FakeGcsServer
) -> None:
    image = png_bytes(4, 4)
    await gcs.save("jobs/j2/image.png", image, "image/png")
    before = datetime.now(UTC).replace(microsecond=0)
    url = await gcs.fetch_url("jobs/j2/image.png")
    after = datetime.now(UTC)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == gcs_server.url
    assert parts.path == f"/{gcs.bucket}/results/jobs/j2/image.png"
    query = signed_query(url)
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    signed_at = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= after
    assert int(query["X-Goog-Expires"]) == 15 * 60  # the configured TTL, not a default
    credential = query["X-Goog-Credential"].split("/")
    assert credential[0] == SIGNER_EMAIL
    assert credential[1:] == [signed_at.strftime("%Y%m%d"), "auto", "storage", "goog4_request"]
    assert query["X-Goog-SignedHeaders"] == "host"
    assert len(bytes.fromhex(query["X-Goog-Signature"])) == 256  # an RSA-2048 signature
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.read() == image


async def test_signed_urls_are_reused_for_half_their_lifetime(
    gcs_server: FakeGcsServer, bucket: str, sa_key: ServiceAccountKey, outbound: OutboundHttp
) -> None:
    now = [1_000_000.0]
    signer = UrlSigner(
        KeyFileIdentity.from_info(sa_key.info),
        ttl=timedelta(seconds=600),
        endpoint=gcs_server.url,
        now=lambda: now[0],
    )
    first = await signer.sign(bucket, "a.png")
    now[0] += 299
    assert await signer.sign(bucket, "a.png") == first
    assert await signer.sign(bucket, "b.png") != first
    now[0] += 2  # 301 s old: under half of its 600 s left, so it is signed again
    again = await signer.sign(bucket, "a.png")
    assert signed_query(again)["X-Goog-Expires"] == "600"
    assert again is not first


async def test_iam_sign_blob_path_signs_through_the_iam_credentials_api(
    gcs_server: FakeGcsServer, bucket: str
) -> None:
    """Cloud Run has no private key: ``google.auth.iam.Signer`` posts the string to sign to
    IAM ``signBlob``. Its transport here answers as IAM does, with a key only it holds."""
    iam_key = make_service_account_key("runtime@proj.iam.gserviceaccount.com")
    calls: list[dict[str, Any]] = []

    class Response:
        status = 200

        def __init__(self, data: bytes) -> None:
            self.data = data
            self.headers: dict[str, str] = {}

    def transport(url: str, method: str = "GET", body: Any = None, headers: Any = None,
                  **_: Any) -> Response:  # fmt: skip
        calls.append({"url": url, "method": method, "headers": dict(headers or {})})
        payload = base64.b64decode(json.loads(body)["payload"])
        calls[-1]["payload"] = payload
        signature = iam_key.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        blob = {"keyId": "k", "signedBlob": base64.b64encode(signature).decode()}
        return Response(json.dumps(blob).encode())

    identity = IamSignBlobIdentity(
        "runtime@proj.iam.gserviceaccount.com",
        credentials=TokenCredentials(token="ya29.runtime-token"),
        request=transport,  # type: ignore[arg-type]
    )
    signer = UrlSigner(identity, ttl=timedelta(hours=1), endpoint=gcs_server.url)
    url = await signer.sign(bucket, "results/x.png")
    [call] = calls
    assert call["method"] == "POST"
    assert call["url"] == (
        "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
        "runtime@proj.iam.gserviceaccount.com:signBlob"
    )
    assert call["headers"]["authorization"] == "Bearer ya29.runtime-token"
    query = signed_query(url)
    assert query["X-Goog-Credential"].startswith("runtime@proj.iam.gserviceaccount.com/")
    assert query["X-Goog-Expires"] == "3600"
    # The signature in the URL is IAM's over the V4 string to sign for this very URL.
    string_to_sign = call["payload"].decode()
    assert string_to_sign.startswith(f"GOOG4-RSA-SHA256\n{query['X-Goog-Date']}\n")
    iam_key.private_key.public_key().verify(
        bytes.fromhex(query["X-Goog-Signature"]),
        call["payload"],
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_key_for_url_knows_our_media_and_object_urls_only(gcs: GcsStorage) -> None:
    base = gcs.api_root
    b = gcs.bucket
    assert gcs.key_for_url(f"{APP_BASE}/media/jobs/j/image.png") == "jobs/j/image.png"
    assert gcs.key_for_url(f"{base}/{b}/results/jobs/j/image.png?X-Goog-Signature=ab") == (
        "jobs/j/image.png"
    )
    assert gcs.key_for_url(f"gs://{b}/results/jobs/j/image.png") == "jobs/j/image.png"
    for other in [
        f"{base}/other-bucket/results/jobs/j/image.png",
        f"{base}/{b}/elsewhere/jobs/j/image.png",  # outside our prefix
        f"{base}/{b}/results/..%2f..%2fsecret",
        f"https://evil.test/{b}/results/jobs/j/image.png",
        "gs://other/results/a.png",
        "https://storage.googleapis.com/" + f"{b}/results/a.png",  # not our endpoint here
    ]:
        assert gcs.key_for_url(other) is None, other


async def test_media_route_redirects_to_a_signed_url(gcs: GcsStorage, serve: ServeFn) -> None:
    image = png_bytes(3, 3)
    await gcs.save("jobs/j3/image.png", image, "image/png")
    app = web.Application()
    app.add_routes(media_routes(gcs))
    server = await serve(app)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            server.make_url("/media/jobs/j3/image.png"), allow_redirects=False
        ) as response:
            assert response.status == 302
            assert response.headers["Cache-Control"] == "no-store"
            location = response.headers["Location"]
            assert "X-Goog-Signature=" in location
            assert await response.read() == b""  # the bytes never pass through the app
        async with http.get(server.make_url("/media/jobs/j3/image.png")) as response:
            assert response.status == 200
            assert await response.read() == image
        async with http.get(server.make_url("/media/.hidden")) as response:
            assert response.status == 404


async def test_own_signed_url_as_source_image_is_read_by_key(gcs: GcsStorage) -> None:
    """A signed URL of ours (on a loopback address, which a fetch would refuse) is read from
    the bucket: no HTTP fetch at all."""
    image = png_bytes(6, 6)
    await gcs.save("jobs/j4/image.png", image, "image/png")
    url = await gcs.fetch_url("jobs/j4/image.png")
    data = await fetch_source_image(
        url,
        storage=gcs,
        session=NoNetworkSession(),  # type: ignore[arg-type]
    )
    assert data == image


async def test_open_storage_reads_storage_url_and_the_emulator_host(
    gcs_server: FakeGcsServer, bucket: str, sa_key: ServiceAccountKey, tmp_path: Any
) -> None:
    settings = Settings(
        app_env="test",
        api_base_url="http://127.0.0.1:3999",
        storage_url=f"gs://{bucket}/deploy-1",
        storage_emulator_host=gcs_server.url.removeprefix("http://"),  # as Google's clients
        storage_signing_key_file=sa_key.write(tmp_path),
        media_url_ttl_seconds=120,
    )
    http = OutboundHttp()
    storage = open_storage(settings, http, aliases=["http://localhost:3999"])
    try:
        assert isinstance(storage, GcsStorage)
        assert await storage.save("k.png", b"png", "image/png") == (
            "http://127.0.0.1:3999/media/k.png"
        )
        url = await storage.fetch_url("k.png")
        assert urlsplit(url).path == f"/{bucket}/deploy-1/k.png"
        assert signed_query(url)["X-Goog-Expires"] == "120"
        assert storage.key_for_url("http://localhost:3999/media/k.png") == "k.png"
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            assert await response.read() == b"png"
    finally:
        await storage.close()
        await http.close()


def test_emulator_without_a_key_signs_with_an_ephemeral_key(bucket: str) -> None:
    settings = Settings(
        app_env="test", storage_url=f"gs://{bucket}", storage_emulator_host="http://127.0.0.1:9"
    )
    storage = open_storage(settings, OutboundHttp(), aliases=[])
    assert isinstance(storage, GcsStorage)
    assert storage.prefix == ""
    assert storage.signer.identity.signer()[1] == "daygen-dev@emulator.invalid"


def test_storage_url_wins_over_storage_dir(tmp_path: Any) -> None:
    both = Settings(app_env="test", storage_url="gs://b/p", storage_dir=tmp_path)
    assert both.storage_location == "gs://b/p"
    assert Settings(app_env="test", storage_dir=tmp_path).storage_location == f"file://{tmp_path}"
    assert Settings(app_env="test").storage_location == "file://./var/media"
    with pytest.raises(ValueError, match="STORAGE_URL"):
        Settings(app_env="test", storage_url="s3://bucket")


def test_media_prefixes_build_and_parse_references() -> None:
    media = MediaPrefixes("http://127.0.0.1:3000", ["http://localhost:3000"])
    assert media.url_for("a/b.png") == "http://127.0.0.1:3000/media/a/b.png"
    assert media.key_for_url("http://localhost:3000/media/a/b.png") == "a/b.png"


async def test_a_signing_failure_degrades_instead_of_failing(
    gcs: GcsStorage, serve: ServeFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IAM unreachable: a job view keeps the reference, the redirect answers 503."""
    from datetime import UTC, datetime

    from app.jobs.records import JobRecord
    from app.jobs.views import signed_job_view

    async def broken(bucket: str, name: str) -> str:
        raise RuntimeError("iamcredentials unreachable")

    monkeypatch.setattr(gcs.signer, "sign", broken)
    reference = await gcs.save("jobs/j9/image.png", b"x", "image/png")
    now = datetime.now(UTC)
    job = JobRecord("j9", "u", "image-generation", "COMPLETED", 100, {}, {"url": reference},
                    None, 1, 1, now, now, now, now)  # fmt: skip
    assert (await signed_job_view(job, gcs))["resultUrl"] == reference
    app = web.Application()
    app.add_routes(media_routes(gcs))
    server = await serve(app)
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/media/jobs/j9/image.png")) as response,
    ):
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
