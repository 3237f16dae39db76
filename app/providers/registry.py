"""Which backend serves each provider name: the one place that decides local versus real.

Job requests name a provider (the seed's ``bfl``, ``runway``, ``upscale``, or ``local``). Until
the real adapters land, every name is served by the offline Pillow providers, so the seed's
requests work with no account and no network. A credential that is set anyway
(``BFL_API_KEY``, ``RUNWAY_API_KEY``, ``REPLICATE_API_TOKEN``) is announced with a warning, so
nobody believes the real service is being called.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from app.providers.base import Providers
from app.providers.local import LocalImageProvider, LocalUpscaleProvider, LocalVideoProvider
from app.settings import Settings

__all__ = ["build_providers"]

log = logging.getLogger(__name__)

LOCAL_NAME = "local"


def build_providers(settings: Settings | None = None) -> Providers:
    """All providers for the app: ``local`` and each seed name, on the local implementations.

    With ``settings``, a credential of a real provider that is set is warned about (unless
    ``LOCAL_PROVIDERS_ONLY``, which asks for exactly this).
    """
    image, video, upscale = LocalImageProvider(), LocalVideoProvider(), LocalUpscaleProvider()
    providers = Providers(
        image={LOCAL_NAME: image, "bfl": image},
        video={LOCAL_NAME: video, "runway": video},
        upscale={LOCAL_NAME: upscale, "upscale": upscale},
    )
    if settings is not None and not settings.local_providers_only:
        credentials = [
            ("BFL_API_KEY", "bfl", "image", settings.bfl_api_key),
            ("RUNWAY_API_KEY", "runway", "video", settings.runway_api_key),
            ("REPLICATE_API_TOKEN", "upscale", "upscale", settings.replicate_api_token),
        ]
        for variable, name, kind, secret in credentials:
            if _is_set(secret):
                log.warning(
                    "%s is set but the %r %s adapter is not available yet; using the local "
                    "provider",
                    variable,
                    name,
                    kind,
                )
    return providers


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())
