"""``GET /api/openapi.json`` (OpenAPI 3.1, built from :data:`app.openapi_table.OPERATIONS`
and the pydantic models that validate requests) and ``GET /api/docs``, a reference page of
our own that renders it in the browser with no CDN (``app/static/api-docs.html``)."""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from app.jobs.types import JOB_TYPES
from app.openapi_table import OPERATIONS, Operation, Response

__all__ = ["build_openapi", "openapi_routes"]

_REF = "#/components/schemas/{model}"
_VERSION = "0.1.0"
_INFO_DESCRIPTION = """\
Generative-AI jobs (image, video, upscale, batch) on Google Cloud Tasks.

**Authentication**: `Authorization: Bearer <JWT>` (HS256 with `JWT_SECRET`, or RS256 through
`JWT_JWKS_URL`; `sub` is the user id, `exp` is required). `python -m app token USER` prints a
development token.

**Errors** are JSON: `{"error": code, "message": text}`, and on a 422 `fields`, each naming
the field as it was sent (`options.width`, `prompts[3]`, `imageUrls[0]`). A refused request
is never charged. Live updates: Socket.IO event `jobUpdate`, or `GET /api/jobs/{jobId}/events`
(server-sent events).
"""


def _name(model: Any) -> str:
    return str(getattr(model, "__name__", None) or model)


def _schema(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` to ``model``'s schema, adding it (and what it refers to) to ``components``."""
    name = _name(model)
    if name not in components:
        mode: Literal["validation", "serialization"] = (
            "validation" if _is_request(model) else "serialization"
        )
        schema = TypeAdapter(model).json_schema(by_alias=True, ref_template=_REF, mode=mode)
        for sub, definition in schema.pop("$defs", {}).items():
            components.setdefault(sub, definition)
        components[name] = schema
    return {"$ref": _REF.format(model=name)}


def _is_request(model: Any) -> bool:
    return any(model is job_type.request for job_type in JOB_TYPES.values())


def _response(answer: Response, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.model is not None:
        out["content"] = {"application/json": {"schema": _schema(answer.model, components)}}
    if answer.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return out


def _operation_id(op: Operation) -> str:
    words = op.path.strip("/").replace("{", "").replace("}", "")
    return f"{op.method}_{words.replace('/', '_').replace('-', '_')}"


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "tags": [op.tag],
        "responses": {
            str(code): _response(answer, components) for code, answer in op.responses.items()
        },
    }
    if op.description:
        out["description"] = op.description
    out["security"] = [{"bearerAuth": []}] if op.auth == "bearer" else []
    if op.parameters:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "description": p.description,
                "required": p.required or p.where == "path",
                "schema": p.schema,
            }
            for p in op.parameters
        ]
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(op.body, components)}},
        }
    return out


def _with_model_choices(components: dict[str, Any]) -> None:
    """``model`` and ``provider`` are checked against each type's registry by a validator;
    the document lists the registry's names so clients (and fuzzers) see them."""
    for job_type in JOB_TYPES.values():
        schema = components.get(_name(job_type.request))
        if not schema:
            continue
        properties = schema.get("properties", {})
        if "model" in properties:
            properties["model"]["enum"] = sorted(job_type.request.models)
        if "provider" in properties:
            names = sorted(set(job_type.request.models.values()))
            properties["provider"] = {
                "anyOf": [{"type": "string", "enum": names}, {"type": "null"}],
                "default": None,
                "description": "Must be the provider of `model` (may be left out).",
            }


@cache
def _document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, components)
    _with_model_choices(components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "daygen-queue", "version": _VERSION, "description": _INFO_DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def build_openapi(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy: callers may change it)."""
    document = copy.deepcopy(_document())
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


async def openapi_json(request: web.Request) -> web.Response:
    from app.services import SERVICES

    base = request.app[SERVICES].settings.base_url
    return web.json_response(build_openapi(base), headers={"Cache-Control": "no-cache"})


@cache
def _docs_page() -> str:
    return resources.files("app").joinpath("static/api-docs.html").read_text(encoding="utf-8")


async def api_docs(request: web.Request) -> web.Response:
    return web.Response(text=_docs_page(), content_type="text/html")


def openapi_routes() -> list[web.RouteDef]:
    return [web.get("/api/openapi.json", openapi_json), web.get("/api/docs", api_docs)]


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """One model's schema as the document holds it (for tests and tools)."""
    return build_openapi()["components"]["schemas"][_name(model)]  # type: ignore[no-any-return]
