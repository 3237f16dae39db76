"""The HTTP routes: the public API (the seed's routes) and the internal endpoint where the
queue delivers tasks. Errors follow the JSON contract of ``app.api_errors``: bad input is a 4xx
naming the field, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app import idempotency
from app.api_errors import ApiError, field_error, field_errors, problems_error
from app.auth import AuthError, bearer_token
from app.jobs.cancel import JobAlreadyFinished, JobNotFound, cancel_job
from app.jobs.contract import request_problems
from app.jobs.credits import InsufficientCredits
from app.jobs.planning import PlanningError
from app.jobs.processor import Processor
from app.jobs.records import JobRecord
from app.jobs.schemas import TaskPayload
from app.jobs.submit import submit_job
from app.jobs.types import JOB_TYPES, JobType
from app.jobs.views import job_view, signed_job_view
from app.models import MAX_JOB_ID_LENGTH
from app.providers.guard import FetchGuard, FetchRefused
from app.services import SERVICES
from daygen_queue import InvalidDelivery, TaskDelivery

MAX_LIMIT, DEFAULT_LIMIT = 100, 20


async def authenticated_user(request: web.Request) -> str:
    """The caller's user id (created with the starting credits on first sight), or 401."""
    services = request.app[SERVICES]
    try:
        principal = await services.users.verify(bearer_token(request.headers.get("Authorization")))
    except AuthError as error:
        raise ApiError(401, "unauthorized", str(error)) from None
    await services.store.ensure_user(principal.user_id)
    return principal.user_id


async def json_body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()  # 413 past client_max_size
    if not raw.strip():
        raise field_error("body", "a JSON object is required", "missing")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise field_error("body", "must be a JSON object", "dict_type")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise field_errors(error) from None


def _check_webhook_url(request: web.Request, body: Any) -> None:
    """A ``webhookUrl`` at a private address (not in ``FETCH_ALLOW_HOSTS``) is refused now,
    where that is known without DNS; each delivery checks the resolved addresses again."""
    url = getattr(body, "webhook_url", None)
    if url is None:
        return
    try:
        FetchGuard.from_settings(request.app[SERVICES].settings).check_url(url)
    except FetchRefused as refused:
        raise field_error("webhookUrl", refused.message, "value_error") from None


def _idempotency_key(request: web.Request) -> str | None:
    try:
        return idempotency.read_key(request.headers.get(idempotency.HEADER))
    except idempotency.InvalidIdempotencyKey as error:
        raise field_error(idempotency.HEADER, str(error), "value_error") from None


async def _create_once(
    request: web.Request, user_id: str, job_type: JobType[Any], body: Any, key: str
) -> tuple[JobRecord, bool]:
    """The create under an ``Idempotency-Key`` (``app.idempotency``), its refusals as 4xx."""
    request_print = idempotency.fingerprint(job_type.name, json.loads(await request.read()))
    try:
        return await idempotency.create_once(
            request.app[SERVICES],
            request.app[idempotency.KEYS],
            user_id,
            job_type,
            body,
            key=key,
            request_print=request_print,
        )
    except idempotency.IdempotencyConflict:
        raise field_error(
            idempotency.HEADER,
            "already used with a different request; use a new key for a new request",
            "idempotency_key_reused",
        ) from None
    except idempotency.IdempotencyInFlight:
        raise ApiError(
            409, "request_in_flight", "a request with this Idempotency-Key is still in progress"
        ) from None


def _job_type_route(job_type: JobType[Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def create(request: web.Request) -> web.Response:
        user_id = await authenticated_user(request)
        body = await json_body(request, job_type.request)
        problems = request_problems(request.app[SERVICES], job_type, body)
        if problems:
            raise problems_error(problems)
        _check_webhook_url(request, body)
        key = _idempotency_key(request)
        replayed = False
        try:
            if key is None:
                job = await submit_job(request.app[SERVICES], user_id, job_type, body)
            else:
                job, replayed = await _create_once(request, user_id, job_type, body, key)
        except InsufficientCredits as error:
            raise ApiError(402, "insufficient_credits", str(error)) from None
        except PlanningError as error:
            raise field_error(error.field, error.message, "value_error") from None
        if replayed:
            view = await signed_job_view(job, request.app[SERVICES].storage)
            return web.json_response(
                view, status=202, headers={idempotency.REPLAYED_HEADER: "true"}
            )
        return web.json_response(job_view(job), status=202)

    create.__name__ = f"create_{job_type.name.replace('-', '_')}"
    return create


async def get_job(request: web.Request) -> web.Response:
    user_id = await authenticated_user(request)
    job_id = request.match_info["job_id"]
    job = (
        await request.app[SERVICES].store.get_user_job(user_id, job_id)
        if len(job_id) <= MAX_JOB_ID_LENGTH
        else None
    )
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return web.json_response(await signed_job_view(job, request.app[SERVICES].storage))


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("bad cursor")
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise field_error("cursor", "invalid cursor", "value_error") from None
    return when, job_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also takes '²', '①' and '٣'.
    if re.fullmatch(r"[0-9]{1,3}", raw) is None or not 1 <= int(raw) <= MAX_LIMIT:
        raise field_error("limit", f"must be an integer from 1 to {MAX_LIMIT}", "value_error")
    return int(raw)


async def _cursor_position(request: web.Request, user_id: str, cursor: str) -> tuple[datetime, str]:
    """Where a page starts: after the job whose id is ``cursor`` (the seed's cursor, which
    ``nextCursor`` always is), or, for clients holding one, after an older opaque cursor."""
    if len(cursor) <= MAX_JOB_ID_LENGTH:
        job = await request.app[SERVICES].store.get_user_job(user_id, cursor)
        if job is not None:
            return job.created_at, job.id
    try:
        return decode_cursor(cursor)
    except ApiError:
        raise field_error(
            "cursor",
            "must be the id of one of your jobs (a previous page's nextCursor)",
            "value_error",
        ) from None


async def list_jobs(request: web.Request) -> web.Response:
    user_id = await authenticated_user(request)
    limit = _limit(request.query.get("limit"))
    cursor = request.query.get("cursor")
    after = await _cursor_position(request, user_id, cursor) if cursor else None
    rows = await request.app[SERVICES].store.list_jobs(user_id, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = page[-1].id if more and page else None
    storage = request.app[SERVICES].storage
    views = await asyncio.gather(*(signed_job_view(row, storage) for row in page))
    return web.json_response({"jobs": views, "nextCursor": next_cursor})


async def cancel(request: web.Request) -> web.Response:
    """``POST /api/jobs/{jobId}/cancel``: the job ``CANCELLED`` (200), 404 for an unknown or
    another user's job, 409 naming the status of a finished one (``app.jobs.cancel``)."""
    user_id = await authenticated_user(request)
    job_id = request.match_info["job_id"]
    if len(job_id) > MAX_JOB_ID_LENGTH:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    services = request.app[SERVICES]
    try:
        job = await cancel_job(services, job_id, user_id=user_id)
    except JobNotFound:
        raise ApiError(404, "not_found", f"no job {job_id!r}") from None
    except JobAlreadyFinished as finished:
        return web.json_response(
            {"error": "job_finished", "message": str(finished), "status": finished.status},
            status=409,
        )
    return web.json_response(await signed_job_view(job, services.storage))


async def me(request: web.Request) -> web.Response:
    user_id = await authenticated_user(request)
    user = await request.app[SERVICES].store.get_user(user_id)
    assert user is not None  # ensure_user just made sure
    return web.json_response({"id": user.id, "credits": user.credits})


async def unknown_job_type(request: web.Request) -> web.Response:
    known = ", ".join(JOB_TYPES)
    raise ApiError(
        404,
        "not_found",
        f"unknown job type {request.match_info['job_id']!r}; POST to one of: {known}",
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_task(request: web.Request) -> web.Response:
    """``POST /internal/tasks/{type}``: a delivery from the queue, authenticated (internal key
    or Cloud Tasks OIDC token) and checked, then run by the processor."""
    services = request.app[SERVICES]
    refused = await services.internal.refusal(request.headers)
    if refused is not None:
        return refused
    job_type = JOB_TYPES.get(request.match_info["type"])
    if job_type is None:
        return web.json_response(
            {"error": "not_found", "message": f"unknown job type {request.match_info['type']!r}"},
            status=404,
        )
    try:
        delivery = TaskDelivery.from_headers(request.headers)
    except InvalidDelivery as exc:
        return web.json_response({"error": "invalid_delivery", "message": str(exc)}, status=400)
    try:
        payload = TaskPayload.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors()]
        return web.json_response(
            {"error": "invalid_task", "message": f"invalid task body: {', '.join(fields)}"},
            status=400,
        )
    outcome = await Processor(services).process(job_type, delivery, payload)
    return web.json_response(outcome.body, status=outcome.status, headers=outcome.headers)


def api_routes() -> list[web.RouteDef]:
    routes = [
        web.post(f"/api/jobs/{name}", _job_type_route(spec)) for name, spec in JOB_TYPES.items()
    ]
    return [
        *routes,
        web.get("/api/jobs", list_jobs),
        web.get("/api/jobs/{job_id}", get_job),
        web.post("/api/jobs/{job_id}", unknown_job_type),
        web.post("/api/jobs/{job_id}/cancel", cancel),
        web.get("/api/me", me),
        web.get("/healthz", health),
        web.post("/internal/tasks/{type}", handle_task),
    ]
