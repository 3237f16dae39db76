"""The local folder: results as files under a root, served by the app at ``/media/<key>``.

Keys come from the app, but URLs come from users, so every key is validated against a strict
alphabet and every path is checked to stay under the root: no ``..``, no absolute paths, no
backslashes, no hidden files (a symlink planted in the root cannot lead out either).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from app.storage.base import (
    InvalidStorageKey,
    MediaPrefixes,
    StorageNotFound,
    content_type_for_key,
    validate_key,
)

__all__ = ["LocalStorage"]


class LocalStorage:
    """Files under ``root``, public at ``{base_url}/media/{key}``.

    ``base_url`` is the service's public address (``API_BASE_URL``); ``aliases`` are other
    base URLs that reach the same service (e.g. ``http://127.0.0.1:3000`` beside
    ``http://localhost:3000``) and are recognised by :meth:`key_for_url`.
    """

    remote_fetchable = False  # the service's own address may be private

    def __init__(self, root: Path | str, base_url: str, *, aliases: Iterable[str] = ()) -> None:
        self.root = Path(root).resolve()
        self.media = MediaPrefixes(base_url, tuple(aliases))
        self.base_url = self.media.base_url

    def url_for(self, key: str) -> str:
        """The public URL of ``key`` (whether or not it exists)."""
        return self.media.url_for(key)

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``, guaranteed to be under the root."""
        path = self.root.joinpath(*validate_key(key).split("/"))
        # The key alphabet already forbids escapes; this also defeats symlinks planted in root.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidStorageKey(f"storage key {key!r} resolves outside the storage root")
        return path

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """Write atomically (temporary file in the same folder, then ``os.replace``).

        The content type is served back by the ``/media/`` route. When the key's extension
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

    async def fetch_url(self, key: str) -> str:
        """The ``/media/`` URL: it does not expire, so there is nothing to sign."""
        return self.url_for(key)

    def key_for_url(self, url: str) -> str | None:
        """The key of one of our ``/media/`` URLs (query and fragment ignored), else ``None``."""
        return self.media.key_for_url(url)

    def locate(self, key: str) -> tuple[Path, str] | None:
        """(file, content type) of a stored object, or ``None`` (blocking: call in a thread)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        return path, self._content_type(key)

    async def close(self) -> None:
        """Nothing to release."""

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
