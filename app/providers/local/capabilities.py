"""What the local providers accept, declared like the remote adapters' ``CAPABILITIES``.

The local renderers serve every model name while the real adapters are not in use (no
credentials, or ``LOCAL_PROVIDERS_ONLY``). Standing in for a real model, they accept the
extra options that model declares (BFL's ``safetyTolerance``, ``promptUpsampling``) and
validate them the same way, so a client behaves the same against development and
production; those options change nothing in a local render (it has no moderation and no
prompt rewriting). Their size and duration limits are the local renderer's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from app.providers import bfl, replicate, runway
from app.providers.capabilities import ModelCapabilities

__all__ = ["LOCAL_IMAGE", "LOCAL_UPSCALE", "LOCAL_VIDEO", "LocalCapabilities"]

_STANDARD = frozenset(
    {"width", "height", "seed", "outputFormat", "duration", "ratio", "faceEnhance", "scale"}
)

LOCAL_IMAGE = ModelCapabilities(
    model="local",
    provider="local",
    job_type="image-generation",
    provider_model="pillow",
    width=(64, 2048),
    height=(64, 2048),
    notes="Width, height, seed and outputFormat (png, jpeg, webp); deterministic per seed.",
)
LOCAL_VIDEO = ModelCapabilities(
    model="local",
    provider="local",
    job_type="video-generation",
    provider_model="pillow-webp",
    max_images=2,
    width=(64, 1280),
    height=(64, 1280),
    notes="An animated WebP of 1-10 s from the first image (to the second, where given).",
)
LOCAL_UPSCALE = ModelCapabilities(
    model="local",
    provider="local",
    job_type="image-upscale",
    provider_model="pillow-lanczos",
    accepts_text_only=False,
    requires_image=True,
    max_images=1,
    scales=(2, 4),
    notes="Lanczos resizing; faceEnhance adds an unsharp mask (no face model offline).",
)

_REAL: dict[str, ModelCapabilities] = {
    **bfl.CAPABILITIES,
    **runway.CAPABILITIES,
    **replicate.CAPABILITIES,
}


class LocalCapabilities(Mapping[str, ModelCapabilities]):
    """``model -> capabilities`` for a local provider: any model name, the local limits, and
    the extra options of the real model it stands in for."""

    def __init__(self, base: ModelCapabilities) -> None:
        self.base = base

    def __getitem__(self, model: str) -> ModelCapabilities:
        real = _REAL.get(model)
        if real is None or real.job_type != self.base.job_type:
            return self.base
        extras = tuple(o for o in real.options if o.name not in _STANDARD)
        return replace(self.base, model=f"{model} (served locally)", options=extras)

    def __iter__(self) -> Iterator[str]:
        return iter(
            [self.base.model, *(m for m, c in _REAL.items() if c.job_type == self.base.job_type)]
        )

    def __len__(self) -> int:
        return len(list(iter(self)))
