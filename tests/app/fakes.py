"""Providers that fail on purpose, wrapped around the real local ones."""

from __future__ import annotations

import asyncio
from typing import Any

from app.providers.base import ImageProvider, ProviderError, Providers
from app.providers.registry import build_providers


class ScriptedImages:
    """Raises the scripted errors on the first calls, then delegates to the real provider.
    ``gate``, when set, holds every call until it opens (to overlap deliveries)."""

    def __init__(self, inner: ImageProvider, errors: list[ProviderError] | None = None) -> None:
        self.inner = inner
        self.errors = list(errors or [])
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def generate_image(self, **kwargs: Any) -> bytes:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return await self.inner.generate_image(**kwargs)


def with_images(images: ScriptedImages) -> Providers:
    """The real local providers, except every image provider name is ``images``."""
    providers = build_providers(None)
    for name in list(providers.image):
        providers.image[name] = images
    return providers


def scripted(errors: list[ProviderError] | None = None) -> ScriptedImages:
    return ScriptedImages(build_providers(None).image["local"], errors)
