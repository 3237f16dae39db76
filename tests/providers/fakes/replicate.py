"""A fake Replicate API: predictions as the official ``replicate`` SDK reads them (``id``,
``model``, ``version``, ``status``, ``input``, ``output``, ``urls``...).

Each prediction walks a script of statuses, one per read: ``starting``, ``processing``,
``succeeded`` (``output`` is one expiring link, as Real-ESRGAN's schema: a single URI),
``failed``, ``canceled`` or ``aborted``. With ``Prefer: wait`` the create's answer is already
the first scripted step (``succeeded`` when the model "finishes within the wait", or
``processing`` when the wait runs out early); without it, ``starting``.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image
from standardwebhooks.webhooks import Webhook

from daygen_queue import Clock
from tests.providers.fakes.common import FakeServer, bearer, steps

__all__ = ["FakeReplicate"]

_FINAL = ("succeeded", "failed", "canceled", "aborted")


@dataclass
class Prediction:
    id: str
    version: str
    input: dict[str, Any]
    script: deque[str]
    created_at: str
    status: str = "starting"
    output: str | None = None
    reads: int = 0
    webhook: str | None = None


class FakeReplicate(FakeServer):
    def __init__(
        self,
        *,
        api_token: str = "r8_test_token",
        clock: Clock | None = None,
        known_versions: tuple[str, ...] = (),
        result_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(clock=clock, result_ttl=result_ttl)
        self.api_token = api_token
        self.known_versions = known_versions
        self.predictions: dict[str, Prediction] = {}
        self._scripts: deque[list[str]] = deque()
        self.default_script = ["processing", "succeeded"]
        self.app.router.add_post("/v1/predictions", self._create)
        self.app.router.add_get("/v1/predictions/{id}", self._get)
        self.app.router.add_post("/v1/predictions/{id}/cancel", self._cancel)

    def script(self, *statuses: str) -> None:
        self._scripts.append(steps(statuses, self.default_script))

    def finish(self, prediction_id: str, status: str = "succeeded") -> None:
        """End a prediction now (its next read, and its webhook, show ``status``)."""
        prediction = self.predictions[prediction_id]
        prediction.script = deque([status])
        self._advance(prediction)

    async def send_webhook(
        self,
        prediction_id: str,
        secret: str,
        *,
        webhook_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> int:
        """POST the prediction to its ``webhook`` as Replicate does: Standard Webhooks headers
        (``webhook-id`` stable across retries), signed with the account's ``whsec_`` secret."""
        prediction = self.predictions[prediction_id]
        raw = json.dumps(self._json(prediction))
        message_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        when = timestamp or datetime.now(UTC)
        signature = Webhook(secret).sign(message_id, when, raw)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(prediction.webhook or "", data=raw, headers=headers) as response,
        ):
            return response.status

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if bearer(request) != self.api_token:
            return web.json_response({"detail": "Invalid token."}, status=401)
        canned = self.injected("submit")
        if canned is not None:
            return canned
        body = await request.json()
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or (
            self.known_versions and version.split(":")[-1] not in self.known_versions
        ):
            return web.json_response(
                {"detail": "Invalid version or not permitted.", "status": 422}, status=422
            )
        inputs = body.get("input")
        if not isinstance(inputs, dict) or not isinstance(inputs.get("image"), str):
            return web.json_response(
                {"detail": [{"loc": ["body", "input", "image"], "msg": "Field required"}]},
                status=422,
            )
        script = self._scripts.popleft() if self._scripts else list(self.default_script)
        prediction = Prediction(
            str(uuid.uuid4()).replace("-", "")[:26],
            version.split(":")[-1],
            inputs,
            deque(script),
            self.clock.now().isoformat(),
        )
        webhook = body.get("webhook")
        prediction.webhook = webhook if isinstance(webhook, str) else None
        self.predictions[prediction.id] = prediction
        if re.fullmatch(r"wait(=\d+)?", request.headers.get("Prefer", "").strip()):
            self._advance(prediction)
        return web.json_response(self._json(prediction), status=201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if bearer(request) != self.api_token:
            return web.json_response({"detail": "Invalid token."}, status=401)
        canned = self.injected("poll")
        if canned is not None:
            return canned
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return web.json_response({"detail": "Not found."}, status=404)
        self._advance(prediction)
        return web.json_response(self._json(prediction))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        if bearer(request) != self.api_token:
            return web.json_response({"detail": "Invalid token."}, status=401)
        canned = self.injected("cancel")
        if canned is not None:
            return canned
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return web.json_response({"detail": "Not found."}, status=404)
        if prediction.status not in _FINAL:
            prediction.status = "canceled"
        return web.json_response(self._json(prediction))

    def _advance(self, prediction: Prediction) -> None:
        if prediction.status in _FINAL:
            return
        prediction.reads += 1
        prediction.status = prediction.script[0]
        if len(prediction.script) > 1:
            prediction.script.popleft()

    def _json(self, p: Prediction) -> dict[str, Any]:
        if p.status == "succeeded" and p.output is None:
            p.output = self.add_file(_upscaled(p.input), "image/png", "output.png")
        base = f"{self.url}/v1/predictions/{p.id}"
        return {
            "id": p.id,
            "model": "nightmareai/real-esrgan",
            "version": p.version,
            "input": p.input,
            "logs": "" if p.status == "starting" else "Running upscale...\n",
            "output": p.output if p.status == "succeeded" else None,
            "data_removed": False,
            "error": "CUDA out of memory (raw provider text)" if p.status == "failed" else None,
            "status": p.status,
            "created_at": p.created_at,
            "started_at": None if p.status == "starting" else p.created_at,
            "completed_at": p.created_at if p.status in _FINAL else None,
            "metrics": {"predict_time": 1.5} if p.status == "succeeded" else {},
            "urls": {
                "get": base,
                "cancel": f"{base}/cancel",
                "stream": f"{self.url}/stream/{p.id}",
                "web": f"https://replicate.invalid/p/{p.id}",
            },
        }


def _upscaled(inputs: dict[str, Any]) -> bytes:
    scale = int(inputs.get("scale", 4))
    buffer = io.BytesIO()
    Image.new("RGB", (8 * scale, 8 * scale), (220, 200, 20)).save(buffer, "PNG")
    return buffer.getvalue()
