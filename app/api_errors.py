"""The API's JSON error contract and its two middlewares: every error is a JSON object
``{"error": code, "message": text}`` (validation errors add ``fields``, each naming the
offending field), an unexpected exception is logged and answered 500 without internals, and
CORS is answered for the REST API and media only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from pydantic import ValidationError

from app.services import SERVICES

log = logging.getLogger("app.api")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return web.json_response(body, status=self.status, headers=headers)


def field_error(field: str, message: str, type: str) -> ApiError:
    """422 for one field: ``type`` is the kind of error (pydantic's names: ``missing``,
    ``value_error``...)."""
    return ApiError(
        422,
        "validation_error",
        f"{field}: {message}",
        [{"field": field, "message": message, "type": type}],
    )


def field_errors(exc: ValidationError) -> ApiError:
    """422 naming each field (``prompts[3]``, ``imageUrl``) as the client spelled it."""
    fields = []
    for error in exc.errors(include_url=False):
        location = ""
        for part in error["loc"]:
            location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
        message = error["msg"].removeprefix("Value error, ")
        fields.append({"field": location or "body", "message": message, "type": error["type"]})
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return ApiError(422, "validation_error", summary, fields)


def problems_error(problems: dict[str, str]) -> ApiError:
    """422 for checks made after the body's shape (``app.jobs.contract``)."""
    fields = [{"field": f, "message": m, "type": "value_error"} for f, m in problems.items()]
    summary = "; ".join(f"{f}: {m}" for f, m in problems.items())
    return ApiError(422, "validation_error", summary, fields)


_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into the JSON error contract."""
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except RequestPayloadError:
        # A body that does not decode (a corrupt gzip or deflate stream): the client's fault.
        # Marking the stream finished stops aiohttp from reading (and logging) it again.
        # The connection is closed after the answer: its stream is past repair.
        request.content.feed_eof()
        encoding = request.headers.get("Content-Encoding", "none")
        response = web.json_response(
            {
                "error": "bad_request",
                "message": f"the body could not be decoded (Content-Encoding: {encoding[:40]})",
            },
            status=400,
        )
        response.force_close()
        return response
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _STATUS_CODES.get(error.status, "error")
        message = error.reason
        if error.status == 413:
            limit = request.app[SERVICES].settings.max_body_bytes
            message = f"request body too large (limit {limit} bytes)"
        elif error.status == 404:
            message = f"no route for {request.method} {request.path}"
        return web.json_response(
            {"error": code, "message": message}, status=error.status, headers=_allow(error)
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            {"error": "internal_error", "message": "internal server error"}, status=500
        )


def _allow(error: web.HTTPException) -> dict[str, str] | None:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else None


_CORS_PATHS = ("/api/", "/media/", "/healthz")


def cors_middleware(allowed: list[str]) -> Any:
    """CORS for the REST API and media (the seed's frontend runs on another origin). Socket.IO
    answers its own CORS; the internal endpoint gets none."""
    origins = set(allowed)
    allow_all = "*" in origins

    @web.middleware
    async def cors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith(_CORS_PATHS):
            return await handler(request)
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        response = web.Response(status=204) if preflight else await handler(request)
        if allow_all or origin in origins:
            response.headers["Access-Control-Allow-Origin"] = "*" if allow_all else origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Expose-Headers"] = "Idempotent-Replayed"
            if preflight:
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = (
                    "Authorization, Content-Type, Idempotency-Key"
                )
                response.headers["Access-Control-Max-Age"] = "600"
        return response

    return cors
