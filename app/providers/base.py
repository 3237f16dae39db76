"""The provider contract: what a job handler may ask of an AI backend, and how it fails.

Handlers only ever see these protocols and errors, so a local renderer, BFL, Runway or
Replicate can serve a job type without the task processor knowing which one it is. The one
decision a handler needs from a failure is "try again later or give up now", which is what
``ProviderError.retryable`` answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

__all__ = [
    "ImageProvider",
    "PermanentProviderError",
    "ProviderError",
    "Providers",
    "RetryableProviderError",
    "UpscaleProvider",
    "VideoProvider",
]


class ProviderError(Exception):
    """A provider could not produce a result.

    ``retryable`` tells the task processor whether to answer 5xx (so the queue retries with
    backoff) or to fail the job at once. The base class defaults to retryable because an
    unclassified failure is more often transient (a remote hiccup) and the app caps attempts
    anyway; raise :class:`PermanentProviderError` when retrying cannot help.
    """

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class RetryableProviderError(ProviderError):
    """A transient failure (remote 5xx, timeout, rate limit): the same request may succeed later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """A failure retrying cannot fix (bad input image, size out of bounds, private source URL)."""

    retryable = False


@runtime_checkable
class ImageProvider(Protocol):
    """Turns a prompt into one image."""

    async def generate_image(
        self, *, prompt: str, width: int, height: int, seed: int | None, model: str
    ) -> bytes:
        """Return PNG bytes of exactly ``width`` x ``height`` pixels.

        The same (prompt, seed, size, model) should give the same image where the backend
        allows it; ``seed=None`` lets the backend choose.
        """
        ...


@runtime_checkable
class VideoProvider(Protocol):
    """Turns a prompt, optionally anchored on a first image, into a short clip."""

    async def generate_video(
        self,
        *,
        prompt: str,
        duration_seconds: float,
        width: int,
        height: int,
        image: bytes | None,
        model: str,
    ) -> tuple[bytes, str]:
        """Return ``(data, mime_type)``: a ``duration_seconds`` clip of ``width`` x ``height``.

        The mime type travels with the bytes because backends differ (the local one makes
        ``image/webp`` animations, remote ones ``video/mp4``) and storage must serve it right.
        """
        ...


@runtime_checkable
class UpscaleProvider(Protocol):
    """Enlarges an existing image."""

    async def upscale(self, *, image: bytes, scale: int, model: str) -> bytes:
        """Return PNG bytes of the image enlarged ``scale`` times on each side."""
        ...


@dataclass
class Providers:
    """Every configured provider, keyed by the provider name a job request names.

    One object so the app receives all backends from a single factory
    (:func:`app.providers.registry.build_providers`) instead of reaching for globals.
    """

    image: dict[str, ImageProvider] = field(default_factory=dict)
    video: dict[str, VideoProvider] = field(default_factory=dict)
    upscale: dict[str, UpscaleProvider] = field(default_factory=dict)

    def image_provider(self, name: str) -> ImageProvider:
        """The image provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.image, name, "image")

    def video_provider(self, name: str) -> VideoProvider:
        """The video provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.video, name, "video")

    def upscale_provider(self, name: str) -> UpscaleProvider:
        """The upscale provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.upscale, name, "upscale")


_T = TypeVar("_T")


def _lookup(table: dict[str, _T], name: str, kind: str) -> _T:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise PermanentProviderError(
            f"unknown {kind} provider {name!r} (configured: {known})"
        ) from None
