"""Result storage: where finished images and clips live and the URLs users fetch them from.

Import from here. :class:`Storage` is the contract (``base``); :class:`LocalStorage` is the
folder served at ``/media/`` (``local``), :class:`GcsStorage` Google Cloud Storage with V4
signed URLs (``gcs``, ``signing``); :func:`open_storage` builds the one ``STORAGE_URL`` names
(``factory``); :func:`media_routes` answers the stable ``/media/`` references (``media``).
"""

from app.storage.base import (
    InvalidStorageKey,
    MediaPrefixes,
    MediaURLResolver,
    Storage,
    StorageError,
    StorageNotFound,
    content_type_for_key,
    extension_for,
    validate_key,
)
from app.storage.factory import open_storage
from app.storage.gcs import GcsStorage
from app.storage.local import LocalStorage
from app.storage.media import media_routes

__all__ = [
    "GcsStorage",
    "InvalidStorageKey",
    "LocalStorage",
    "MediaPrefixes",
    "MediaURLResolver",
    "Storage",
    "StorageError",
    "StorageNotFound",
    "content_type_for_key",
    "extension_for",
    "media_routes",
    "open_storage",
    "validate_key",
]
