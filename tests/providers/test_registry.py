"""build_providers serves every seed provider name locally unless a real adapter takes over."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

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
    registry,
)


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


def test_credential_without_an_adapter_keeps_local_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = SimpleNamespace(bfl_api_key=SecretStr("sk-test"), runway_api_key="")
    with caplog.at_level(logging.WARNING):
        providers = build_providers(settings)
    assert isinstance(providers.image["bfl"], LocalImageProvider)
    assert "BFL_API_KEY is set" in caplog.text
    assert "RUNWAY" not in caplog.text


def test_configured_adapter_takes_over_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeBfl:
        def __init__(self, settings: object) -> None:
            self.settings = settings

        async def generate_image(
            self, *, prompt: str, width: int, height: int, seed: int | None, model: str
        ) -> bytes:
            return b""

    adapters = tuple(
        registry.Adapter("image", "bfl", "bfl_api_key", FakeBfl) if a.name == "bfl" else a
        for a in registry.ADAPTERS
    )
    monkeypatch.setattr(registry, "ADAPTERS", adapters)
    settings = SimpleNamespace(bfl_api_key="sk-test")
    providers = build_providers(settings)
    assert isinstance(providers.image["bfl"], FakeBfl)
    assert isinstance(providers.image["local"], LocalImageProvider)
    forced = build_providers(SimpleNamespace(bfl_api_key="sk-test", local_providers_only=True))
    assert isinstance(forced.image["bfl"], LocalImageProvider)


def test_error_classes_say_whether_to_retry() -> None:
    assert RetryableProviderError("x").retryable is True
    assert PermanentProviderError("x").retryable is False
    assert ProviderError("x", retryable=False).retryable is False
    assert issubclass(PermanentProviderError, ProviderError)
    assert str(PermanentProviderError("clear message")) == "clear message"
