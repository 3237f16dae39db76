"""Each provider declares what it accepts, and creation-time validation holds a request to the
declaration of the provider that will serve it: the local renderers' own limits (plus the
extra options of the real model they stand in for), or a real adapter's."""

from __future__ import annotations

from typing import Any

import pytest

from app.jobs.options import resolve_request
from app.jobs.schemas import (
    ImageGenerationRequest,
    ImageUpscaleRequest,
    JobRequest,
    VideoGenerationRequest,
)
from app.providers import bfl, replicate, runway
from app.providers.base import Providers
from app.providers.registry import build_providers

URL = "https://example.com/a.png"
FLUX = bfl.CAPABILITIES["flux-1.1-pro"]
GEN4 = runway.CAPABILITIES["runway-gen4"]
ESRGAN = replicate.CAPABILITIES["real-esrgan"]


def problems(model: type[JobRequest], body: dict[str, Any], caps: Any) -> dict[str, str]:
    request = model.model_validate(body)
    assert request.reconcile() == {}
    return resolve_request(request, caps)


def test_local_providers_declare_their_limits_and_stand_in_options() -> None:
    local = build_providers()
    caps = local.capabilities("image", "bfl", "flux-1.1-pro")
    assert caps is not None and caps.width == (64, 2048)
    assert (
        problems(ImageGenerationRequest, {"prompt": "x", "options": {"safetyTolerance": 3}}, caps)
        == {}
    )
    refused = problems(ImageGenerationRequest, {"prompt": "x", "options": {"steps": 3}}, caps)
    assert list(refused) == ["options.steps"] and "safetyTolerance" in refused["options.steps"]
    pure = local.capabilities("image", "local", "local")
    refused = problems(
        ImageGenerationRequest,
        {"prompt": "x", "model": "local", "options": {"safetyTolerance": 3}},
        pure,
    )
    assert list(refused) == ["options.safetyTolerance"]
    video = local.capabilities("video", "runway", "runway-gen4")
    body = {"prompt": "x", "imageUrls": [URL, URL], "options": {"duration": 1.5}}
    assert problems(VideoGenerationRequest, body, video) == {}


@pytest.mark.parametrize(
    ("model", "body", "caps", "field", "words"),
    [
        (
            ImageGenerationRequest,
            {"prompt": "x", "options": {"width": 64}},
            FLUX,
            "options.width",
            "256-1440",
        ),
        (ImageGenerationRequest, {"prompt": "x", "width": 300}, FLUX, "width", "multiple of 32"),
        (
            ImageGenerationRequest,
            {"prompt": "x", "options": {"safetyTolerance": 9}},
            FLUX,
            "options.safetyTolerance",
            "at most 6",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "x", "imageUrls": [URL, URL]},
            GEN4,
            "imageUrls",
            "at most 1",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "x", "options": {"duration": 1.5}},
            GEN4,
            "options.duration",
            "one of 2",
        ),
        (
            VideoGenerationRequest,
            {"prompt": "x", "options": {"ratio": "640:384"}},
            GEN4,
            "options.ratio",
            "1280:720",
        ),
        (VideoGenerationRequest, {"prompt": "y" * 1001}, GEN4, "prompt", "1000"),
        (
            ImageUpscaleRequest,
            {"imageUrl": URL, "options": {"faceEnhance": "yes"}},
            ESRGAN,
            "options.faceEnhance",
            "",
        ),
    ],
)
def test_real_adapters_declarations_are_enforced(
    model: type[JobRequest], body: dict[str, Any], caps: Any, field: str, words: str
) -> None:
    try:
        found = problems(model, body, caps)
    except Exception as error:  # a pydantic type error comes first, naming the same field
        assert field.split(".")[-1] in str(error)
        return
    assert field in found, found
    assert words in found[field]


def test_a_remote_adapter_serving_a_name_is_the_one_consulted() -> None:
    providers = Providers()
    providers.remote["bfl"] = object.__new__(bfl.BflProvider)
    caps = providers.capabilities("image", "bfl", "flux-1.1-pro")
    assert caps is bfl.CAPABILITIES["flux-1.1-pro"]
    assert providers.capabilities("image", "nobody", "flux-1.1-pro") is None
