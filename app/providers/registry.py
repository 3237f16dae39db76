"""Which backend serves each provider name: the one place that decides local versus real.

Job requests name a provider (the seed's ``bfl``, ``runway``, ``upscale``, or ``local``). With
default settings every name is served by the offline Pillow providers, so the seed's requests
work with no account and no network. A real adapter takes a name over when its credentials are
configured (``BFL_API_KEY``, ``RUNWAY_API_KEY``, ``REPLICATE_API_TOKEN``): the adapters arrive
in a later issue and plug in through :data:`ADAPTERS` without changing the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app.providers.base import ImageProvider, Providers, UpscaleProvider, VideoProvider
from app.providers.local import LocalImageProvider, LocalUpscaleProvider, LocalVideoProvider

__all__ = ["ADAPTERS", "Adapter", "ProviderKind", "build_providers"]

log = logging.getLogger(__name__)

ProviderKind = Literal["image", "video", "upscale"]
AdapterFactory = Callable[[object], ImageProvider | VideoProvider | UpscaleProvider]


@dataclass(frozen=True)
class Adapter:
    """A real provider: which job kind and name it serves, and the setting that enables it.

    ``factory`` builds the adapter from the settings object; ``None`` means not implemented
    yet, in which case the name keeps its local implementation (with a warning when the
    credential is set, so nobody believes the real service is being called).
    """

    kind: ProviderKind
    name: str
    credential: str
    factory: AdapterFactory | None = None


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("image", "bfl", "bfl_api_key"),
    Adapter("video", "runway", "runway_api_key"),
    Adapter("upscale", "upscale", "replicate_api_token"),
)
"""Real adapters by provider name. The seed's names and the settings that switch them on."""

LOCAL_NAME = "local"


def build_providers(settings: object | None = None) -> Providers:
    """All providers for the app, from its settings object (any object; attributes optional).

    Every seed name and ``local`` map to the local implementations unless a real adapter is
    both implemented and configured. ``settings.local_providers_only = True`` forces local
    providers even when credentials are present (handy for tests on a configured machine).
    """
    image = LocalImageProvider()
    video = LocalVideoProvider()
    upscale = LocalUpscaleProvider()
    providers = Providers(
        image={LOCAL_NAME: image},
        video={LOCAL_NAME: video},
        upscale={LOCAL_NAME: upscale},
    )
    local_only = bool(getattr(settings, "local_providers_only", False))
    for adapter in ADAPTERS:
        table: dict[str, object] = getattr(providers, adapter.kind)
        table[adapter.name] = {"image": image, "video": video, "upscale": upscale}[adapter.kind]
        if local_only or not _configured(settings, adapter.credential):
            continue
        if adapter.factory is None:
            log.warning(
                "%s is set but the %r %s adapter is not available yet; using the local provider",
                adapter.credential.upper(),
                adapter.name,
                adapter.kind,
            )
            continue
        table[adapter.name] = adapter.factory(settings)
    return providers


def _configured(settings: object | None, attribute: str) -> bool:
    value = getattr(settings, attribute, None)
    if value is None:
        return False
    secret = getattr(value, "get_secret_value", None)  # pydantic SecretStr
    if callable(secret):
        value = secret()
    return bool(value)
