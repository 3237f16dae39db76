"""Result storage: where finished images and clips live and the URL users download them from.

The job flow only needs "save these bytes under a key, give me a public URL" and "read the
bytes back" (to upscale or animate an earlier result), so that is the whole :class:`Storage`
contract; a cloud bucket adapter can replace :class:`LocalStorage` without touching handlers.

:class:`LocalStorage` keeps files under a folder and the app serves them at ``/media/<key>``
(:func:`media_routes`). Keys come from the app, but URLs come from users, so every key is
validated against a strict alphabet and every path is checked to stay under the root: no
``..``, no absolute paths, no backslashes, no hidden files.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from aiohttp import web

__all__ = [
    "InvalidStorageKey",
    "LocalStorage",
    "MediaURLResolver",
    "Storage",
    "StorageError",
    "StorageNotFound",
    "content_type_for_key",
    "extension_for",
    "media_routes",
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
class Storage(Protocol):
    """Where results are kept. Implementations must be safe to call concurrently."""

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` (replacing any previous object) and return its absolute
        public URL. A reader never sees a half-written object."""
        ...

    async def load(self, key: str) -> bytes:
        """The bytes stored under ``key``; raises :class:`StorageNotFound` (a ``KeyError``)."""
        ...


@runtime_checkable
class MediaURLResolver(Protocol):
    """A storage that can tell its own public URLs apart from the rest of the web."""

    def key_for_url(self, url: str) -> str | None:
        """The key behind ``url`` if it is one of this storage's URLs, else ``None``."""
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


class LocalStorage:
    """Files under ``root``, public at ``{base_url}/media/{key}``.

    ``base_url`` is the service's public address (``API_BASE_URL``); ``aliases`` are other
    base URLs that reach the same service (e.g. ``http://127.0.0.1:3000`` beside
    ``http://localhost:3000``) and are recognised by :meth:`key_for_url`.
    """

    def __init__(self, root: Path | str, base_url: str, *, aliases: Iterable[str] = ()) -> None:
        self.root = Path(root).resolve()
        self.base_url = base_url.rstrip("/")
        self._prefixes = [_media_prefix(u) for u in (base_url, *aliases)]

    def url_for(self, key: str) -> str:
        """The public URL of ``key`` (whether or not it exists)."""
        return f"{self.base_url}/media/{validate_key(key)}"

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``, guaranteed to be under the root."""
        path = self.root.joinpath(*validate_key(key).split("/"))
        # The key alphabet already forbids escapes; this also defeats symlinks planted in root.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidStorageKey(f"storage key {key!r} resolves outside the storage root")
        return path

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """Write atomically (temporary file in the same folder, then ``os.replace``).

        The content type is served back by :func:`media_routes`. When the key's extension
        already implies it (``.png`` for ``image/png``) nothing more is stored; otherwise it is
        kept in a hidden sidecar file beside the object.
        """
        validate_key(key)
        await asyncio.to_thread(self._write, key, bytes(data), content_type)
        return self.url_for(key)

    async def content_type(self, key: str) -> str:
        """The content type ``key`` was saved with (guessed from the extension if unknown)."""
        validate_key(key)
        return await asyncio.to_thread(self._content_type, key)

    async def load(self, key: str) -> bytes:
        """Read the object; :class:`StorageNotFound` if there is none."""
        validate_key(key)
        return await asyncio.to_thread(self._read, key)

    def key_for_url(self, url: str) -> str | None:
        """The key of one of our ``/media/`` URLs (query and fragment ignored), else ``None``.

        A URL on our prefix whose key is invalid (``..``, encoded slashes...) is not ours.
        """
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        origin = (parts.scheme.lower(), _netloc(parts.scheme, parts.hostname, parts.port))
        for prefix_origin, prefix_path in self._prefixes:
            if origin != prefix_origin or not parts.path.startswith(prefix_path):
                continue
            key = unquote(parts.path[len(prefix_path) :])
            try:
                return validate_key(key)
            except InvalidStorageKey:
                return None
        return None

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = _sidecar(path)
        mime = content_type.strip()
        if mime and mime.split(";", 1)[0].lower() != content_type_for_key(key):
            _atomic_write(sidecar, mime.encode())
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)
        _atomic_write(path, data)

    def _content_type(self, key: str) -> str:
        try:
            return _sidecar(self.path_for(key)).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return content_type_for_key(key)

    def _read(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StorageNotFound(key) from None


def _sidecar(path: Path) -> Path:
    """Where a non-obvious content type is kept (hidden, so no key can name it)."""
    return path.with_name(f".{path.name}.content-type")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _netloc(scheme: str, host: str | None, port: int | None) -> str:
    default = {"http": 80, "https": 443}.get(scheme.lower())
    host = (host or "").lower()
    return host if port in (None, default) else f"{host}:{port}"


def _media_prefix(base_url: str) -> tuple[tuple[str, str], str]:
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must be an absolute http(s) URL, got {base_url!r}")
    origin = (parts.scheme.lower(), _netloc(parts.scheme, parts.hostname, parts.port))
    return origin, f"{parts.path}/media/"


def media_routes(storage: LocalStorage) -> list[web.RouteDef]:
    """``GET``/``HEAD /media/{key}``: serve stored results, with a JSON 404 for unknown keys.

    Served with the content type of the key's extension, ``nosniff`` (results are derived from
    user input and must never be interpreted as HTML), and a cache lifetime.
    """

    async def serve_media(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            validate_key(key)
            found = await asyncio.to_thread(_locate, storage, key)
        except InvalidStorageKey:
            return _not_found(key)
        if found is None:
            return _not_found(key)
        path, content_type = found
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "public, max-age=3600",
            },
        )

    return [web.get("/media/{key:.+}", serve_media)]


def _locate(storage: LocalStorage, key: str) -> tuple[Path, str] | None:
    path = storage.path_for(key)
    if not path.is_file():
        return None
    return path, storage._content_type(key)


def _not_found(key: str) -> web.Response:
    return web.json_response(
        {"error": "not_found", "message": f"no media named {key!r}"}, status=404
    )
