"""How source images reach providers, and the per-model options data."""

from __future__ import annotations

import pytest

from app.providers.base import PermanentProviderError, SourceImage
from app.providers.bfl import CAPABILITIES as BFL
from app.providers.capabilities import check_options
from app.providers.replicate import CAPABILITIES as REPLICATE
from app.providers.runway import CAPABILITIES as RUNWAY
from app.providers.sources import source_for_provider
from app.storage import GcsStorage, LocalStorage
from tests.providers.conftest import BASE_URL, png_bytes


async def no_fetch(url: str) -> bytes:
    raise AssertionError(f"fetched {url}")


async def test_own_local_result_goes_as_bytes(storage: LocalStorage) -> None:
    image = png_bytes(4, 4)
    reference = await storage.save("jobs/a/image.png", image, "image/png")
    source = await source_for_provider(reference, storage, no_fetch)
    assert source == SourceImage(data=image, content_type="image/png")
    with pytest.raises(PermanentProviderError):
        await source_for_provider(f"{BASE_URL}/media/jobs/none.png", storage, no_fetch)


async def test_own_cloud_result_goes_as_a_signed_url(gcs: GcsStorage) -> None:
    reference = await gcs.save("jobs/b/image.png", png_bytes(4, 4), "image/png")
    source = await source_for_provider(reference, gcs, no_fetch)
    assert source.data is None and source.url is not None
    assert "X-Goog-Signature=" in source.url
    assert gcs.key_for_url(source.url) == "jobs/b/image.png"


async def test_foreign_urls(storage: LocalStorage) -> None:
    https = await source_for_provider("https://images.example/cat.png", storage, no_fetch)
    assert https == SourceImage(url="https://images.example/cat.png")

    async def fetch(url: str) -> bytes:
        return b"fetched:" + url.encode()

    plain = await source_for_provider("http://images.example/cat.png", storage, fetch)
    assert plain.data == b"fetched:http://images.example/cat.png"


def test_source_image_is_a_url_or_bytes() -> None:
    with pytest.raises(ValueError):
        SourceImage()
    with pytest.raises(ValueError):
        SourceImage(url="https://x", data=b"x")


def test_options_are_checked_against_the_model_data() -> None:
    assert check_options(BFL["flux-1.1-pro"], {"safetyTolerance": 3}) == {}
    problems = check_options(
        BFL["flux-1.1-pro"], {"safetyTolerance": 9, "promptUpsampling": "yes", "steps": 4}
    )
    assert problems == {
        "options.safetyTolerance": "must be at most 6",
        "options.promptUpsampling": "must be true or false",
        "options.steps": "not an option of flux-1.1-pro (accepted: safetyTolerance, "
        "promptUpsampling)",
    }
    assert check_options(RUNWAY["runway-gen4"], {"ratio": "1920:1080"})["options.ratio"].startswith(
        "must be one of 1280:720"
    )
    assert check_options(REPLICATE["real-esrgan"], {"faceEnhance": True}) == {}
    assert REPLICATE["real-esrgan"].requires_image and REPLICATE["real-esrgan"].scales == (2, 4)
    assert BFL["flux-1.1-pro"].size_multiple_of == 32 and BFL["flux-1.1-pro"].width == (256, 1440)
    assert RUNWAY["runway-gen4"].durations == tuple(range(2, 11))


def test_retry_after_in_seconds_milliseconds_or_a_date() -> None:
    from app.providers.http import parse_retry_after

    assert parse_retry_after({"Retry-After": "7"}) == 7
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": "Fri, 15 Jan 2027 08:00:30 GMT"}, now=now) == 30.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_provider_settings_use_the_sdk_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_new")
    monkeypatch.setenv("RUNWAYML_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("REPLICATE_UPSCALE_VERSION", "a" * 64)
    settings = Settings(app_env="test")
    assert settings.runway_secret is not None
    assert settings.runway_secret.get_secret_value() == "key_new"
    assert settings.runwayml_base_url == "http://127.0.0.1:9/"
    assert settings.replicate_upscale_version == "a" * 64
    assert (settings.bfl_api_url, settings.bfl_max_concurrency) == ("https://api.bfl.ai", 24)
    monkeypatch.delenv("RUNWAYML_API_SECRET")
    monkeypatch.setenv("RUNWAY_API_KEY", "key_old")
    old = Settings(app_env="test").runway_secret
    assert old is not None and old.get_secret_value() == "key_old"
    monkeypatch.setenv("REPLICATE_UPSCALE_VERSION", "not-a-version")
    with pytest.raises(ValueError, match="replicate_upscale_version"):
        Settings(app_env="test")
