"""Google Cloud Storage: results as objects under ``gs://BUCKET/PREFIX``.

Uploads and downloads go through ``gcloud-aio-storage`` on the app's shared aiohttp session
(native asyncio; ``google-cloud-storage`` is synchronous). Signed URLs come from
:mod:`app.storage.signing` (``google-cloud-storage``'s V4 signer), because
``gcloud-aio-storage``'s own ``get_signed_url`` builds ``https://http://...`` under
``STORAGE_EMULATOR_HOST``.

With ``emulator_host`` (``STORAGE_EMULATOR_HOST``, as Google's clients read it) requests go
to the emulator without credentials or TLS; otherwise to ``https://storage.googleapis.com``
with Application Default Credentials (the metadata server on Cloud Run).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from gcloud.aio.storage import Storage as AioStorage

from app.outbound import OutboundHttp
from app.storage.base import (
    MediaPrefixes,
    StorageError,
    StorageNotFound,
    key_or_none,
    netloc_of,
    validate_key,
)
from app.storage.signing import GOOGLE_STORAGE_ENDPOINT, UrlSigner, emulator_endpoint

__all__ = ["GcsStorage", "parse_gs_url"]

log = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 60
GOOGLE_JSON_API = "https://www.googleapis.com"  # the JSON API's root (uploads, downloads)


def parse_gs_url(url: str) -> tuple[str, str]:
    """``gs://BUCKET/PREFIX`` -> (bucket, prefix ending in ``/`` or empty)."""
    parts = urlsplit(url)
    if parts.scheme != "gs" or not parts.netloc:
        raise ValueError(f"a Cloud Storage URL looks like gs://BUCKET/PREFIX, not {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        validate_key(prefix)
        prefix += "/"
    return parts.netloc, prefix


class GcsStorage:
    """Objects ``{prefix}{key}`` in ``bucket``; references are the app's ``/media/`` URLs."""

    remote_fetchable = True  # signed URLs work from anywhere on the internet

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        http: OutboundHttp,
        media: MediaPrefixes,
        signer: UrlSigner,
        emulator_host: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.media = media
        self.signer = signer
        self._http = http
        self.api_root = emulator_endpoint(emulator_host) if emulator_host else None
        self._client: AioStorage | None = None
        # Object URLs users may hand back: path style on the XML endpoint, or the emulator.
        endpoint = urlsplit(self.api_root or GOOGLE_STORAGE_ENDPOINT)
        self._object_origin = (
            endpoint.scheme,
            netloc_of(endpoint.scheme, endpoint.hostname, endpoint.port),
        )
        signed = urlsplit(signer.endpoint)
        self._signed_origin = (
            signed.scheme,
            netloc_of(signed.scheme, signed.hostname, signed.port),
        )

    def object_name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """One upload (``gcloud-aio-storage`` switches to a resumable upload past 5 MB)."""
        name = self.object_name(key)
        try:
            await self._storage().upload(
                self.bucket,
                name,
                bytes(data),
                content_type=content_type,
                timeout=_TIMEOUT_SECONDS,
            )
        except aiohttp.ClientResponseError as error:
            raise StorageError(
                f"Cloud Storage refused the upload of {name}: HTTP {error.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StorageError(f"Cloud Storage upload of {name} failed: {error!r}") from None
        return self.media.url_for(key)

    async def load(self, key: str) -> bytes:
        name = self.object_name(key)
        try:
            data: bytes = await self._storage().download(
                self.bucket, name, timeout=_TIMEOUT_SECONDS
            )
        except aiohttp.ClientResponseError as error:
            if error.status == 404:
                raise StorageNotFound(key) from None
            raise StorageError(
                f"Cloud Storage refused the download of {name}: HTTP {error.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StorageError(f"Cloud Storage download of {name} failed: {error!r}") from None
        return data

    async def metadata(self, key: str) -> dict[str, Any]:
        """The object's resource (``size``, ``contentType``, ``md5Hash``...)."""
        name = self.object_name(key)
        try:
            meta: dict[str, Any] = await self._storage().download_metadata(
                self.bucket, name, timeout=_TIMEOUT_SECONDS
            )
        except aiohttp.ClientResponseError as error:
            if error.status == 404:
                raise StorageNotFound(key) from None
            raise StorageError(f"Cloud Storage metadata of {name}: HTTP {error.status}") from None
        return meta

    async def fetch_url(self, key: str) -> str:
        """A V4 signed URL, valid for ``MEDIA_URL_TTL_SECONDS``."""
        return await self.signer.sign(self.bucket, self.object_name(key))

    def key_for_url(self, url: str) -> str | None:
        """The key behind one of our ``/media/`` URLs, a URL of one of our objects (signed or
        not, path style: ``https://storage.googleapis.com/BUCKET/PREFIX/KEY``), or
        ``gs://BUCKET/PREFIX/KEY``; ``None`` for anything else."""
        key = self.media.key_for_url(url)
        if key is not None:
            return key
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme == "gs":
            if parts.netloc != self.bucket:
                return None
            return self._key_of(unquote(parts.path.lstrip("/")))
        origin = (parts.scheme.lower(), netloc_of(parts.scheme, parts.hostname, parts.port))
        if origin not in (self._object_origin, self._signed_origin):
            return None
        bucket_path = f"/{self.bucket}/"
        if not parts.path.startswith(bucket_path):
            return None
        return self._key_of(unquote(parts.path[len(bucket_path) :]))

    async def close(self) -> None:
        """The session is the app's (``OutboundHttp``): nothing of ours to close."""
        self._client = None

    def _key_of(self, name: str) -> str | None:
        if not name.startswith(self.prefix):
            return None
        return key_or_none(name[len(self.prefix) :])

    def _storage(self) -> AioStorage:
        if self._client is None or self._client.session.session is not self._http.session:
            # Both given explicitly, so an environment variable cannot redirect us unseen.
            session: Any = self._http.session  # gcloud-aio types it as its Session alias
            self._client = AioStorage(
                session=session,
                api_root=self.api_root or GOOGLE_JSON_API,
                api_is_dev=self.api_root is not None,
            )
        return self._client
