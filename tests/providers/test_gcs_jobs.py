"""Jobs through the app with Cloud Storage: results land in the bucket, views carry signed URLs
(signed when shown, so the database keeps only stable references), the ``/media/`` reference
redirects, and a signed result URL works as the source of the next job."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from app.storage import GcsStorage
from tests.app.conftest import (  # noqa: F401  (fixtures)
    Service,
    StartService,
    database,
    db_kind,
    start_service,
)
from tests.providers.fakes.gcs import FakeGcsServer
from tests.providers.gcs_support import ServiceAccountKey, signed_query


async def _service(
    start_service: StartService,  # noqa: F811
    gcs_server: FakeGcsServer,
    bucket: str,
    sa_key: ServiceAccountKey,
    tmp_path: Path,
) -> Service:
    return await start_service(
        storage_url=f"gs://{bucket}/media",
        storage_emulator_host=gcs_server.url,
        storage_signing_key_file=sa_key.write(tmp_path),
        media_url_ttl_seconds=900,
    )


async def test_image_job_result_is_in_the_bucket_and_shown_signed(
    start_service: StartService,  # noqa: F811
    gcs_server: FakeGcsServer,
    bucket: str,
    sa_key: ServiceAccountKey,
    tmp_path: Path,
) -> None:
    service = await _service(start_service, gcs_server, bucket, sa_key, tmp_path)
    job = await service.create(
        "u1", "image-generation", {"prompt": "a fox", "width": 96, "height": 64}
    )
    await service.run_until_idle()
    view = await service.job("u1", job["jobId"])
    assert view["status"] == "COMPLETED"
    url = view["resultUrl"]
    assert urlsplit(url).path == f"/{bucket}/media/jobs/{job['jobId']}/image.png"
    assert signed_query(url)["X-Goog-Expires"] == "900"
    # What the database keeps is the stable reference, not the signed URL.
    stored = await service.store.get_user_job("u1", job["jobId"])
    assert stored is not None and stored.result is not None
    reference = stored.result["url"]
    assert reference == f"{service.base_url}/media/jobs/{job['jobId']}/image.png"
    # The live update of the completion carries a signed URL too.
    completed = [u.payload for u in service.events.updates if u.payload["status"] == "COMPLETED"]
    assert "X-Goog-Signature=" in (completed[-1]["resultUrl"] or "")
    async with service.http.get(url) as response:
        assert response.status == 200
        image = Image.open(io.BytesIO(await response.read()))
        assert image.size == (96, 64)
    async with service.http.get(reference, allow_redirects=False) as response:
        assert response.status == 302
        assert "X-Goog-Signature=" in response.headers["Location"]
    listed_status, listed = await service.request("GET", "/api/jobs", user="u1")
    assert listed_status == 200
    assert "X-Goog-Signature=" in listed["jobs"][0]["resultUrl"]


async def test_signed_result_url_is_the_source_of_an_upscale(
    start_service: StartService,  # noqa: F811
    gcs_server: FakeGcsServer,
    bucket: str,
    sa_key: ServiceAccountKey,
    tmp_path: Path,
) -> None:
    """The signed URL is on 127.0.0.1, which a source fetch refuses: it completes only
    because the app recognises its own object and reads it from the bucket by key."""
    service = await _service(start_service, gcs_server, bucket, sa_key, tmp_path)
    first = await service.create(
        "u2", "image-generation", {"prompt": "a cat", "width": 64, "height": 64}
    )
    await service.run_until_idle()
    signed = (await service.job("u2", first["jobId"]))["resultUrl"]
    up = await service.create("u2", "image-upscale", {"imageUrl": signed, "scale": 2})
    await service.run_until_idle()
    view = await service.job("u2", up["jobId"])
    assert view["status"] == "COMPLETED", view
    async with service.http.get(view["resultUrl"]) as response:
        assert Image.open(io.BytesIO(await response.read())).size == (128, 128)
    from app.services import SERVICES

    assert isinstance(service.app[SERVICES].storage, GcsStorage)
