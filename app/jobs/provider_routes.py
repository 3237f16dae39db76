"""Internal routes of remote provider work: poll deliveries from the queue, and the providers'
webhooks.

* ``POST /internal/providers/poll/{type}``: a poll task (``app.jobs.provider_polling``),
  authenticated as every task delivery (internal key or Cloud Tasks OIDC token).
* ``POST /internal/providers/{provider}/webhook``: BFL and Replicate calling back when a task
  ends. A verified call only creates a poll task due now, named after the delivery (Replicate's
  ``webhook-id``, stable across its retries; a digest of BFL's body), so a repeated webhook is
  one poll; the poll asks the provider itself, so polling stays the source of truth and a
  forged or stale webhook can at most make us poll early.

  - Replicate signs with Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``; ``REPLICATE_WEBHOOK_SECRET``), verified with the
    ``standardwebhooks`` package, which also refuses timestamps more than 5 minutes off.
  - BFL gets a per-job ``webhook_secret`` with each task. Its signature scheme is not
    documented by BFL; accepted are ``X-BFL-Signature: sha256=<hex HMAC-SHA256(secret, raw
    body)>`` (the scheme BFL's published skills describe) or the secret echoed back in the
    body's ``webhook_secret``, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.jobs.provider_batches import RemoteBatches
from app.jobs.provider_polling import POLL_PATH, RemoteJobs
from app.jobs.provider_requests import webhook_secret
from app.jobs.types import JOB_TYPES
from app.metrics import outcome_word
from app.models import MAX_JOB_ID_LENGTH
from app.services import SERVICES
from daygen_queue import TaskAlreadyExists

__all__ = ["provider_routes"]

log = logging.getLogger("app.jobs.provider_routes")

WEBHOOK_PATH = "/internal/providers/{provider}/webhook"
_MAX_WEBHOOK_BYTES = 256 * 1024


class PollPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: str = Field(alias="jobId", min_length=1, max_length=MAX_JOB_ID_LENGTH)
    attempt: StrictInt = Field(ge=1, le=1000)
    poll: StrictInt = Field(ge=0, le=100_000)
    hook: StrictBool = False
    chunk: StrictInt | None = Field(None, ge=0, le=1000)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


async def handle_poll(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    refused = await services.internal.refusal(request.headers)
    if refused is not None:
        return refused
    job_type = JOB_TYPES.get(request.match_info["type"])
    if job_type is None:
        return _json(404, {"error": "not_found", "message": "unknown job type"})
    try:
        payload = PollPayload.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors()]
        return _json(400, {"error": "invalid_task", "message": f"invalid poll: {fields}"})
    if payload.chunk is not None:
        answer = await RemoteBatches(services).poll(
            job_type, payload.job_id, payload.chunk, payload.attempt, payload.poll
        )
    else:
        answer = await RemoteJobs(services).poll(
            job_type, payload.job_id, payload.attempt, payload.poll, hook=payload.hook
        )
    services.metrics.poll(job_type.name, outcome_word(answer.status, answer.body))
    return _json(answer.status, answer.body, answer.headers)


async def handle_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    provider = request.match_info["provider"]
    if provider not in ("bfl", "replicate") or not services.settings.provider_webhooks:
        return _json(404, {"error": "not_found", "message": "no webhook for this provider"})
    raw = await request.read()
    if len(raw) > _MAX_WEBHOOK_BYTES:
        return _json(413, {"error": "payload_too_large", "message": "webhook body too large"})
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(400, {"error": "invalid_json", "message": "webhook body is not JSON"})
    task_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(task_id, str) or not task_id:
        return _json(400, {"error": "invalid_webhook", "message": "id is required"})
    remote = RemoteJobs(services)
    delivery = ""
    if provider == "replicate":
        secret = services.settings.replicate_webhook_secret
        if secret is None:
            return _json(404, {"error": "not_found", "message": "Replicate webhooks are off"})
        try:
            Webhook(secret.get_secret_value()).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            log.warning("replicate webhook refused: bad signature or timestamp")
            return _json(401, {"error": "unauthorized", "message": "invalid signature"})
        delivery = request.headers.get("webhook-id", "")
    stored = await remote.tasks.find(provider, task_id)
    if stored is None:
        # Not ours (or long gone): acknowledged so the provider stops retrying.
        return _json(200, {"result": "unknown_task"})
    if provider == "bfl":
        expected = webhook_secret(services, stored.job_id)
        if expected is None or not _bfl_authentic(request, raw, body, expected):
            log.warning("bfl webhook refused for task %s: bad secret", task_id)
            return _json(401, {"error": "unauthorized", "message": "invalid signature"})
        delivery = hashlib.sha256(raw).hexdigest()
    job = await services.store.get_job(stored.job_id)
    job_type = JOB_TYPES.get(job.type) if job is not None else None
    if job is None or job_type is None or remote.adapter_for(job.type, job.params) is None:
        # Gone, or a batch image (whose tasks never ask for webhooks): the chunk's polls.
        return _json(200, {"result": "unknown_job"})
    digest = hashlib.sha256(delivery.encode()).hexdigest()[:24]
    task = remote.poll_task(
        job_type,
        job.id,
        stored.attempt,
        stored.polls,
        0.0,
        name=f"{job.id}-a{stored.attempt}-h{digest}",
        hook=True,
    )
    try:
        await services.queue.create_task(job_type.queue_for(job.priority), task)
    except TaskAlreadyExists:
        return _json(200, {"result": "duplicate"})
    return _json(200, {"result": "polling"})


def _bfl_authentic(request: web.Request, raw: bytes, body: dict[str, Any], secret: str) -> bool:
    signature = request.headers.get("X-BFL-Signature", "")
    if signature:
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.encode(), expected.encode())
    echoed = body.get("webhook_secret")
    return isinstance(echoed, str) and hmac.compare_digest(echoed.encode(), secret.encode())


def provider_routes() -> list[web.RouteDef]:
    return [
        web.post(POLL_PATH, handle_poll),
        web.post(WEBHOOK_PATH, handle_webhook),
    ]
