"""Black Forest Labs (FLUX) over its HTTP API: submit, follow ``polling_url``, download.

Raw aiohttp on the app's session: BFL's own Python SDK (``blackforest``) is synchronous, pins
an old Pillow, and keeps polling on ``Error`` and the moderation statuses.

* Submit ``POST {BFL_API_URL}/v1/<endpoint>`` with header ``x-key``; the answer is
  ``{id, polling_url}``. Both are kept (``ProviderTask``): the global endpoint routes tasks to
  clusters and says to always poll the returned ``polling_url``.
* ``polling_url`` may name another host. The key goes only to the configured host and to
  ``*.bfl.ai`` (plus the legacy ``api.bfl.ml``); a polling URL anywhere else is not followed,
  the task is polled at ``{BFL_API_URL}/v1/get_result?id=`` instead.
* Statuses (BFL's OpenAPI): ``Pending`` runs; ``Ready`` gives ``result.sample``, a delivery
  link that expires after 10 minutes, so it is downloaded at once; ``Request Moderated``,
  ``Content Moderated``, ``Error`` and ``Task not found`` are final. Any other status
  (FLUX.2 reports ``Reasoning``, ``Generating``) counts as running, until the model's deadline.
* HTTP: 429 (over 24 active tasks) is retryable with ``Retry-After``; 402 is "provider out of
  credits" (final, refunded); 422 names the refused fields.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr
from yarl import URL

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    ImageTaskRequest,
    PermanentProviderError,
    ProviderOutput,
    ProviderTask,
    Submitted,
    TaskReady,
    TaskRunning,
    TaskState,
)
from app.providers.capabilities import ModelCapabilities, OptionSpec
from app.providers.http import HostPolicy, PollSchedule, ProviderHttp
from daygen_queue import Clock

__all__ = ["BFL_DOMAINS", "CAPABILITIES", "BflProvider"]

log = logging.getLogger("app.providers.bfl")

NAME = "bfl"
BFL_DOMAINS = ("bfl.ai", "api.bfl.ml")
"""Where the key may go besides the configured host: BFL's regional and cluster hosts are all
under ``bfl.ai``; ``api.bfl.ml`` is the legacy domain of older documentation."""

POLL = PollSchedule(first=0.5, longest=3.0, growth=0.1)
"""FLUX renders in 2-15 s: poll every 0.5 s at first, slowing to every 3 s."""
DEADLINE_SECONDS = 600.0
"""A FLUX render takes seconds; one still unfinished after 10 minutes is given up."""

_FINAL_FAILURES = {
    "Request Moderated": (
        ErrorCode.MODERATED,
        "the image provider's content moderation refused this prompt",
    ),
    "Content Moderated": (
        ErrorCode.MODERATED,
        "the image provider's content moderation withheld the generated image",
    ),
    "Error": (ErrorCode.TASK_FAILED, "the image provider failed to generate the image"),
    "Task not found": (ErrorCode.TASK_NOT_FOUND, "the image provider lost the task"),
}

_SAFETY = OptionSpec(
    "safetyTolerance", "int", "Moderation tolerance, 0 strictest to 6 most permissive.", 0, 6,
    default=2,
)  # fmt: skip
_UPSAMPLING = OptionSpec(
    "promptUpsampling", "bool", "Let BFL rewrite the prompt for more detail.", default=False
)
_ASPECT = OptionSpec(
    "aspectRatio", "string", "Width:height between 21:9 and 9:21 (default: from width/height).",
    max_length=9,
)  # fmt: skip

CAPABILITIES: dict[str, ModelCapabilities] = {
    "flux-1.1-pro": ModelCapabilities(
        model="flux-1.1-pro",
        provider=NAME,
        job_type="image-generation",
        provider_model="/v1/flux-pro-1.1",
        width=(256, 1440),
        height=(256, 1440),
        size_multiple_of=32,
        options=(_SAFETY, _UPSAMPLING),
    ),
    "flux-1.1-pro-ultra": ModelCapabilities(
        model="flux-1.1-pro-ultra",
        provider=NAME,
        job_type="image-generation",
        provider_model="/v1/flux-pro-1.1-ultra",
        max_images=1,  # image_prompt (Redux)
        options=(
            _SAFETY,
            _UPSAMPLING,
            _ASPECT,
            OptionSpec("raw", "bool", "Less processed, more natural images.", default=False),
            OptionSpec(
                "imagePromptStrength", "float", "Weight of the image prompt.", 0, 1, default=0.1
            ),
        ),
        notes="Sized by aspect ratio (about 4 MP), not width/height.",
    ),
    "flux-kontext-pro": ModelCapabilities(
        model="flux-kontext-pro",
        provider=NAME,
        job_type="image-generation",
        provider_model="/v1/flux-kontext-pro",
        max_images=4,  # input_image .. input_image_4
        options=(_SAFETY, _UPSAMPLING, _ASPECT),
        notes="Edits the source images with the prompt; text alone generates.",
    ),
}


class BflProvider:
    """The FLUX models of :data:`CAPABILITIES`, for image jobs."""

    name = NAME
    capabilities = CAPABILITIES
    """What request validation checks before submitting (``Providers.capabilities``)."""

    def __init__(
        self,
        *,
        api_key: SecretStr,
        base_url: str,
        outbound: OutboundHttp,
        clock: Clock,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.http = ProviderHttp(
            NAME,
            outbound,
            base_url=base_url,
            auth_headers={"x-key": api_key},
            policy=HostPolicy.of(base_url, domains=BFL_DOMAINS),
            headers={"Accept": "application/json"},
        )
        self.clock = clock
        self.deadline_seconds = deadline_seconds
        self.poll_interval = POLL

    async def submit(self, request: ImageTaskRequest) -> Submitted:
        caps = CAPABILITIES.get(request.model)
        if caps is None:
            raise PermanentProviderError(
                f"bfl has no model {request.model!r}", code=ErrorCode.INVALID_REQUEST
            )
        response = await self.http.request(
            "POST", self.http.url(caps.provider_model), json_body=_body(caps, request), submit=True
        )
        if response.status != 200:
            raise self.http.http_error(response, action="submit", submit=True)
        body = response.body if isinstance(response.body, dict) else {}
        task_id = body.get("id")
        if not isinstance(task_id, str) or not task_id:
            self.http.log_failure("submit: answer without an id", response.body)
            raise self.http.unavailable("submit answered without a task id", submit=True)
        polling_url = body.get("polling_url")
        task = ProviderTask(
            NAME,
            task_id,
            polling_url if isinstance(polling_url, str) else None,
            self.clock.now(),
        )
        return Submitted(task, TaskRunning("Pending", self.poll_interval.after(0)))

    async def poll(self, task: ProviderTask) -> TaskState:
        response = await self.http.request("GET", self._poll_url(task))
        if response.status != 200:
            raise self.http.http_error(response, action="poll")
        body = response.body if isinstance(response.body, dict) else {}
        status = str(body.get("status", ""))
        if status == "Ready":
            result = body.get("result")
            sample = result.get("sample") if isinstance(result, dict) else None
            if not isinstance(sample, str) or not sample:
                self.http.log_failure("poll: Ready without result.sample", body)
                raise PermanentProviderError(
                    "the image provider finished without an image", code=ErrorCode.TASK_FAILED
                )
            return TaskReady(sample)
        if status in _FINAL_FAILURES:
            code, message = _FINAL_FAILURES[status]
            self.http.log_failure(f"task {task.task_id} ended {status!r}", body)
            raise PermanentProviderError(message, code=code)
        elapsed = self.http.waited(
            task, self.clock.now(), self.deadline_seconds, status, body, "the image provider"
        )
        progress = body.get("progress")
        return TaskRunning(
            status or "Pending",
            self.poll_interval.after(elapsed),
            progress=_fraction(progress),
        )

    async def download(self, ready: TaskReady) -> ProviderOutput:
        return await self.http.download(ready.output_url)

    async def cancel(self, task: ProviderTask) -> bool:
        """BFL has no cancel: the task runs to its end (and is billed)."""
        return False

    def _poll_url(self, task: ProviderTask) -> URL:
        if task.poll_url:
            if self.http.allows(task.poll_url):
                return URL(task.poll_url)
            log.warning(
                "bfl polling_url is on a host outside the allow-list (%s); polling %s instead",
                URL(task.poll_url).host,
                self.http.base_url.host,
            )
        return self.http.url("/v1/get_result").with_query(id=task.task_id)


def _body(caps: ModelCapabilities, request: ImageTaskRequest) -> dict[str, Any]:
    """BFL's field names (snake_case), from our request."""
    options = request.options
    body: dict[str, Any] = {"prompt": request.prompt, "output_format": "png"}
    if request.seed is not None:
        body["seed"] = request.seed
    if "safetyTolerance" in options:
        body["safety_tolerance"] = options["safetyTolerance"]
    if "promptUpsampling" in options:
        body["prompt_upsampling"] = options["promptUpsampling"]
    if request.webhook is not None:
        body["webhook_url"] = request.webhook.url
        if request.webhook.secret:
            body["webhook_secret"] = request.webhook.secret
    if caps.model == "flux-1.1-pro":
        body["width"], body["height"] = request.width, request.height
        return body
    body["aspect_ratio"] = options.get("aspectRatio") or aspect_ratio(request.width, request.height)
    if caps.model == "flux-1.1-pro-ultra":
        if "raw" in options:
            body["raw"] = options["raw"]
        if request.images:
            body["image_prompt"] = _inline_or_url(request.images[0])
            if "imagePromptStrength" in options:
                body["image_prompt_strength"] = options["imagePromptStrength"]
        return body
    for index, image in enumerate(request.images[: caps.max_images]):
        body["input_image" if index == 0 else f"input_image_{index + 1}"] = _inline_or_url(image)
    return body


def _inline_or_url(image: Any) -> str:
    """BFL takes a URL or raw base64 for input images."""
    return str(image.url) if image.url is not None else str(image.base64())


ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")


def aspect_ratio(width: int, height: int) -> str:
    """The usual ratio closest to ``width`` x ``height``, within BFL's 21:9 .. 9:21."""

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(w / h - width / height)

    return min(ASPECT_RATIOS, key=distance)


def _fraction(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, min(1.0, float(value) / 100 if value > 1 else float(value)))
    return None
