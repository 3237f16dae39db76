"""AI providers behind one contract, with offline Pillow implementations.

Import from here: the errors a handler classifies, the protocols a backend implements, the
:class:`Providers` table, and :func:`build_providers`, the one factory the app calls.
``app.providers.fetch`` reads a job's source image (safely: the URL comes from a user).

The remote adapters (``bfl``, ``runway``, ``replicate``, on the shared ``http`` helper) speak
the submit / poll / download / cancel protocol of ``base.RemoteTaskProvider``; the registry
serves a seed name with its adapter when that provider's credential is set (``Providers.remote``),
and ``app.jobs.provider_polling`` runs them on the queue.
"""

from app.providers.base import (
    ImageProvider,
    PermanentProviderError,
    ProviderError,
    Providers,
    RetryableProviderError,
    UpscaleProvider,
    VideoProvider,
)
from app.providers.local import LocalImageProvider, LocalUpscaleProvider, LocalVideoProvider
from app.providers.registry import build_providers

__all__ = [
    "ImageProvider",
    "LocalImageProvider",
    "LocalUpscaleProvider",
    "LocalVideoProvider",
    "PermanentProviderError",
    "ProviderError",
    "Providers",
    "RetryableProviderError",
    "UpscaleProvider",
    "VideoProvider",
    "build_providers",
]
