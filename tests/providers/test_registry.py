"""build_providers: every seed name local by default, a real adapter where its credential is set
(and the app's outbound session is given), local again with LOCAL_PROVIDERS_ONLY."""

from __future__ import annotations

import logging

import pytest

from app.jobs.types import JOB_TYPES
from app.providers import (
    ImageProvider,
    LocalImageProvider,
    LocalUpscaleProvider,
    LocalVideoProvider,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
    UpscaleProvider,
    VideoProvider,
    build_providers,
)
from app.settings import Settings


def test_default_settings_serve_seed_names_and_local_offline() -> None:
    providers = build_providers()
    assert set(providers.image) == {"local", "bfl"}
    assert set(providers.video) == {"local", "runway"}
    assert set(providers.upscale) == {"local", "upscale"}
    assert all(isinstance(p, LocalImageProvider) for p in providers.image.values())
    assert all(isinstance(p, LocalVideoProvider) for p in providers.video.values())
    assert all(isinstance(p, LocalUpscaleProvider) for p in providers.upscale.values())
    assert isinstance(providers.image["bfl"], ImageProvider)
    assert isinstance(providers.video["runway"], VideoProvider)
    assert isinstance(providers.upscale["upscale"], UpscaleProvider)


def test_unknown_provider_name_is_a_permanent_error() -> None:
    with pytest.raises(PermanentProviderError, match="unknown image provider 'midjourney'"):
        build_providers().image_provider("midjourney")
    assert isinstance(build_providers().video_provider("runway"), LocalVideoProvider)


async def test_credentials_select_the_real_adapters_and_nothing_else() -> None:
    from app.outbound import OutboundHttp
    from app.providers.bfl import BflProvider
    from app.providers.replicate import ReplicateProvider
    from app.providers.runway import RunwayProvider

    outbound = OutboundHttp()
    settings = Settings(
        app_env="test",
        bfl_api_key="bfl_k",
        runway_api_key="key_old_name",
        replicate_api_token="r8_t",
        replicate_upscale_version="0" * 64,
    )
    providers = build_providers(settings, outbound=outbound)
    assert isinstance(providers.remote["bfl"], BflProvider)
    assert isinstance(providers.remote["runway"], RunwayProvider)  # RUNWAY_API_KEY still read
    upscale = providers.remote["upscale"]
    assert isinstance(upscale, ReplicateProvider) and upscale.version == "0" * 64
    assert providers.remote_provider("local") is None
    only_bfl = build_providers(Settings(app_env="test", bfl_api_key="k"), outbound=outbound)
    assert set(only_bfl.remote) == {"bfl"}
    forced = Settings(app_env="test", bfl_api_key="k", local_providers_only=True)
    assert build_providers(forced, outbound=outbound).remote == {}
    await outbound.close()


def test_credential_without_an_outbound_session_keeps_local_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(app_env="test", bfl_api_key="sk-test", runway_api_key="")
    with caplog.at_level(logging.WARNING):
        providers = build_providers(settings)
    assert isinstance(providers.image["bfl"], LocalImageProvider)
    assert "BFL_API_KEY is set" in caplog.text
    assert "RUNWAY" not in caplog.text


def test_local_providers_only_asks_for_local_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(app_env="test", bfl_api_key="sk-test", local_providers_only=True)
    with caplog.at_level(logging.WARNING, logger="app.providers.registry"):
        forced = build_providers(settings)
    assert isinstance(forced.image["bfl"], LocalImageProvider)
    assert "BFL_API_KEY" not in caplog.text


def test_error_classes_say_whether_to_retry() -> None:
    assert RetryableProviderError("x").retryable is True
    assert PermanentProviderError("x").retryable is False
    assert ProviderError("x", retryable=False).retryable is False
    assert issubclass(PermanentProviderError, ProviderError)
    assert str(PermanentProviderError("clear message")) == "clear message"


def test_every_model_of_every_job_type_is_served_by_a_provider() -> None:
    providers = build_providers()
    by_kind = {
        "image-generation": providers.image,
        "batch-generation": providers.image,
        "video-generation": providers.video,
        "image-upscale": providers.upscale,
    }
    assert set(by_kind) == set(JOB_TYPES)
    for name, job_type in JOB_TYPES.items():
        assert set(job_type.models.values()) <= set(by_kind[name]), name
