"""Replicate (Real-ESRGAN upscaling) over its HTTP API: create a prediction, poll, download,
cancel.

Raw aiohttp on the app's session rather than the official async SDK (``replicate``), whose
``Prediction`` model rejects the ``aborted`` status (a ValidationError instead of a state), and
which is built on httpx, not on the app's session. (The SDK is used in the tests, to prove the
fake Replicate speaks its contract.)

* ``real-esrgan``: ``POST /v1/predictions`` with ``version`` = ``REPLICATE_UPSCALE_VERSION``
  (``nightmareai/real-esrgan`` is a community model: it is run by pinned version) and
  ``input {image, scale, face_enhance}``. ``image`` is a URL Replicate can fetch (a signed
  Cloud Storage URL), else a ``data:`` URI.
* ``Prefer: wait=N`` holds the create open up to N seconds: a small image is often finished in
  the create's answer, which is then downloaded without a single poll; otherwise the answer is
  the prediction as it stands, polled like any other.
* Statuses: ``starting``, ``processing`` run; ``succeeded`` gives ``output`` (one URL);
  ``failed`` is final; ``canceled`` is final; ``aborted`` (dropped before it started, by a
  ``Cancel-After`` deadline) is retryable. Results are deleted by Replicate after an hour.
* Poll ``urls.get`` when it is on the configured host, else ``/v1/predictions/{id}``; cancel
  is ``POST /v1/predictions/{id}/cancel``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    ProviderOutput,
    ProviderTask,
    RetryableProviderError,
    SourceImage,
    Submitted,
    TaskReady,
    TaskRunning,
    TaskState,
    UpscaleTaskRequest,
)
from app.providers.capabilities import ModelCapabilities, OptionSpec
from app.providers.http import HostPolicy, PollSchedule, ProviderHttp
from daygen_queue import Clock

__all__ = ["CAPABILITIES", "DEFAULT_UPSCALE_VERSION", "ReplicateProvider"]

log = logging.getLogger("app.providers.replicate")

NAME = "replicate"
DEFAULT_UPSCALE_VERSION = "42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b"
POLL = PollSchedule(first=1.0, longest=5.0, growth=0.1)
DEADLINE_SECONDS = 15 * 60.0
PREFER_WAIT_SECONDS = 5
"""Held briefly: long enough for a small upscale to finish in the create's answer, short
enough that the delivery holding it is not held open for long."""

CAPABILITIES: dict[str, ModelCapabilities] = {
    "real-esrgan": ModelCapabilities(
        model="real-esrgan",
        provider=NAME,
        job_type="image-upscale",
        provider_model="nightmareai/real-esrgan",
        accepts_text_only=False,
        requires_image=True,
        max_images=1,
        scales=(2, 4),
        options=(
            OptionSpec(
                "faceEnhance", "bool", "Run GFPGAN face enhancement as well.", default=False
            ),
        ),
        notes="Run at the pinned version REPLICATE_UPSCALE_VERSION; scale 0-10 upstream.",
    ),
}

_RUNNING = ("starting", "processing")


class ReplicateProvider:
    """``real-esrgan`` upscale jobs."""

    name = NAME
    capabilities = CAPABILITIES
    """What request validation checks before submitting (``Providers.capabilities``)."""

    def __init__(
        self,
        *,
        api_token: SecretStr,
        base_url: str,
        outbound: OutboundHttp,
        clock: Clock,
        version: str = DEFAULT_UPSCALE_VERSION,
        prefer_wait_seconds: int = PREFER_WAIT_SECONDS,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.http = ProviderHttp(
            NAME,
            outbound,
            base_url=base_url,
            auth_headers={"Authorization": SecretStr(f"Bearer {api_token.get_secret_value()}")},
            policy=HostPolicy.of(base_url),
            headers={"Accept": "application/json"},
        )
        self.clock = clock
        self.version = version
        self.prefer_wait_seconds = prefer_wait_seconds
        self.deadline_seconds = deadline_seconds

    async def submit(self, request: UpscaleTaskRequest) -> Submitted:
        if request.model not in CAPABILITIES:
            raise PermanentProviderError(
                f"replicate has no model {request.model!r}", code=ErrorCode.INVALID_REQUEST
            )
        body: dict[str, Any] = {
            "version": self.version,
            "input": {
                "image": _image(request.image),
                "scale": request.scale,
                "face_enhance": request.face_enhance,
            },
        }
        if request.webhook is not None:
            body["webhook"] = request.webhook.url
            body["webhook_events_filter"] = ["completed"]
        headers = {}
        if self.prefer_wait_seconds > 0:
            headers["Prefer"] = f"wait={self.prefer_wait_seconds}"
        response = await self.http.request(
            "POST",
            self.http.url("/v1/predictions"),
            json_body=body,
            headers=headers,
            timeout=self.prefer_wait_seconds + 30.0,
            submit=True,
        )
        if response.status not in (200, 201, 202):
            raise self.http.http_error(response, action="create", submit=True)
        prediction = response.body if isinstance(response.body, dict) else {}
        task_id = prediction.get("id")
        if not isinstance(task_id, str) or not task_id:
            self.http.log_failure("create: answer without an id", response.body)
            raise self.http.unavailable("create answered without a prediction id", submit=True)
        urls = prediction.get("urls")
        if not isinstance(urls, dict):
            urls = {}
        get_url, cancel_url = urls.get("get"), urls.get("cancel")
        task = ProviderTask(
            NAME,
            task_id,
            get_url if isinstance(get_url, str) else None,
            self.clock.now(),
            cancel_url=cancel_url if isinstance(cancel_url, str) else None,
        )
        return Submitted(task, self._state(task, prediction))

    async def poll(self, task: ProviderTask) -> TaskState:
        url = task.poll_url
        if not url or not self.http.allows(url):
            url = str(self.http.url(f"/v1/predictions/{task.task_id}"))
        response = await self.http.request("GET", url)
        if response.status != 200:
            raise self.http.http_error(response, action="poll")
        return self._state(task, response.body if isinstance(response.body, dict) else {})

    async def download(self, ready: TaskReady) -> ProviderOutput:
        return await self.http.download(ready.output_url)

    async def cancel(self, task: ProviderTask) -> bool:
        url = task.cancel_url
        if not url or not self.http.allows(url):
            url = str(self.http.url(f"/v1/predictions/{task.task_id}/cancel"))
        response = await self.http.request("POST", url)
        if response.status in (200, 202, 204):
            return True
        raise self.http.http_error(response, action="cancel")

    def _state(self, task: ProviderTask, prediction: dict[str, Any]) -> TaskState:
        status = str(prediction.get("status", ""))
        if status == "succeeded":
            output = prediction.get("output")
            if isinstance(output, list):
                output = output[0] if output else None
            if not isinstance(output, str) or not output:
                self.http.log_failure("succeeded without output", prediction)
                raise PermanentProviderError(
                    "the upscaler finished without an image", code=ErrorCode.TASK_FAILED
                )
            return TaskReady(output)
        if status == "failed":
            self.http.log_failure(f"prediction {task.task_id} failed", prediction.get("error"))
            raise PermanentProviderError(
                "the upscaler failed on this image", code=ErrorCode.TASK_FAILED
            )
        if status == "canceled":
            raise PermanentProviderError(
                "the upscale was cancelled at the provider", code=ErrorCode.CANCELLED
            )
        if status == "aborted":
            log.warning("replicate prediction %s aborted before it started", task.task_id)
            raise RetryableProviderError(
                "the upscaler dropped the task before starting it; trying again",
                code=ErrorCode.ABORTED,
            )
        elapsed = self.http.waited(
            task, self.clock.now(), self.deadline_seconds, status, prediction, "the upscaler"
        )
        return TaskRunning(
            status or "starting", POLL.after(elapsed), queued=status not in _RUNNING[1:]
        )


def _image(image: SourceImage) -> str:
    return image.url if image.url is not None else image.data_uri()
