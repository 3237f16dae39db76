"""What each remote model accepts, as data: for request validation to refuse with a 422 naming
the field before anything is submitted (and charged), instead of the provider refusing later.

Each adapter module exports ``CAPABILITIES: dict[str, ModelCapabilities]`` keyed by the model
name a job request uses (``flux-1.1-pro``, ``runway-gen4``, ``real-esrgan``). The values are
the providers' documented limits; nothing here calls a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ModelCapabilities", "OptionSpec", "check_options"]

OptionKind = Literal["int", "float", "bool", "enum", "string"]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option a model takes (under the request's ``options``, camelCase as the API)."""

    name: str
    kind: OptionKind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    choices: tuple[Any, ...] = ()
    default: Any = None
    max_length: int | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or ``None``."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "enum":
            shown = ", ".join(map(str, self.choices))
            return None if value in self.choices else f"must be one of {shown}"
        if self.kind == "string":
            if not isinstance(value, str):
                return "must be a string"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be at most {self.max_length} characters"
            return None
        numeric = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return "must be an integer" if self.kind == "int" else "must be a number"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        if self.multiple_of is not None and int(value) % self.multiple_of:
            return f"must be a multiple of {self.multiple_of}"
        return None


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """A model as a job request names it, and what its provider accepts for it."""

    model: str
    provider: str  # the adapter's name: "bfl", "runway", "replicate"
    job_type: str  # "image-generation", "video-generation", "image-upscale"
    provider_model: str  # the provider's own id (endpoint, model, or pinned version)
    accepts_text_only: bool = True
    max_images: int = 0  # source images it can take (imageUrls)
    requires_image: bool = False
    width: tuple[int, int] | None = None  # (min, max) pixels, where the request sets sizes
    height: tuple[int, int] | None = None
    size_multiple_of: int | None = None
    durations: tuple[int, ...] = ()  # accepted clip lengths in seconds
    scales: tuple[int, ...] = ()
    max_prompt_length: int | None = None
    options: tuple[OptionSpec, ...] = ()
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> OptionSpec | None:
        return next((o for o in self.options if o.name == name), None)


def check_options(caps: ModelCapabilities, options: Mapping[str, Any]) -> dict[str, str]:
    """``{"options.<name>": problem}`` for every unknown or unacceptable option."""
    problems: dict[str, str] = {}
    for name, value in options.items():
        spec = caps.option(name)
        if spec is None:
            known = ", ".join(o.name for o in caps.options) or "none"
            problems[f"options.{name}"] = f"not an option of {caps.model} (accepted: {known})"
            continue
        problem = spec.problem(value)
        if problem is not None:
            problems[f"options.{name}"] = problem
    return problems
