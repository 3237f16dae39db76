"""The seed's ``options`` object, per job type, and the checks that need the serving provider.

A request may give a setting at the top level (``width``, as the README always documented)
or under ``options`` (as the seed's examples do). Both spellings are honoured; given both
with different values, the request is refused (422 naming ``options.<name>``) rather than one
silently winning. Keys under ``options`` that are not standard for the job type are checked
against what the provider serving the request declares (``ModelCapabilities.options``): a key
it does not declare, or a value out of its range, is a 422 naming ``options.<key>``, before
anything is charged.

:func:`resolve_request` runs after pydantic: it merges ``options`` into the top-level fields
(which the handlers read), and checks the provider's limits. Its problems are
``{field: message}``; the route answers them as a 422.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_serializer,
)

from app.providers.capabilities import ModelCapabilities, OptionSpec

if TYPE_CHECKING:
    from app.jobs.schemas import JobRequest

__all__ = [
    "OUTPUT_FORMATS",
    "ImageOptionsBody",
    "OptionProblems",
    "UpscaleOptionsBody",
    "VideoOptionsBody",
    "resolve_request",
]

MIN_SIDE, MAX_IMAGE_SIDE, MAX_VIDEO_SIDE = 64, 2048, 1280
MIN_VIDEO_SECONDS, MAX_VIDEO_SECONDS = 1.0, 10.0
MAX_SEED = 2**32 - 1
OUTPUT_FORMATS = ("png", "jpeg", "webp")

ImageSide = Annotated[StrictInt, Field(ge=MIN_SIDE, le=MAX_IMAGE_SIDE)]
VideoSide = Annotated[StrictInt, Field(ge=MIN_SIDE, le=MAX_VIDEO_SIDE)]
Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]
Duration = Annotated[
    StrictFloat,
    Field(ge=MIN_VIDEO_SECONDS, le=MAX_VIDEO_SECONDS, allow_inf_nan=False),
]
OutputFormat = Literal["png", "jpeg", "webp"]
Ratio = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,4}:[0-9]{1,4}$",
        description=f"WIDTH:HEIGHT in pixels, each {MIN_SIDE}-{MAX_VIDEO_SIDE} (Runway's form, "
        "e.g. 1280:720); instead of width and height.",
    ),
]


class OptionsBody(BaseModel):
    """Common to every ``options`` object: keys beyond the standard ones are kept for the
    serving provider to judge (:func:`resolve_request`)."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        json_schema_extra={
            "description": "Standard settings of the job type; a provider may accept more "
            "(see the README's provider table); an unknown key is refused with a 422."
        },
    )

    @model_serializer(mode="plain")
    def _as_sent(self) -> dict[str, Any]:
        """Saved (and read by the remote adapters) as the client spelled it: camelCase keys,
        only those given; the merged values live in the request's top-level fields."""
        given = {
            (info.alias or name): getattr(self, name)
            for name, info in type(self).model_fields.items()
            if getattr(self, name) is not None
        }
        return {**given, **(self.model_extra or {})}


class ImageOptionsBody(OptionsBody):
    """``options`` of image and batch jobs."""

    width: ImageSide | None = None
    height: ImageSide | None = None
    seed: Seed | None = None
    output_format: OutputFormat | None = Field(None, alias="outputFormat")


class VideoOptionsBody(OptionsBody):
    """``options`` of video jobs."""

    duration: Duration | None = None
    width: VideoSide | None = None
    height: VideoSide | None = None
    ratio: Ratio | None = None
    seed: Seed | None = None


class UpscaleOptionsBody(OptionsBody):
    """``options`` of upscale jobs."""

    face_enhance: StrictBool | None = Field(None, alias="faceEnhance")


OptionProblems = dict[str, str]


def resolve_request(request: JobRequest, caps: ModelCapabilities | None) -> OptionProblems:
    """Merge ``request.options`` into its top-level fields and check the provider's limits;
    ``{field: problem}`` (empty when the request is acceptable)."""
    problems: OptionProblems = {}
    options = getattr(request, "options", None)
    if isinstance(options, OptionsBody):
        _merge(request, options, problems)
        _check_extras(options, caps, problems)
    if caps is not None and not problems:
        _check_limits(request, caps, problems)
    return problems


def _merge(request: JobRequest, options: OptionsBody, problems: OptionProblems) -> None:
    given = request.model_fields_set
    ratio = getattr(options, "ratio", None)
    if ratio is not None:
        sides = _ratio_sides(ratio)
        if sides is None:
            problems["options.ratio"] = (
                f"must be WIDTH:HEIGHT with each side {MIN_SIDE}-{MAX_VIDEO_SIDE} pixels"
            )
            return
        for name in ("width", "height"):
            if getattr(options, name) is not None or name in given:
                problems["options.ratio"] = f"give either ratio or {name}, not both"
                return
        request.width, request.height = sides  # type: ignore[attr-defined]
    for name in type(options).model_fields:
        value = getattr(options, name)
        if value is None or name == "ratio" or name not in type(request).model_fields:
            continue
        alias = type(options).model_fields[name].alias or name
        if name in given and getattr(request, name) != value:
            top = type(request).model_fields[name].alias or name
            problems[f"options.{alias}"] = (
                f"conflicts with {top}={getattr(request, name)!r} given at the top level;"
                " give it once"
            )
            continue
        setattr(request, name, value)


def _ratio_sides(ratio: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"([0-9]{1,4}):([0-9]{1,4})", ratio)
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if not (MIN_SIDE <= width <= MAX_VIDEO_SIDE and MIN_SIDE <= height <= MAX_VIDEO_SIDE):
        return None
    return width, height


def _check_extras(
    options: OptionsBody, caps: ModelCapabilities | None, problems: OptionProblems
) -> None:
    """Standard keys a provider declares a spec for, and every non-standard key, against the
    provider's declaration."""
    standard = {f.alias or name for name, f in type(options).model_fields.items()}
    given = options.model_dump(by_alias=True, exclude_none=True)
    accepted = ", ".join(sorted(standard | {o.name for o in caps.options} if caps else standard))
    for key, value in given.items():
        spec: OptionSpec | None = caps.option(key) if caps is not None else None
        if spec is not None:
            problem = spec.problem(value)
            if problem is not None:
                problems[f"options.{key}"] = problem
        elif key not in standard:
            served = f" by {caps.model}" if caps is not None else ""
            problems[f"options.{key}"] = f"not an option accepted{served} (accepted: {accepted})"


def _field(request: JobRequest, name: str) -> str:
    """How the client spelled a merged setting: under ``options`` if it came from there."""
    options = getattr(request, "options", None)
    if isinstance(options, OptionsBody) and getattr(options, name, None) is not None:
        alias = type(options).model_fields[name].alias or name
        return f"options.{alias}"
    if (
        isinstance(options, VideoOptionsBody)
        and options.ratio is not None
        and name
        in (
            "width",
            "height",
        )
    ):
        return "options.ratio"
    return type(request).model_fields[name].alias or name


def _check_limits(request: JobRequest, caps: ModelCapabilities, problems: OptionProblems) -> None:
    """The provider's own limits on the standard settings (sizes, durations, scales)."""
    for side, bounds in (("width", caps.width), ("height", caps.height)):
        value: Any = getattr(request, side, None)
        if value is None:
            continue
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            problems[_field(request, side)] = (
                f"must be {bounds[0]}-{bounds[1]} pixels for {caps.model}"
            )
        elif caps.size_multiple_of and value % caps.size_multiple_of:
            problems[_field(request, side)] = (
                f"must be a multiple of {caps.size_multiple_of} for {caps.model}"
            )
    duration = getattr(request, "duration", None)
    if caps.durations and duration is not None and duration not in caps.durations:
        shown = ", ".join(map(str, caps.durations))
        problems[_field(request, "duration")] = f"must be one of {shown} seconds for {caps.model}"
    scale = getattr(request, "scale", None)
    if caps.scales and scale is not None and scale not in caps.scales:
        shown = ", ".join(map(str, caps.scales))
        problems[_field(request, "scale")] = f"must be one of {shown} for {caps.model}"
    prompt = getattr(request, "prompt", None)
    if caps.max_prompt_length and isinstance(prompt, str) and len(prompt) > caps.max_prompt_length:
        problems["prompt"] = f"must be at most {caps.max_prompt_length} characters for {caps.model}"
    images = getattr(request, "image_urls", None) or []
    if len(images) > max(caps.max_images, 0) and caps.max_images >= 0 and images:
        if caps.max_images == 0:
            problems["imageUrls"] = f"{caps.model} takes no source image"
        elif len(images) > caps.max_images:
            problems["imageUrls"] = f"{caps.model} takes at most {caps.max_images} image(s)"
