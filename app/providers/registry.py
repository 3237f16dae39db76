"""Which backend serves each provider name: the one place that decides local versus real.

Job requests name a provider (the seed's ``bfl``, ``runway``, ``upscale``, or ``local``). A
seed name is served by its real adapter when that provider's credential is set, and by the
offline Pillow provider otherwise (so the seed's requests work with no account and no
network):

=========== ================================= ==========================================
name        credential                        base URL (default)
=========== ================================= ==========================================
``bfl``     ``BFL_API_KEY``                   ``BFL_API_URL`` (``https://api.bfl.ai``)
``runway``  ``RUNWAYML_API_SECRET``           ``RUNWAYML_BASE_URL``
            (or the older ``RUNWAY_API_KEY``) (``https://api.dev.runwayml.com``)
``upscale`` ``REPLICATE_API_TOKEN``           ``REPLICATE_BASE_URL``
                                              (``https://api.replicate.com``), at version
                                              ``REPLICATE_UPSCALE_VERSION``
=========== ================================= ==========================================

``LOCAL_PROVIDERS_ONLY`` keeps every name local whatever is set (tests, demos). ``local`` is
always the offline renderer. Which backend serves each name is logged once at start-up, never
with the key.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.base import Providers, RemoteTaskProvider
from app.providers.bfl import BflProvider
from app.providers.guard import FetchGuard
from app.providers.local import LocalImageProvider, LocalUpscaleProvider, LocalVideoProvider
from app.providers.replicate import ReplicateProvider
from app.providers.runway import RunwayProvider
from app.settings import Settings
from daygen_queue import Clock, SystemClock

__all__ = ["REMOTE_NAMES", "build_providers", "remote_concurrency"]

log = logging.getLogger(__name__)

LOCAL_NAME = "local"
REMOTE_NAMES = {"image-generation": "bfl", "video-generation": "runway", "image-upscale": "upscale"}
"""The seed provider name a remote adapter may serve, per job type (batches use ``bfl``)."""


def build_providers(
    settings: Settings | None = None,
    *,
    outbound: OutboundHttp | None = None,
    clock: Clock | None = None,
) -> Providers:
    """All providers for the app: ``local`` and each seed name.

    Real adapters need ``settings`` with their credential and ``outbound`` (the app's shared
    session, which the app closes); without ``outbound`` every name stays local, and a
    credential that is set is warned about so nobody believes the real service is called.
    """
    image, video, upscale = LocalImageProvider(), LocalVideoProvider(), LocalUpscaleProvider()
    providers = Providers(
        image={LOCAL_NAME: image, "bfl": image},
        video={LOCAL_NAME: video, "runway": video},
        upscale={LOCAL_NAME: upscale, "upscale": upscale},
    )
    if settings is None or settings.local_providers_only:
        return providers
    clock = clock or SystemClock()
    remote = _remote_adapters(settings, outbound, clock)
    providers.remote.update(remote)
    for name in ("bfl", "runway", "upscale"):
        adapter = remote.get(name)
        if adapter is not None:
            log.info("provider %r served by the %s adapter", name, adapter.name)
    return providers


def _remote_adapters(
    settings: Settings, outbound: OutboundHttp | None, clock: Clock
) -> dict[str, RemoteTaskProvider[Any]]:
    adapters: dict[str, RemoteTaskProvider[Any]] = {}
    credentials = [
        ("BFL_API_KEY", "bfl", settings.bfl_api_key),
        ("RUNWAYML_API_SECRET", "runway", settings.runway_secret),
        ("REPLICATE_API_TOKEN", "upscale", settings.replicate_api_token),
    ]
    for variable, name, secret in credentials:
        if not _is_set(secret):
            continue
        assert secret is not None
        if outbound is None:
            log.warning(
                "%s is set but no outbound session was given; %r stays local", variable, name
            )
            continue
        if name == "bfl":
            adapters[name] = BflProvider(
                api_key=secret, base_url=settings.bfl_api_url, outbound=outbound, clock=clock
            )
        elif name == "runway":
            adapters[name] = RunwayProvider(
                api_secret=secret,
                base_url=settings.runwayml_base_url,
                outbound=outbound,
                clock=clock,
            )
        else:
            adapters[name] = ReplicateProvider(
                api_token=secret,
                base_url=settings.replicate_base_url,
                outbound=outbound,
                clock=clock,
                version=settings.replicate_upscale_version,
            )
    guard = FetchGuard.from_settings(settings)
    for adapter in adapters.values():
        # Result links are chosen by the provider: downloaded under the same private-address
        # refusal as source images (FETCH_ALLOW_HOSTS exempts a local fake).
        adapter.http.guard = guard  # type: ignore[attr-defined]
    return adapters


def remote_concurrency(settings: Settings, providers: Providers, job_type: str) -> int | None:
    """The provider's concurrency setting for ``job_type``'s queue, when a remote adapter
    serves that type (it then caps the queue's ``max_concurrent_dispatches``)."""
    name = REMOTE_NAMES.get(job_type, "bfl" if job_type == "batch-generation" else None)
    if name is None or providers.remote_provider(name) is None:
        return None
    return {
        "bfl": settings.bfl_max_concurrency,
        "runway": settings.runwayml_max_concurrency,
        "upscale": settings.replicate_max_concurrency,
    }[name]


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())
