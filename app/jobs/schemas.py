"""Request bodies of ``POST /api/jobs/<type>``, validated with pydantic.

Field names are the seed's camelCase. Unknown fields are ignored so that the seed's clients
keep working; every known field is checked, and a failure names it (422).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.models import MAX_JOB_ID_LENGTH

# model -> provider, per job type: the seed's models plus the offline ``local`` one.
IMAGE_MODELS: dict[str, str] = {"flux-1.1-pro": "bfl", "local": "local"}
VIDEO_MODELS: dict[str, str] = {"runway-gen4": "runway", "local": "local"}
UPSCALE_MODELS: dict[str, str] = {"real-esrgan": "upscale", "local": "local"}

MAX_PROMPT_CHARS = 2000
MIN_SIDE, MAX_IMAGE_SIDE, MAX_VIDEO_SIDE = 64, 2048, 1280
MIN_VIDEO_SECONDS, MAX_VIDEO_SECONDS = 1.0, 10.0
MAX_SEED = 2**32 - 1


def _http_url(value: str) -> str:
    lowered = value.lower()
    if not lowered.startswith(("http://", "https://")) or len(value) < 11:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Prompt = Annotated[
    str, Field(min_length=1, max_length=MAX_PROMPT_CHARS), AfterValidator(_not_blank)
]
HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]
ImageSide = Annotated[StrictInt, Field(ge=MIN_SIDE, le=MAX_IMAGE_SIDE)]
VideoSide = Annotated[StrictInt, Field(ge=MIN_SIDE, le=MAX_VIDEO_SIDE)]
Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]


class JobRequest(BaseModel):
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


class PromptRequest(JobRequest):
    """A job made from one prompt."""

    prompt: Prompt


class ImageOptions(JobRequest):
    """What an image and a batch of images share: the image models, the size and the seed.

    Listed first among the bases of a request (``class X(ImageOptions, PromptRequest)``), it
    puts these fields after the prompt(s), where clients see them in a 422's ``fields``.
    """

    models: ClassVar[dict[str, str]] = IMAGE_MODELS
    model: str = "flux-1.1-pro"
    width: ImageSide = 1024
    height: ImageSide = 1024
    seed: Seed | None = None


class ImageGenerationRequest(ImageOptions, PromptRequest):
    pass


class VideoGenerationRequest(PromptRequest):
    models: ClassVar[dict[str, str]] = VIDEO_MODELS
    model: str = "runway-gen4"
    duration: float = Field(5.0, ge=MIN_VIDEO_SECONDS, le=MAX_VIDEO_SECONDS, allow_inf_nan=False)
    width: VideoSide = 640
    height: VideoSide = 384
    image_url: HttpUrl | None = Field(None, alias="imageUrl")


class ImageUpscaleRequest(JobRequest):
    models: ClassVar[dict[str, str]] = UPSCALE_MODELS
    image_url: HttpUrl = Field(alias="imageUrl")
    scale: Literal[2, 4] = 2
    model: str = "real-esrgan"


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
