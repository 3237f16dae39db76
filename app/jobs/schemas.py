"""Request bodies of ``POST /api/jobs/<type>``, validated with pydantic.

Field names are the seed's camelCase. Unknown top-level fields are ignored so that the seed's
clients keep working; every known field is checked, and a failure names it (422). The seed's
``options`` object is defined, and merged into these fields, in ``app.jobs.options``. The
OpenAPI document is generated from these models (``app.openapi``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.jobs.options import (
    Duration,
    ImageOptionsBody,
    ImageSide,
    OutputFormat,
    Seed,
    UpscaleOptionsBody,
    VideoOptionsBody,
    VideoSide,
)
from app.jobs.planning import PlanningFields, checked_job_ref
from app.models import MAX_JOB_ID_LENGTH
from app.providers.urls import MAX_URL_LENGTH, parse_http_url
from app.webhooks.fields import WebhookFields

# model -> provider, per job type: the seed's models plus the offline ``local`` one.
IMAGE_MODELS: dict[str, str] = {"flux-1.1-pro": "bfl", "local": "local"}
VIDEO_MODELS: dict[str, str] = {"runway-gen4": "runway", "local": "local"}
UPSCALE_MODELS: dict[str, str] = {"real-esrgan": "upscale", "local": "local"}

MAX_PROMPT_CHARS = 2000
MAX_SOURCE_IMAGES = 2


def _http_url(value: str) -> str:
    """The one URL parser (``app.providers.urls``), so what is accepted here can be fetched;
    or ``job:<jobId>``, a parent job's result (``app.jobs.planning``)."""
    if checked_job_ref(value) is not None:
        return value
    parse_http_url(value)  # InvalidURL is a ValueError: a 422 naming the field
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        json_schema_extra={"pattern": r"\S"},  # documented: not blank (checked below)
    ),
    AfterValidator(_not_blank),
]
HttpUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        json_schema_extra={
            "format": "uri",
            "pattern": "^([Hh][Tt][Tt][Pp][Ss]?://[^@/?#]+|job:.+)",
            "description": "http(s) URL (parsed by the rules of the README's API section), "
            "or job:<jobId> for a parent job's result.",
        },
    ),
    AfterValidator(_http_url),
]


class JobRequest(WebhookFields, PlanningFields):
    """Common part: ``model`` and ``provider`` must match the type's ``models`` registry."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    models: ClassVar[dict[str, str]] = {}
    """model -> provider for this job type."""

    model: str
    provider: str | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in cls.models:
            raise ValueError(f"unknown model {value!r}; expected one of {sorted(cls.models)}")
        return value

    @field_validator("provider")
    @classmethod
    def _matching_provider(cls, value: str | None, info: ValidationInfo) -> str | None:
        model = info.data.get("model")
        if value is None or model is None:
            return value
        expected = cls.models[model]
        if value != expected:
            raise ValueError(f"model {model!r} is served by provider {expected!r}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _default_provider(self) -> Self:
        if self.provider is None:
            self.provider = self.models[self.model]
        return self

    def reconcile(self) -> dict[str, str]:
        """Settle fields given in two spellings (after pydantic, before ``options`` are
        merged): ``{field: problem}``."""
        return {}

    def source_urls(self) -> dict[str, str]:
        """``{field: url}`` of the source images this request names (checked at creation)."""
        return {}


class PromptRequest(JobRequest):
    """A job made from one prompt."""

    prompt: Prompt


class ImageOptions(JobRequest):
    """What an image and a batch of images share: the image models, the size, the seed and
    the file format, at the top level or under ``options`` (see ``app.jobs.options``).

    Listed first among the bases of a request (``class X(ImageOptions, PromptRequest)``), it
    puts these fields after the prompt(s), where clients see them in a 422's ``fields``.
    """

    models: ClassVar[dict[str, str]] = IMAGE_MODELS
    model: str = "flux-1.1-pro"
    width: ImageSide = 1024
    height: ImageSide = 1024
    seed: Seed | None = None
    output_format: OutputFormat = Field("png", alias="outputFormat")
    options: ImageOptionsBody = Field(default_factory=ImageOptionsBody)


class ImageGenerationRequest(ImageOptions, PromptRequest):
    pass


class VideoGenerationRequest(PromptRequest):
    """A clip from a prompt, optionally starting on ``imageUrls[0]`` (and ending on
    ``imageUrls[1]``); ``imageUrl`` is the older spelling of a single start image."""

    models: ClassVar[dict[str, str]] = VIDEO_MODELS
    model: str = "runway-gen4"
    duration: Duration = 5.0
    width: VideoSide = 640
    height: VideoSide = 384
    seed: Seed | None = None
    image_urls: list[HttpUrl] | None = Field(None, alias="imageUrls", max_length=MAX_SOURCE_IMAGES)
    image_url: HttpUrl | None = Field(None, alias="imageUrl")
    options: VideoOptionsBody = Field(default_factory=VideoOptionsBody)

    def reconcile(self) -> dict[str, str]:
        if self.image_url is not None and self.image_urls:
            if self.image_urls[0] != self.image_url:
                return {"imageUrl": "differs from imageUrls[0]; give the start image once"}
        elif self.image_url is not None:
            self.image_urls = [self.image_url]
        elif self.image_urls:
            self.image_url = self.image_urls[0]
        return {}

    def source_urls(self) -> dict[str, str]:
        return {f"imageUrls[{i}]": url for i, url in enumerate(self.image_urls or [])}


class ImageUpscaleRequest(JobRequest):
    models: ClassVar[dict[str, str]] = UPSCALE_MODELS
    image_url: HttpUrl = Field(alias="imageUrl")
    scale: StrictInt = Field(2, description="2 or 4", json_schema_extra={"enum": [2, 4]})
    face_enhance: StrictBool = Field(False, alias="faceEnhance")
    model: str = "real-esrgan"
    options: UpscaleOptionsBody = Field(default_factory=UpscaleOptionsBody)

    @field_validator("scale")
    @classmethod
    def _two_or_four(cls, value: int) -> int:
        if value not in (2, 4):
            raise ValueError("must be 2 or 4")
        return value

    def source_urls(self) -> dict[str, str]:
        return {"imageUrl": self.image_url}


class BatchPrompts(JobRequest):
    """Several prompts, rendered ``batchSize`` per task (a chunk)."""

    prompts: list[Prompt] = Field(min_length=1, max_length=100)
    batch_size: StrictInt = Field(4, ge=1, le=10, alias="batchSize")


class BatchGenerationRequest(ImageOptions, BatchPrompts):
    def chunk_sizes(self) -> list[int]:
        return [len(chunk) for chunk in chunk_ranges(len(self.prompts), self.batch_size)]


def chunk_ranges(prompts: int, batch_size: int) -> list[range]:
    """The prompt positions of each chunk of a batch: ``batch_size`` each, the last one the
    rest."""
    return [
        range(start, min(start + batch_size, prompts)) for start in range(0, prompts, batch_size)
    ]


class TaskPayload(BaseModel):
    """The body of a task delivery: which job (and, for a job made of chunks, which chunk)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: str = Field(alias="jobId", min_length=1, max_length=MAX_JOB_ID_LENGTH)
    chunk: StrictInt | None = Field(None, ge=0, le=1000)
    attempts_before: StrictInt = Field(0, alias="attemptsBefore", ge=0, le=1000)
    """Attempts made by earlier tasks of the same job (a retry the reconciler created for an
    attempt cut short): this task's attempt n is the job's attempt ``attempts_before + n``."""
