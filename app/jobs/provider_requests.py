"""What a remote provider is asked for a job: the adapter's request built from the job's saved
params, its source images (fetched through the SSRF guard, or handed over as signed URLs of our
own results), and the webhook it may call back.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from app.jobs.records import JobRecord
from app.jobs.types import JobType
from app.providers.base import (
    ErrorCode,
    ImageTaskRequest,
    PermanentProviderError,
    SourceImage,
    UpscaleTaskRequest,
    VideoTaskRequest,
    Webhook,
)
from app.providers.fetch import fetch_source_image
from app.providers.guard import FetchGuard
from app.providers.sources import source_for_provider
from app.services import Services

__all__ = ["provider_request", "webhook_secret"]


def webhook_secret(services: Services, job_id: str) -> str | None:
    """The secret BFL gets with a job's task (``webhook_secret``) and must prove it knows when
    it calls back: an HMAC of the job id under ``PROVIDER_WEBHOOK_KEY`` (else the internal
    key), so nothing is stored. ``None`` without a key: no BFL webhooks then."""
    settings = services.settings
    key = settings.provider_webhook_key or settings.internal_api_key
    if key is None or not key.get_secret_value():
        return None
    material = key.get_secret_value().encode()
    return hmac.new(material, f"bfl-webhook:{job_id}".encode(), hashlib.sha256).hexdigest()


async def provider_request(services: Services, job_type: JobType[Any], job: JobRecord) -> Any:
    """The adapter's request, from the job's saved params (source images fetched or signed,
    as each provider documents)."""
    params = job.params
    # Standard options are merged into the top-level fields at creation; what is left
    # under ``options`` (unset ones are None) is for the provider to read.
    given = params.get("options") or {}
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    images = _image_urls(params)
    webhook = _webhook(services, job)
    if job_type.name == "image-generation":
        return ImageTaskRequest(
            model=params["model"],
            prompt=params["prompt"],
            width=int(params.get("width") or options.get("width") or 1024),
            height=int(params.get("height") or options.get("height") or 1024),
            seed=params.get("seed"),
            images=tuple([await _source(services, url) for url in images]),
            options=options,
            webhook=webhook,
        )
    if job_type.name == "video-generation":
        duration = params.get("duration") or options.get("duration") or 5
        return VideoTaskRequest(
            model=params["model"],
            prompt=params.get("prompt") or "",
            duration_seconds=round(float(duration)),
            width=int(params.get("width") or 1280),
            height=int(params.get("height") or 720),
            image=await _source(services, images[0]) if images else None,
            seed=params.get("seed"),
            options=options,
        )
    if not images:
        raise PermanentProviderError("imageUrl is required", code=ErrorCode.INVALID_REQUEST)
    return UpscaleTaskRequest(
        model=params["model"],
        image=await _source(services, images[0]),
        scale=int(params.get("scale") or options.get("scale") or 2),
        face_enhance=bool(params.get("face_enhance") or options.get("faceEnhance", False)),
        webhook=webhook,
    )


def _webhook(services: Services, job: JobRecord) -> Webhook | None:
    settings = services.settings
    if not settings.provider_webhooks:
        return None
    provider = str(job.params.get("provider"))
    if provider == "bfl":
        secret = webhook_secret(services, job.id)
        url = f"{settings.base_url}/internal/providers/bfl/webhook"
        return None if secret is None else Webhook(url, secret)
    if provider == "upscale" and settings.replicate_webhook_secret is not None:
        return Webhook(f"{settings.base_url}/internal/providers/replicate/webhook")
    return None


async def _source(services: Services, url: str) -> SourceImage:
    settings = services.settings
    storage = services.storage

    async def fetch(target: str) -> bytes:
        return await fetch_source_image(
            target,
            storage=storage,
            guard=FetchGuard.from_settings(settings),
            max_bytes=settings.source_fetch_max_bytes,
            timeout=settings.source_fetch_timeout_seconds,
        )

    return await source_for_provider(url, storage, fetch)


def _image_urls(params: dict[str, Any]) -> list[str]:
    """The job's source images: ``imageUrls`` (``image_urls`` saved), else ``imageUrl``."""
    urls = params.get("image_urls") or params.get("imageUrls") or []
    single = params.get("image_url") or params.get("imageUrl")
    if not urls and single:
        urls = [single]
    return [str(url) for url in urls]
