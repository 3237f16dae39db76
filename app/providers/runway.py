"""Runway (Gen-4) over its HTTP API: create a task, poll ``/v1/tasks/{id}``, download, cancel.

Raw aiohttp on the app's session rather than the official async SDK (``runwayml``), which
serves well but retries ``POST`` creates on 429/5xx by default: Runway takes no idempotency
key, so a retried create can start a second paid task. Here a create is sent exactly once.
(The SDK is used in the tests, to prove the fake Runway speaks its contract.)

* Headers: ``Authorization: Bearer <RUNWAYML_API_SECRET>`` and ``X-Runway-Version``.
* ``runway-gen4`` with a source image: ``POST /v1/image_to_video`` with ``gen4_turbo``,
  ``promptImage`` = ``imageUrls[0]`` (a URL Runway can fetch, else a ``data:`` URI of at most
  5 MB), ``ratio`` from the request's size, ``duration``, ``promptText``.
* ``runway-gen4`` from text alone: Gen-4 Turbo requires an image, so the request goes to
  ``POST /v1/text_to_video`` with ``gen4.5``, the Gen-4 family's text-to-video model (landscape
  or portrait 720p only; billed at Gen-4.5's rate). See ``CAPABILITIES``.
* Statuses: ``PENDING``, ``THROTTLED`` (over our concurrency: queued at Runway), ``RUNNING``
  (with ``progress``) run; ``SUCCEEDED`` gives ``output[0]``; ``FAILED`` is mapped by its
  ``failureCode`` (``SAFETY.*`` final with a safe message, ``INTERNAL.*`` retryable);
  ``CANCELLED`` is final.
* Cancel: ``DELETE /v1/tasks/{id}`` (refunded only if the task had not started running).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    ProviderError,
    ProviderOutput,
    ProviderTask,
    RetryableProviderError,
    SourceImage,
    Submitted,
    TaskReady,
    TaskRunning,
    TaskState,
    VideoTaskRequest,
)
from app.providers.capabilities import ModelCapabilities, OptionSpec
from app.providers.http import (
    HostPolicy,
    PollSchedule,
    ProviderHttp,
    ProviderResponse,
    out_of_credits,
)
from daygen_queue import Clock

__all__ = ["API_VERSION", "CAPABILITIES", "RunwayProvider", "ratio_for"]

log = logging.getLogger("app.providers.runway")

NAME = "runway"
API_VERSION = "2024-11-06"
IMAGE_MODEL = "gen4_turbo"
TEXT_MODEL = "gen4.5"
IMAGE_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
TEXT_RATIOS = ("1280:720", "720:1280")
MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024  # Runway's limit for a data: URI
POLL = PollSchedule(first=5.0, longest=15.0, growth=0.05)
"""Runway's own SDK polls every ~6 s; a video takes 30 s to a few minutes."""
DEADLINE_SECONDS = 30 * 60.0
"""Generous: a THROTTLED task waits for one of our slots at Runway before it runs."""

CAPABILITIES: dict[str, ModelCapabilities] = {
    "runway-gen4": ModelCapabilities(
        model="runway-gen4",
        provider=NAME,
        job_type="video-generation",
        provider_model=IMAGE_MODEL,
        accepts_text_only=True,
        max_images=1,
        durations=tuple(range(2, 11)),
        max_prompt_length=1000,
        options=(
            OptionSpec(
                "ratio",
                "enum",
                "Output resolution (default: the closest to width x height).",
                choices=IMAGE_RATIOS,
            ),
        ),
        notes=(
            "With imageUrls[0]: gen4_turbo image-to-video, ratios "
            + ", ".join(IMAGE_RATIOS)
            + ". Text only: gen4.5 text-to-video, ratios "
            + ", ".join(TEXT_RATIOS)
            + " (a different price)."
        ),
        extra={"text_only_model": TEXT_MODEL, "text_only_ratios": TEXT_RATIOS},
    ),
}


def ratio_for(width: int, height: int, choices: tuple[str, ...]) -> str:
    """The accepted ratio closest in shape to ``width`` x ``height``."""

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(w / h - width / height)

    return min(choices, key=distance)


class RunwayProvider:
    """``runway-gen4`` video jobs."""

    name = NAME
    capabilities = CAPABILITIES
    """What request validation checks before submitting (``Providers.capabilities``)."""

    def __init__(
        self,
        *,
        api_secret: SecretStr,
        base_url: str,
        outbound: OutboundHttp,
        clock: Clock,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.http = ProviderHttp(
            NAME,
            outbound,
            base_url=base_url,
            auth_headers={"Authorization": SecretStr(f"Bearer {api_secret.get_secret_value()}")},
            policy=HostPolicy.of(base_url),
            headers={"X-Runway-Version": API_VERSION, "Accept": "application/json"},
        )
        self.clock = clock
        self.deadline_seconds = deadline_seconds

    async def submit(self, request: VideoTaskRequest) -> Submitted:
        if request.model not in CAPABILITIES:
            raise PermanentProviderError(
                f"runway has no model {request.model!r}", code=ErrorCode.INVALID_REQUEST
            )
        path, body = _create(request)
        response = await self.http.request("POST", self.http.url(path), json_body=body, submit=True)
        if response.status not in (200, 201):
            raise self._error(response, action="create", submit=True)
        created = response.body if isinstance(response.body, dict) else {}
        task_id = created.get("id")
        if not isinstance(task_id, str) or not task_id:
            self.http.log_failure("create: answer without an id", response.body)
            raise self.http.unavailable("create answered without a task id", submit=True)
        task = ProviderTask(NAME, task_id, None, self.clock.now())
        return Submitted(task, TaskRunning("PENDING", POLL.after(0), queued=True))

    async def poll(self, task: ProviderTask) -> TaskState:
        response = await self.http.request("GET", self.http.url(f"/v1/tasks/{task.task_id}"))
        if response.status != 200:
            raise self._error(response, action="poll")
        body = response.body if isinstance(response.body, dict) else {}
        status = str(body.get("status", ""))
        if status == "SUCCEEDED":
            output = body.get("output")
            if not isinstance(output, list) or not output or not isinstance(output[0], str):
                self.http.log_failure("poll: SUCCEEDED without output", body)
                raise PermanentProviderError(
                    "the video provider finished without a video", code=ErrorCode.TASK_FAILED
                )
            return TaskReady(output[0])
        if status == "FAILED":
            self.http.log_failure(f"task {task.task_id} FAILED", body)
            raise failure_error(body.get("failureCode"))
        if status == "CANCELLED":
            raise PermanentProviderError(
                "the video was cancelled at the provider", code=ErrorCode.CANCELLED
            )
        elapsed = self.http.waited(
            task, self.clock.now(), self.deadline_seconds, status, body, "the video provider"
        )
        progress = body.get("progress")
        return TaskRunning(
            status or "PENDING",
            POLL.after(elapsed),
            progress=float(progress) if isinstance(progress, int | float) else None,
            queued=status in ("PENDING", "THROTTLED"),
        )

    async def download(self, ready: TaskReady) -> ProviderOutput:
        return await self.http.download(ready.output_url)

    async def cancel(self, task: ProviderTask) -> bool:
        """``DELETE /v1/tasks/{id}``: cancels a task that is not finished (deletes one that is).
        A task Runway no longer knows counts as cancelled."""
        response = await self.http.request("DELETE", self.http.url(f"/v1/tasks/{task.task_id}"))
        if response.status in (200, 204, 404):
            return True
        raise self._error(response, action="cancel")

    def _error(
        self, response: ProviderResponse, *, action: str, submit: bool = False
    ) -> ProviderError:
        body = response.body
        message = body.get("error") if isinstance(body, dict) else None
        if response.status == 400 and isinstance(message, str) and "credit" in message.lower():
            self.http.log_failure(f"{action}: HTTP 400", body)
            return out_of_credits(NAME)
        return self.http.http_error(response, action=action, submit=submit)


def _create(request: VideoTaskRequest) -> tuple[str, dict[str, Any]]:
    """(path, body) of the create call, in Runway's field names."""
    prompt = request.prompt.strip()
    if request.image is None:
        body: dict[str, Any] = {
            "model": TEXT_MODEL,
            "promptText": prompt,
            "ratio": ratio_for(request.width, request.height, TEXT_RATIOS),
            "duration": request.duration_seconds,
        }
        path = "/v1/text_to_video"
    else:
        ratio = request.options.get("ratio") or ratio_for(
            request.width, request.height, IMAGE_RATIOS
        )
        body = {
            "model": IMAGE_MODEL,
            "promptImage": prompt_image(request.image),
            "ratio": ratio,
            "duration": request.duration_seconds,
        }
        if prompt:
            body["promptText"] = prompt
        path = "/v1/image_to_video"
    if request.seed is not None:
        body["seed"] = request.seed
    return path, body


def prompt_image(image: SourceImage) -> str:
    """Runway fetches HTTPS URLs itself; bytes go as a ``data:`` URI (5 MB at most)."""
    if image.url is not None:
        return image.url
    assert image.data is not None
    if len(image.data) > MAX_INLINE_IMAGE_BYTES:
        raise PermanentProviderError(
            "the source image is over Runway's 5 MB inline limit", code=ErrorCode.INVALID_REQUEST
        )
    return image.data_uri()


def failure_error(code: Any) -> ProviderError:
    """A ``FAILED`` task's error from its ``failureCode`` (the human ``failure`` text is only
    logged: moderation reasons must not be shown verbatim)."""
    code = str(code or "")
    if code.startswith("SAFETY.") or code.startswith("INPUT_PREPROCESSING.SAFETY"):
        return PermanentProviderError(
            "the video provider's content moderation refused this request",
            code=ErrorCode.MODERATED,
        )
    if code.startswith("INTERNAL") or code == "INPUT_PREPROCESSING.INTERNAL":
        return RetryableProviderError(
            "the video provider failed; trying again", code=ErrorCode.TASK_FAILED
        )
    if code.startswith("ASSET."):
        return PermanentProviderError(
            "the video provider could not use the source image", code=ErrorCode.INVALID_REQUEST
        )
    return PermanentProviderError(
        "the video provider failed to generate the video", code=ErrorCode.TASK_FAILED
    )
