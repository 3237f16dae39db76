"""A fake Black Forest Labs API, speaking the contract of BFL's published OpenAPI
(``https://api.bfl.ai/openapi.json``): the field names below are its request schemas',
unknown fields are refused with FastAPI's 422 shape, and statuses are its ``StatusResponse``
enum.

Each submitted task walks a script of statuses, one per poll: ``Pending``, ``Ready``,
``Request Moderated``, ``Content Moderated``, ``Error``, ``Task not found``, or anything else
(an unknown status such as FLUX.2's ``Generating``). ``polling_base`` makes ``polling_url``
name another host, as BFL's global endpoint does.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from daygen_queue import Clock
from tests.providers.fakes.common import FakeServer, steps

__all__ = ["OPENAPI_FIELDS", "FakeBfl"]

# Request schemas of BFL's OpenAPI (FluxPro11Inputs, FluxUltraInput, FluxKontextProInputs).
_COMMON = {"prompt", "seed", "safety_tolerance", "output_format", "prompt_upsampling",
           "webhook_url", "webhook_secret"}  # fmt: skip
OPENAPI_FIELDS: dict[str, set[str]] = {
    "/v1/flux-pro-1.1": _COMMON | {"image_prompt", "width", "height"},
    "/v1/flux-pro-1.1-ultra": _COMMON
    | {"aspect_ratio", "raw", "image_prompt", "image_prompt_strength"},
    "/v1/flux-kontext-pro": _COMMON
    | {"aspect_ratio", "input_image", "input_image_2", "input_image_3", "input_image_4"},
}
STATUSES = {"Task not found", "Pending", "Request Moderated", "Content Moderated", "Ready", "Error"}


@dataclass
class BflTask:
    id: str
    endpoint: str
    body: dict[str, Any]
    script: deque[str]
    polls: int = 0
    sample: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


class FakeBfl(FakeServer):
    """``FakeBfl(api_key=...)``; ``script([...])`` sets the statuses of the next task."""

    def __init__(
        self,
        *,
        api_key: str = "bfl_test_key",
        clock: Clock | None = None,
        polling_base: str | None = None,
        result_ttl: timedelta = timedelta(minutes=10),
        render_time: timedelta | None = None,
    ) -> None:
        super().__init__(clock=clock, result_ttl=result_ttl)
        self.api_key = api_key
        self.render_time = render_time
        """With it, a task is ``Pending`` until ``render_time`` after its submission, then
        ``Ready`` (by the clock, not by the number of polls: for benchmarks)."""
        self.polling_base = polling_base
        self.tasks: dict[str, BflTask] = {}
        self._scripts: deque[list[str]] = deque()
        self.default_script = ["Pending", "Ready"]
        for endpoint in OPENAPI_FIELDS:
            self.app.router.add_post(endpoint, self._submit)
        self.app.router.add_get("/v1/get_result", self._get_result)

    def script(self, *statuses: str) -> None:
        """Statuses the next submitted task reports, one per poll (the last one repeats)."""
        self._scripts.append(steps(statuses, self.default_script))

    def finish(self, task_id: str, status: str = "Ready") -> None:
        """End a task now: its next poll (and its webhook) report ``status``."""
        self.tasks[task_id].script = deque([status])

    async def send_webhook(self, task_id: str, *, secret: str | None = None) -> int:
        """POST the task's outcome to its ``webhook_url`` as BFL's skills describe it:
        ``{id, status, result}`` signed ``X-BFL-Signature: sha256=<hex HMAC(secret, body)>``
        with the ``webhook_secret`` it was given (or ``secret``). Returns the HTTP status."""
        task = self.tasks[task_id]
        status = task.script[0]
        payload: dict[str, Any] = {"id": task.id, "status": status}
        if status == "Ready":
            if task.sample is None:
                task.sample = self.add_file(_render(task.body), "image/png", "sample.png")
            payload["result"] = {"sample": task.sample}
        raw = json.dumps(payload).encode()
        key = (secret if secret is not None else task.body.get("webhook_secret", "")).encode()
        signature = "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-BFL-Signature": signature}
        async with (
            aiohttp.ClientSession() as http,
            http.post(task.body["webhook_url"], data=raw, headers=headers) as response,
        ):
            return response.status

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("x-key") == self.api_key

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"detail": "Not authenticated"}, status=403)
        canned = self.injected("submit")
        if canned is not None:
            return canned
        body = await request.json()
        problems = _validate(request.path, body)
        if problems:
            return web.json_response({"detail": problems}, status=422)
        task_id = str(uuid.uuid4())
        script = self._scripts.popleft() if self._scripts else list(self.default_script)
        task = BflTask(task_id, request.path, body, deque(script), created_at=self.clock.now())
        self.tasks[task_id] = task
        base = self.polling_base or self.url
        return web.json_response(
            {"id": task_id, "polling_url": f"{base}/v1/get_result?id={task_id}", "cost": 4.0}
        )

    async def _get_result(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"detail": "Not authenticated"}, status=403)
        canned = self.injected("poll")
        if canned is not None:
            return canned
        task = self.tasks.get(request.query.get("id", ""))
        if task is None:
            return web.json_response({"id": request.query.get("id"), "status": "Task not found"})
        task.polls += 1
        status = task.script[0]
        if len(task.script) > 1:
            task.script.popleft()
        if self.render_time is not None and task.created_at is not None:
            rendered = self.clock.now() - task.created_at >= self.render_time
            status = "Ready" if rendered else "Pending"
        answer: dict[str, Any] = {"id": task.id, "status": status, "result": None,
                                  "progress": None, "details": None, "preview": None}  # fmt: skip
        if status == "Pending":
            answer["progress"] = min(0.9, 0.3 * task.polls)
        if status == "Ready":
            if task.sample is None:
                task.sample = self.add_file(_render(task.body), "image/png", "sample.png")
            answer["result"] = {"sample": task.sample, "prompt": task.body.get("prompt"),
                                "seed": task.body.get("seed", 42)}  # fmt: skip
        if status in ("Request Moderated", "Content Moderated"):
            answer["details"] = {"moderation_reasons": ["flagged by the fake"]}
        return web.json_response(answer)


def _validate(endpoint: str, body: Any) -> list[dict[str, Any]]:
    """FastAPI's ``HTTPValidationError.detail`` for what the OpenAPI schema refuses."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}]
    problems = [
        {"loc": ["body", name], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
        for name in body
        if name not in OPENAPI_FIELDS[endpoint]
    ]
    for side in ("width", "height"):
        value = body.get(side)
        if value is not None and (not 256 <= value <= 1440 or value % 32):
            problems.append({"loc": ["body", side], "msg": "must be 256-1440, multiple of 32",
                             "type": "value_error"})  # fmt: skip
    if endpoint == "/v1/flux-kontext-pro" and not body.get("prompt"):
        problems.append({"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"})
    tolerance = body.get("safety_tolerance")
    if tolerance is not None and not 0 <= tolerance <= 6:
        problems.append({"loc": ["body", "safety_tolerance"], "msg": "0-6", "type": "value_error"})
    return problems


def _render(body: dict[str, Any]) -> bytes:
    width, height = int(body.get("width") or 64), int(body.get("height") or 64)
    buffer = io.BytesIO()
    Image.new("RGB", (min(width, 64), min(height, 64)), (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def known_statuses() -> Iterable[str]:
    return sorted(STATUSES)
