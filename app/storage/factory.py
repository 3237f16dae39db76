"""``open_storage``: the storage ``STORAGE_URL`` names, built from the settings.

``file://PATH`` (relative paths are relative to the working directory) is the local folder;
``gs://BUCKET/PREFIX`` is Cloud Storage, signing with ``STORAGE_SIGNING_KEY_FILE`` when set,
an ephemeral key under ``STORAGE_EMULATOR_HOST`` (emulators check no signature), and otherwise
Application Default Credentials: a key file if they are one, IAM ``signBlob`` on Cloud Run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.outbound import OutboundHttp
from app.settings import Settings
from app.storage.base import MediaPrefixes, Storage
from app.storage.gcs import GcsStorage, parse_gs_url
from app.storage.local import LocalStorage
from app.storage.signing import (
    GOOGLE_STORAGE_ENDPOINT,
    EphemeralIdentity,
    IamSignBlobIdentity,
    KeyFileIdentity,
    SigningIdentity,
    UrlSigner,
    emulator_endpoint,
)

__all__ = ["local_path_of", "open_storage"]

log = logging.getLogger(__name__)


def local_path_of(url: str) -> Path:
    """``file://./var/media`` -> ``var/media``; ``file:///srv/media`` -> ``/srv/media``."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise ValueError(f"not a file:// URL: {url!r}")
    path = unquote(parts.netloc + parts.path)  # file://./x puts "." in the netloc
    if not path:
        raise ValueError(f"file:// URL without a path: {url!r}")
    return Path(path)


def open_storage(settings: Settings, http: OutboundHttp, *, aliases: list[str]) -> Storage:
    """The configured storage; ``aliases`` are other base URLs of this service."""
    url = settings.storage_location
    media = MediaPrefixes(settings.base_url, aliases)
    if url.startswith("file:"):
        return LocalStorage(local_path_of(url), settings.base_url, aliases=aliases)
    bucket, prefix = parse_gs_url(url)
    emulator = settings.storage_emulator_host
    endpoint = emulator_endpoint(emulator) if emulator else GOOGLE_STORAGE_ENDPOINT
    signer = UrlSigner(
        signing_identity(settings),
        ttl=timedelta(seconds=settings.media_url_ttl_seconds),
        endpoint=endpoint,
    )
    return GcsStorage(bucket, prefix, http=http, media=media, signer=signer, emulator_host=emulator)


def signing_identity(settings: Settings) -> SigningIdentity:
    if settings.storage_signing_key_file is not None:
        return KeyFileIdentity.from_file(settings.storage_signing_key_file)
    if settings.storage_emulator_host:
        log.info("signing emulator URLs with an ephemeral key (emulators verify no signature)")
        return EphemeralIdentity()
    return IamSignBlobIdentity(settings.storage_signing_service_account)
