"""A fake Runway API (``X-Runway-Version: 2024-11-06``), field names as the official
``runwayml`` SDK sends them (camelCase ``promptImage``, ``promptText``).

Each task walks a script of steps, one per poll: ``PENDING``, ``THROTTLED``, ``RUNNING``
(progress grows), ``SUCCEEDED`` (``output`` is one expiring link), ``FAILED:<failureCode>``
(e.g. ``FAILED:SAFETY.INPUT.TEXT``) or ``CANCELLED``. ``DELETE /v1/tasks/{id}`` cancels a
task that is not finished and deletes one that is (it then answers 404).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from daygen_queue import Clock
from tests.providers.fakes.common import FakeServer, bearer, steps

__all__ = ["FakeRunway"]

VERSION = "2024-11-06"
IMAGE_TO_VIDEO = {"gen4_turbo": ("1280:720", "720:1280", "1104:832", "832:1104", "960:960",
                                 "1584:672")}  # fmt: skip
TEXT_TO_VIDEO = {"gen4.5": ("1280:720", "720:1280")}
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@dataclass
class RunwayTask:
    id: str
    endpoint: str
    body: dict[str, Any]
    script: deque[str]
    created_at: str
    polls: int = 0
    status: str = "PENDING"
    output: str | None = None
    deleted: bool = False


class FakeRunway(FakeServer):
    def __init__(
        self,
        *,
        api_secret: str = "key_test_secret",
        clock: Clock | None = None,
        result_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        super().__init__(clock=clock, result_ttl=result_ttl)
        self.api_secret = api_secret
        self.tasks: dict[str, RunwayTask] = {}
        self._scripts: deque[list[str]] = deque()
        self.default_script = ["PENDING", "RUNNING", "SUCCEEDED"]
        self.app.router.add_post("/v1/image_to_video", self._create)
        self.app.router.add_post("/v1/text_to_video", self._create)
        self.app.router.add_get("/v1/tasks/{id}", self._get)
        self.app.router.add_delete("/v1/tasks/{id}", self._delete)

    def script(self, *statuses: str) -> None:
        self._scripts.append(steps(statuses, self.default_script))

    def _refusal(self, request: web.Request) -> web.Response | None:
        if bearer(request) != self.api_secret:
            return web.json_response({"error": "Invalid API secret"}, status=401)
        if request.headers.get("X-Runway-Version") != VERSION:
            return web.json_response(
                {"error": "The X-Runway-Version header is required (2024-11-06)"}, status=400
            )
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        canned = self.injected("submit")
        if canned is not None:
            return canned
        body = await request.json()
        problem = _validate(request.path, body)
        if problem:
            return web.json_response({"error": problem}, status=400)
        script = self._scripts.popleft() if self._scripts else list(self.default_script)
        task = RunwayTask(
            str(uuid.uuid4()), request.path, body, deque(script), self.clock.now().isoformat()
        )
        self.tasks[task.id] = task
        return web.json_response({"id": task.id, "estimatedCost": {"credits": 25}})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        canned = self.injected("poll")
        if canned is not None:
            return canned
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.deleted:
            return web.json_response({"error": "Task not found"}, status=404)
        if task.status not in ("SUCCEEDED", "FAILED", "CANCELLED"):
            task.polls += 1
            task.status = task.script[0]
            if len(task.script) > 1:
                task.script.popleft()
        answer: dict[str, Any] = {"id": task.id, "createdAt": task.created_at}
        status, _, code = task.status.partition(":")
        answer["status"] = status
        # Unfinished tasks carry the estimate, finished ones what was charged (the SDK's
        # task models require each).
        if status in ("PENDING", "THROTTLED", "RUNNING"):
            answer["estimatedCost"] = {"credits": 25}
        else:
            answer["cost"] = {"credits": 0 if status == "CANCELLED" else 25}
        if status == "RUNNING":
            answer["progress"] = round(min(0.95, 0.25 * task.polls), 2)
        if status == "SUCCEEDED":
            if task.output is None:
                task.output = self.add_file(FAKE_MP4, "video/mp4", "output.mp4")
            answer["output"] = [task.output]
        if status == "FAILED":
            answer["failure"] = f"Generation failed ({code or 'unknown'}): raw provider text"
            if code:
                answer["failureCode"] = code
        return web.json_response(answer)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        canned = self.injected("cancel")
        if canned is not None:
            return canned
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.deleted:
            return web.json_response({"error": "Task not found"}, status=404)
        if task.status.partition(":")[0] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            task.deleted = True
        else:
            task.status = "CANCELLED"
        return web.Response(status=204)


def _validate(endpoint: str, body: Any) -> str | None:
    """Runway answers 400 ``{"error": ...}`` for an invalid body."""
    if not isinstance(body, dict):
        return "Body must be an object"
    models = IMAGE_TO_VIDEO if endpoint == "/v1/image_to_video" else TEXT_TO_VIDEO
    model = body.get("model")
    if model not in models:
        return f"Invalid model {model!r} for {endpoint}"
    if body.get("ratio") not in models[model]:
        return f"Invalid ratio {body.get('ratio')!r}"
    duration = body.get("duration")
    if not isinstance(duration, int) or not 2 <= duration <= 10:
        return "duration must be an integer from 2 to 10"
    if endpoint == "/v1/image_to_video":
        image = body.get("promptImage")
        if not isinstance(image, str | list) or not image:
            return "promptImage is required"
        if isinstance(image, str) and not image.startswith(("https://", "http://", "data:image/")):
            return "promptImage must be an HTTPS URL or a data URI"
    elif not isinstance(body.get("promptText"), str) or not body["promptText"]:
        return "promptText is required"
    text = body.get("promptText")
    if text is not None and len(text) > 1000:
        return "promptText is longer than 1000 characters"
    allowed = {"model", "promptImage", "promptText", "ratio", "duration", "seed",
               "contentModeration"}  # fmt: skip
    extra = set(body) - allowed
    return f"Unknown fields: {sorted(extra)}" if extra else None
