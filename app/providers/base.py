"""The provider contract: what a job handler may ask of an AI backend, and how it fails.

Handlers only ever see these protocols and errors, so a local renderer, BFL, Runway or
Replicate can serve a job type without the task processor knowing which one it is. The one
decision a handler needs from a failure is "try again later or give up now", which is what
``ProviderError.retryable`` answers.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from app.jobs.records import JobRecord

__all__ = [
    "CancellableProvider",
    "ErrorCode",
    "ImageTaskRequest",
    "ProviderOutput",
    "ProviderTask",
    "RemoteTaskProvider",
    "SourceImage",
    "Submitted",
    "TaskReady",
    "TaskRunning",
    "TaskState",
    "UpscaleTaskRequest",
    "VideoTaskRequest",
    "Webhook",
    "ImageProvider",
    "PermanentProviderError",
    "ProviderError",
    "Providers",
    "RetryableProviderError",
    "StopsAtReports",
    "UpscaleProvider",
    "VideoProvider",
]


class ProviderError(Exception):
    """A provider could not produce a result.

    ``retryable`` tells the task processor whether to answer 5xx (so the queue retries with
    backoff) or to fail the job at once. The base class defaults to retryable because an
    unclassified failure is more often transient (a remote hiccup) and the app caps attempts
    anyway; raise :class:`PermanentProviderError` when retrying cannot help.
    """

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        submission_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.code = code
        """A stable name for the kind of failure (``ErrorCode``), for callers that branch."""
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (a 429's ``Retry-After``)."""
        self.submission_unknown = submission_unknown
        """A submit whose request may have reached the provider (a timeout or 5xx after
        sending): retrying could start a second paid task."""


class RetryableProviderError(ProviderError):
    """A transient failure (remote 5xx, timeout, rate limit): the same request may succeed later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """A failure retrying cannot fix (bad input image, size out of bounds, private source URL)."""

    retryable = False


@runtime_checkable
class ImageProvider(Protocol):
    """Turns a prompt into one image."""

    async def generate_image(
        self, *, prompt: str, width: int, height: int, seed: int | None, model: str
    ) -> bytes:
        """Return PNG bytes of exactly ``width`` x ``height`` pixels.

        The same (prompt, seed, size, model) should give the same image where the backend
        allows it; ``seed=None`` lets the backend choose.
        """
        ...


@runtime_checkable
class VideoProvider(Protocol):
    """Turns a prompt, optionally anchored on a first image, into a short clip."""

    async def generate_video(
        self,
        *,
        prompt: str,
        duration_seconds: float,
        width: int,
        height: int,
        image: bytes | None,
        model: str,
        seed: int | None = None,
        last_image: bytes | None = None,
    ) -> tuple[bytes, str]:
        """Return ``(data, mime_type)``: a ``duration_seconds`` clip of ``width`` x ``height``,
        starting on ``image`` (and ending on ``last_image``) where given.

        The mime type travels with the bytes because backends differ (the local one makes
        ``image/webp`` animations, remote ones ``video/mp4``) and storage must serve it right.
        """
        ...


@runtime_checkable
class UpscaleProvider(Protocol):
    """Enlarges an existing image."""

    async def upscale(
        self, *, image: bytes, scale: int, model: str, face_enhance: bool = False
    ) -> bytes:
        """Return PNG bytes of the image enlarged ``scale`` times on each side."""
        ...


@dataclass
class Providers:
    """Every configured provider, keyed by the provider name a job request names.

    One object so the app receives all backends from a single factory
    (:func:`app.providers.registry.build_providers`) instead of reaching for globals.
    """

    image: dict[str, ImageProvider] = field(default_factory=dict)
    video: dict[str, VideoProvider] = field(default_factory=dict)
    upscale: dict[str, UpscaleProvider] = field(default_factory=dict)
    remote: dict[str, RemoteTaskProvider[Any]] = field(default_factory=dict)
    """Provider names served by a remote adapter (submit / poll on the queue), keyed by the
    name a job request uses (``bfl``, ``runway``, ``upscale``); such a name is looked up here
    before the local tables."""

    def remote_provider(self, name: str) -> RemoteTaskProvider[Any] | None:
        """The remote adapter serving ``name``, or ``None`` when it is served locally."""
        return self.remote.get(name)

    def image_provider(self, name: str) -> ImageProvider:
        """The image provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.image, name, "image")

    def video_provider(self, name: str) -> VideoProvider:
        """The video provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.video, name, "video")

    def capabilities(self, kind: str, name: str, model: str) -> Any:
        """What the provider serving ``name`` (of ``kind``: ``image``, ``video``, ``upscale``)
        declares for ``model`` (a ``ModelCapabilities``), or ``None`` when it declares
        nothing. A backend declares with a ``capabilities`` mapping of model -> capabilities
        (the adapters' ``CAPABILITIES``)."""
        table: Mapping[str, object] = getattr(self, kind, {})
        backend = self.remote.get(name) or table.get(name)
        declared = getattr(backend, "capabilities", None)
        return declared.get(model) if isinstance(declared, Mapping) else None

    def upscale_provider(self, name: str) -> UpscaleProvider:
        """The upscale provider called ``name``; an unknown name is a permanent job error."""
        return _lookup(self.upscale, name, "upscale")


_T = TypeVar("_T")


def _lookup(table: dict[str, _T], name: str, kind: str) -> _T:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise PermanentProviderError(
            f"unknown {kind} provider {name!r} (configured: {known})"
        ) from None


# ---------------------------------------------------------------------------------------------
# Remote providers (BFL, Runway, Replicate): long work as submit / poll / download / cancel.
#
# A remote render takes seconds to minutes, so no call waits for it: a delivery ``submit``s
# and keeps the returned ``ProviderTask`` on the job; a later poll task calls ``poll`` once and
# either schedules itself again (``TaskRunning.poll_after``) or, on ``TaskReady``, calls
# ``download`` at once (providers' result links expire) and stores the bytes. Every failure is
# a ``ProviderError`` whose ``message`` is safe to show the user and whose ``code`` says what
# happened; the provider's own text is only logged.
# ---------------------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """What went wrong at a provider (``ProviderError.code``)."""

    RATE_LIMITED = "rate_limited"  # 429: retry after ``retry_after``
    OUT_OF_CREDITS = "out_of_credits"  # our provider account is empty: fail and refund
    MODERATED = "moderated"  # the provider's safety system refused the input or the output
    INVALID_REQUEST = "invalid_request"  # the provider refused our parameters (400/422)
    UNAUTHORIZED = "unauthorized"  # our key was refused (401/403): an operator must act
    TASK_FAILED = "task_failed"  # the render failed at the provider
    TASK_NOT_FOUND = "task_not_found"  # the provider no longer knows the task
    CANCELLED = "cancelled"  # cancelled at the provider
    ABORTED = "aborted"  # the provider dropped the task before it started (its deadline)
    DEADLINE = "deadline"  # still not finished after the model's deadline
    UNAVAILABLE = "unavailable"  # 5xx, timeouts, dropped connections
    RESULT_EXPIRED = "result_expired"  # the result link no longer answers: poll again
    FORBIDDEN_HOST = "forbidden_host"  # the provider pointed us at a host we do not trust


@dataclass(frozen=True, slots=True)
class SourceImage:
    """An input image as a provider may receive it: a URL it can fetch itself (a signed Cloud
    Storage URL, or the user's public URL), or the bytes, which adapters send inline (base64 or
    a ``data:`` URI, as each provider documents)."""

    url: str | None = None
    data: bytes | None = None
    content_type: str = "image/png"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("a source image is either a URL or bytes")

    def data_uri(self) -> str:
        assert self.data is not None
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"

    def base64(self) -> str:
        assert self.data is not None
        return base64.b64encode(self.data).decode()


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where the provider should call back when the task ends (providers that offer it), and
    the per-task secret we hand it (BFL's ``webhook_secret``; Replicate signs with the
    account's secret instead, so ``secret`` is unused there)."""

    url: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class ImageTaskRequest:
    model: str
    prompt: str
    width: int
    height: int
    seed: int | None = None
    images: tuple[SourceImage, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class VideoTaskRequest:
    model: str
    prompt: str
    duration_seconds: int
    width: int
    height: int
    image: SourceImage | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpscaleTaskRequest:
    model: str
    image: SourceImage
    scale: int
    face_enhance: bool = False
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class ProviderTask:
    """What to keep on the job once a provider accepted the work (``to_json`` / ``from_json``
    for a JSON column): enough to poll, cancel and find it again after a restart."""

    provider: str
    task_id: str
    poll_url: str | None
    submitted_at: datetime
    cancel_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "taskId": self.task_id,
            "pollUrl": self.poll_url,
            "cancelUrl": self.cancel_url,
            "submittedAt": self.submitted_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProviderTask:
        return cls(
            provider=str(data["provider"]),
            task_id=str(data["taskId"]),
            poll_url=data.get("pollUrl"),
            cancel_url=data.get("cancelUrl"),
            submitted_at=datetime.fromisoformat(str(data["submittedAt"])),
        )


@dataclass(frozen=True, slots=True)
class TaskRunning:
    """Not finished: poll again after ``poll_after`` seconds."""

    status: str  # the provider's own status word (``Pending``, ``THROTTLED``, ``processing``)
    poll_after: float
    progress: float | None = None  # 0..1 where the provider reports it
    queued: bool = False  # waiting for a slot at the provider (Runway's ``THROTTLED``)


@dataclass(frozen=True, slots=True)
class TaskReady:
    """Finished: ``output_url`` must be downloaded now (it expires within minutes or hours)."""

    output_url: str


TaskState = TaskRunning | TaskReady


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission: the task to keep, and its state in the provider's answer (Replicate's
    ``Prefer: wait`` may already be finished)."""

    task: ProviderTask
    state: TaskState


@dataclass(frozen=True, slots=True)
class ProviderOutput:
    data: bytes
    content_type: str


RequestT_contra = TypeVar("RequestT_contra", contravariant=True)


@runtime_checkable
class RemoteTaskProvider(Protocol[RequestT_contra]):
    """A provider reached over HTTP whose work outlives a request.

    ``submit`` is never retried by the adapter itself (no provider here takes an idempotency
    key, so a retried create can start a second paid task); ``poll``, ``download`` and
    ``cancel`` are safe to repeat. ``deadline_seconds`` is how long one of its tasks may run
    before the job is given up.
    """

    name: str
    deadline_seconds: float

    async def submit(self, request: RequestT_contra) -> Submitted: ...

    async def poll(self, task: ProviderTask) -> TaskState: ...

    async def download(self, ready: TaskReady) -> ProviderOutput: ...

    async def cancel(self, task: ProviderTask) -> bool:
        """Ask the provider to stop; ``False`` when it has no cancel (BFL)."""
        ...


@runtime_checkable
class CancellableProvider(Protocol):
    """A provider that can stop work it started for a job (the cancel hook).

    ``app.jobs.cancel.cancel_job`` calls it once, after the job was cancelled (committed,
    refunded) while ``PROCESSING``; ``job`` is the job as it was just before the cancel, so a
    remote adapter finds the provider task it kept on it and cancels it
    (:meth:`RemoteTaskProvider.cancel`). Local providers stop at their next progress report
    instead and implement this as a no-op. A failure here is logged, never raised to the
    user: the job is cancelled whatever the provider does.
    """

    async def cancel_job(self, job: JobRecord) -> None: ...


class StopsAtReports:
    """:class:`CancellableProvider` for providers whose work is all in-process: nothing
    remote to cancel, the handler stops at its next progress report."""

    async def cancel_job(self, job: JobRecord) -> None:
        return None
