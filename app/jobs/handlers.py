"""What running each job type means: call the provider, store the result, report progress.

Handlers raise ``ProviderError`` (retryable or not) and know nothing about HTTP, queues or
attempts; the processor turns their outcome into a job transition and a response code. Each
one is named by its ``JobType`` record (``app.jobs.types``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.jobs.schemas import chunk_ranges
from app.providers.base import Providers
from app.providers.fetch import fetch_source_image
from app.providers.guard import FetchGuard
from app.providers.local.image import reencode
from app.settings import Settings
from app.storage import Storage, extension_for

Report = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What every handler may use."""

    settings: Settings
    providers: Providers
    storage: Storage


@dataclass(frozen=True, slots=True)
class HandlerTask:
    """One run of a handler: a whole job, or one chunk of a job made of chunks."""

    job_id: str
    params: dict[str, Any]
    """The job's request, as validated and saved (``JobRequest.model_dump``)."""
    chunk: int | None
    """The chunk to run (None for a whole job)."""
    report: Report
    """For a whole job: its progress in percent. For a chunk: how many of its results are
    done."""


Handler = Callable[[HandlerContext, HandlerTask], Awaitable[dict[str, Any]]]
"""Runs a task to its result: ``{"url": ...}`` for a whole job, ``{"urls": [...]}`` for a
chunk (in prompt order)."""


async def _source(ctx: HandlerContext, url: str) -> bytes:
    settings = ctx.settings
    return await fetch_source_image(
        url,
        storage=ctx.storage,
        guard=FetchGuard.from_settings(settings),
        max_bytes=settings.source_fetch_max_bytes,
        timeout=settings.source_fetch_timeout_seconds,
    )


async def run_image(ctx: HandlerContext, task: HandlerTask) -> dict[str, Any]:
    params = task.params
    provider = ctx.providers.image_provider(params["provider"])
    data = await provider.generate_image(
        prompt=params["prompt"],
        width=params["width"],
        height=params["height"],
        seed=params.get("seed"),
        model=params["model"],
    )
    await task.report(90)
    data, mime, extension = reencode(data, params.get("output_format", "png"))
    url = await ctx.storage.save(f"jobs/{task.job_id}/image{extension}", data, mime)
    return {"url": url}


async def run_video(ctx: HandlerContext, task: HandlerTask) -> dict[str, Any]:
    params = task.params
    provider = ctx.providers.video_provider(params["provider"])
    urls: list[str] = params.get("image_urls") or (
        [params["image_url"]] if params.get("image_url") else []
    )
    images = [await _source(ctx, url) for url in urls]
    if images:
        await task.report(10)
    data, mime = await provider.generate_video(
        prompt=params["prompt"],
        duration_seconds=params["duration"],
        width=params["width"],
        height=params["height"],
        image=images[0] if images else None,
        model=params["model"],
        seed=params.get("seed"),
        last_image=images[1] if len(images) > 1 else None,
    )
    await task.report(90)
    url = await ctx.storage.save(f"jobs/{task.job_id}/video{extension_for(mime)}", data, mime)
    return {"url": url, "mimeType": mime}


async def run_upscale(ctx: HandlerContext, task: HandlerTask) -> dict[str, Any]:
    params = task.params
    provider = ctx.providers.upscale_provider(params["provider"])
    source = await _source(ctx, params["image_url"])
    await task.report(10)
    data = await provider.upscale(
        image=source,
        scale=params["scale"],
        model=params["model"],
        face_enhance=bool(params.get("face_enhance", False)),
    )
    await task.report(90)
    url = await ctx.storage.save(f"jobs/{task.job_id}/upscaled.png", data, "image/png")
    return {"url": url}


def chunk_prompts(params: dict[str, Any], index: int) -> list[tuple[int, str]]:
    """(position in the batch, prompt) for chunk ``index``."""
    prompts: list[str] = params["prompts"]
    positions = chunk_ranges(len(prompts), params["batch_size"])[index]
    return [(position, prompts[position]) for position in positions]


async def run_batch_chunk(ctx: HandlerContext, task: HandlerTask) -> dict[str, Any]:
    """Generate one chunk's images in order, reporting each one done."""
    assert task.chunk is not None  # a job made of chunks runs chunk by chunk
    params = task.params
    provider = ctx.providers.image_provider(params["provider"])
    seed = params.get("seed")
    urls: list[str] = []
    for position, prompt in chunk_prompts(params, task.chunk):
        data = await provider.generate_image(
            prompt=prompt,
            width=params["width"],
            height=params["height"],
            seed=None if seed is None else (seed + position) % 2**32,
            model=params["model"],
        )
        data, mime, extension = reencode(data, params.get("output_format", "png"))
        key = f"jobs/{task.job_id}/{position:03d}{extension}"
        urls.append(await ctx.storage.save(key, data, mime))
        await task.report(len(urls))
    return {"urls": urls}
