"""The storage contract shared by the local folder and Cloud Storage: keys, errors, protocol.

Results are addressed by **key** (``jobs/<id>/image.png``). What a job keeps in the database is
a stable *reference* URL, ``{API_BASE_URL}/media/<key>``, whichever backend holds the bytes:
it never expires, it maps back to its key (:meth:`Storage.key_for_url`), and the app's
``/media/`` route answers it (the local folder serves the file; Cloud Storage answers a redirect
to a freshly signed URL). What a user is shown is :meth:`Storage.fetch_url`, resolved when the
job is viewed: the same reference for the local folder, a V4 signed URL for Cloud Storage, so
the app never proxies the bytes of a file it can sign.
"""

from __future__ import annotations

import mimetypes
import os
import re
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

__all__ = [
    "MAX_KEY_LENGTH",
    "InvalidStorageKey",
    "MediaURLResolver",
    "MediaPrefixes",
    "Storage",
    "StorageError",
    "StorageNotFound",
    "content_type_for_key",
    "extension_for",
    "validate_key",
]

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_EXTRA_TYPES = {".webp": "image/webp", ".png": "image/png", ".mp4": "video/mp4"}


class StorageError(Exception):
    """Base of storage failures."""


class StorageNotFound(StorageError, KeyError):
    """No object is stored under the key (a ``KeyError``, so ``except KeyError`` works too)."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else "not found"


class InvalidStorageKey(StorageError, ValueError):
    """The key could escape the storage root or uses characters outside the allowed set."""


@runtime_checkable
class MediaURLResolver(Protocol):
    """A storage that can tell its own URLs apart from the rest of the web."""

    def key_for_url(self, url: str) -> str | None:
        """The key behind ``url`` if it is one of this storage's URLs, else ``None``."""
        ...


@runtime_checkable
class Storage(MediaURLResolver, Protocol):
    """Where results are kept. Implementations must be safe to call concurrently."""

    remote_fetchable: bool
    """Whether :meth:`fetch_url` gives a URL a third party on the internet can fetch (a signed
    Cloud Storage URL), so a provider may be handed it instead of the bytes. The local folder's
    URLs point at this service, which may well be on a private address: ``False``."""

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` (replacing any previous object) and return its stable
        reference URL (the one to keep in a job's result). A reader never sees a half-written
        object."""
        ...

    async def load(self, key: str) -> bytes:
        """The bytes stored under ``key``; raises :class:`StorageNotFound` (a ``KeyError``)."""
        ...

    async def fetch_url(self, key: str) -> str:
        """A URL the owner can fetch the object from right now (signed where the backend
        signs, valid for ``MEDIA_URL_TTL_SECONDS``)."""
        ...

    async def close(self) -> None:
        """Release connections; the storage is not used afterwards."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path of ``[A-Za-z0-9._-]`` segments.

    Refused: empty keys, absolute paths, backslashes, empty, ``.`` or ``..`` segments, and
    segments starting with a dot (hidden files, including our own temporary files).
    """
    if not isinstance(key, str) or not key:
        raise InvalidStorageKey("storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidStorageKey(f"storage key is longer than {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidStorageKey(f"invalid storage key {key!r}")
    return key


def content_type_for_key(key: str) -> str:
    """The content type implied by a key's extension (``application/octet-stream`` if none)."""
    ext = os.path.splitext(key)[1].lower()
    return _EXTRA_TYPES.get(ext) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def extension_for(content_type: str) -> str:
    """The usual file extension for a content type (with the dot), for building keys."""
    mime = content_type.split(";", 1)[0].strip().lower()
    for ext, known in _EXTRA_TYPES.items():
        if known == mime:
            return ext
    return mimetypes.guess_extension(mime) or ".bin"


class MediaPrefixes:
    """The ``{base}/media/`` prefixes of this service (its public base URL and aliases such as
    ``localhost`` beside ``127.0.0.1``): builds reference URLs and maps them back to keys."""

    def __init__(self, base_url: str, aliases: tuple[str, ...] | list[str] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self._prefixes = [_prefix_of(u) for u in (base_url, *aliases)]

    def url_for(self, key: str) -> str:
        """The reference URL of ``key`` (whether or not it exists)."""
        return f"{self.base_url}/media/{validate_key(key)}"

    def key_for_url(self, url: str) -> str | None:
        """The key of one of our ``/media/`` URLs (query and fragment ignored), else ``None``.

        A URL on our prefix whose key is invalid (``..``, encoded slashes...) is not ours.
        """
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        origin = (parts.scheme.lower(), netloc_of(parts.scheme, parts.hostname, parts.port))
        for prefix_origin, prefix_path in self._prefixes:
            if origin != prefix_origin or not parts.path.startswith(prefix_path):
                continue
            return key_or_none(unquote(parts.path[len(prefix_path) :]))
        return None


def key_or_none(key: str) -> str | None:
    try:
        return validate_key(key)
    except InvalidStorageKey:
        return None


def netloc_of(scheme: str, host: str | None, port: int | None) -> str:
    """``host[:port]`` lower-cased, without the scheme's default port."""
    default = {"http": 80, "https": 443}.get(scheme.lower())
    host = (host or "").lower()
    return host if port in (None, default) else f"{host}:{port}"


def _prefix_of(base_url: str) -> tuple[tuple[str, str], str]:
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must be an absolute http(s) URL, got {base_url!r}")
    origin = (parts.scheme.lower(), netloc_of(parts.scheme, parts.hostname, parts.port))
    return origin, f"{parts.path}/media/"
