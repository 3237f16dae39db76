"""What running each job type means: call the provider, store the result, report progress.

Handlers raise ``ProviderError`` (retryable or not) and know nothing about HTTP, queues or
attempts; the processor turns their outcome into a job transition and a response code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.fetch import fetch_source_image
from app.providers.base import Providers
from app.settings import Settings
from app.storage import Storage

Report = Callable[[int], Awaitable[None]]

_EXTENSIONS = {"image/webp": "webp", "image/gif": "gif", "video/mp4": "mp4", "image/png": "png"}


@dataclass(frozen=True, slots=True)
class HandlerContext:
    settings: Settings
    providers: Providers
    storage: Storage


async def _source(ctx: HandlerContext, url: str) -> bytes:
    settings = ctx.settings
    return await fetch_source_image(
        url,
        storage=ctx.storage,
        allow_private=settings.source_fetch_allow_private,
        max_bytes=settings.source_fetch_max_bytes,
        timeout=settings.source_fetch_timeout_seconds,
    )


async def run_image(
    ctx: HandlerContext, job_id: str, params: dict[str, Any], report: Report
) -> dict[str, Any]:
    provider = ctx.providers.image_provider(params["provider"])
    data = await provider.generate_image(
        prompt=params["prompt"],
        width=params["width"],
        height=params["height"],
        seed=params.get("seed"),
        model=params["model"],
    )
    await report(90)
    url = await ctx.storage.save(f"jobs/{job_id}/image.png", data, "image/png")
    return {"url": url}


async def run_video(
    ctx: HandlerContext, job_id: str, params: dict[str, Any], report: Report
) -> dict[str, Any]:
    provider = ctx.providers.video_provider(params["provider"])
    image = await _source(ctx, params["image_url"]) if params.get("image_url") else None
    if image is not None:
        await report(10)
    data, mime = await provider.generate_video(
        prompt=params["prompt"],
        duration_seconds=params["duration"],
        width=params["width"],
        height=params["height"],
        image=image,
        model=params["model"],
    )
    await report(90)
    extension = _EXTENSIONS.get(mime, "bin")
    url = await ctx.storage.save(f"jobs/{job_id}/video.{extension}", data, mime)
    return {"url": url, "mimeType": mime}


async def run_upscale(
    ctx: HandlerContext, job_id: str, params: dict[str, Any], report: Report
) -> dict[str, Any]:
    provider = ctx.providers.upscale_provider(params["provider"])
    source = await _source(ctx, params["image_url"])
    await report(10)
    data = await provider.upscale(image=source, scale=params["scale"], model=params["model"])
    await report(90)
    url = await ctx.storage.save(f"jobs/{job_id}/upscaled.png", data, "image/png")
    return {"url": url}


def chunk_prompts(params: dict[str, Any], index: int) -> list[tuple[int, str]]:
    """(position in the batch, prompt) for chunk ``index``."""
    size = params["batch_size"]
    prompts: list[str] = params["prompts"]
    start = index * size
    return list(enumerate(prompts[start : start + size], start=start))


async def run_batch_chunk(
    ctx: HandlerContext,
    job_id: str,
    params: dict[str, Any],
    index: int,
    report_done: Callable[[int], Awaitable[None]],
) -> list[str]:
    """Generate one chunk's images in order; ``report_done(n)`` after each one."""
    provider = ctx.providers.image_provider(params["provider"])
    seed = params.get("seed")
    urls: list[str] = []
    for position, prompt in chunk_prompts(params, index):
        data = await provider.generate_image(
            prompt=prompt,
            width=params["width"],
            height=params["height"],
            seed=None if seed is None else (seed + position) % 2**32,
            model=params["model"],
        )
        urls.append(await ctx.storage.save(f"jobs/{job_id}/{position:03d}.png", data, "image/png"))
        await report_done(len(urls))
    return urls


SingleHandler = Callable[[HandlerContext, str, dict[str, Any], Report], Awaitable[dict[str, Any]]]

SINGLE_HANDLERS: dict[str, SingleHandler] = {
    "image-generation": run_image,
    "video-generation": run_video,
    "image-upscale": run_upscale,
}
