"""``source_for_provider``: how a job's source image reaches a remote provider.

* One of our own results (a ``/media/`` reference or one of our signed URLs): when the storage
  signs URLs the internet can fetch (Cloud Storage), the provider gets a fresh signed URL;
  otherwise (the local folder, whose URLs point at this service, maybe on a private address)
  it gets the bytes, which each adapter sends inline as that provider documents (BFL: base64;
  Runway and Replicate: a ``data:`` URI).
* Any other ``https`` URL is handed over as it is: the provider fetches it from its own
  network, so no request of ours goes to a user-chosen address.
* Anything else (plain ``http``) is fetched here with the SSRF-safe fetcher and sent inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from app.providers.base import PermanentProviderError, SourceImage
from app.storage import Storage, StorageNotFound, content_type_for_key

__all__ = ["source_for_provider"]

Fetch = Callable[[str], Awaitable[bytes]]


async def source_for_provider(url: str, storage: Storage, fetch: Fetch) -> SourceImage:
    """The ``SourceImage`` for ``url``; ``fetch`` reads a foreign ``http`` URL safely
    (``app.providers.fetch.fetch_source_image`` with the job's limits)."""
    key = storage.key_for_url(url)
    if key is not None:
        if storage.remote_fetchable:
            return SourceImage(
                url=await storage.fetch_url(key), content_type=content_type_for_key(key)
            )
        try:
            data = await storage.load(key)
        except StorageNotFound:
            raise PermanentProviderError(f"source image not found in storage: {key}") from None
        return SourceImage(data=data, content_type=content_type_for_key(key))
    if urlsplit(url).scheme == "https":
        return SourceImage(url=url)
    return SourceImage(data=await fetch(url))
