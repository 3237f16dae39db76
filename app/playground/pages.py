"""The playground's page, its files, and ``GET /playground/config``.

Files are listed once at start-up: a request names one of them or gets 404, so no path is ever
joined from what a client sent. Everything is revalidated on each load (``no-cache``; the
ETag/Last-Modified answer is a 304), so a service upgraded in place never runs yesterday's
script against today's API.

The config carries each job type's request schema as pydantic generates it from the very
models that validate ``POST /api/jobs/<type>``: the forms take their fields, limits and
defaults from it, so a field another part of the service adds (``options``, ``runAt``,
``webhookUrl``...) shows up in the page, with the API's own bounds, without a second copy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from app.jobs.types import JOB_TYPES
from app.settings import Settings

log = logging.getLogger("app.playground")

STATIC: Final = Path(str(resources.files(__package__) / "static"))
ASSETS_PREFIX: Final = "/playground/static"
CONFIG_PATH: Final = "/playground/config"
# Results may come from another origin (signed Cloud Storage URLs, or API_BASE_URL spelled
# differently from the address in the browser): images and media load from anywhere, while
# scripts, styles and connections stay on this server, and no inline script runs.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src * data: blob:; media-src * data: blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
}
_NO_CACHE: Final = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
_CANCEL_ROUTE: Final = re.compile(r"^/api/jobs/\{[^}]+\}/cancel$")


def asset_files(directory: Path = STATIC) -> dict[str, Path]:
    """The servable files by URL path below ``ASSETS_PREFIX`` (``js/main.js``)."""
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


@cache
def job_type_schemas() -> list[dict[str, Any]]:
    """Each job type's name, model registry (model -> provider) and request JSON schema (by
    alias: the field names clients send)."""
    return [
        {
            "name": name,
            "models": dict(job_type.models),
            "schema": job_type.request.model_json_schema(by_alias=True, mode="validation"),
        }
        for name, job_type in JOB_TYPES.items()
    ]


def has_cancel_route(app: web.Application) -> bool:
    """Whether this service answers ``POST /api/jobs/{id}/cancel`` (the page shows a cancel
    button only then)."""
    return any(_CANCEL_ROUTE.match(resource.canonical) for resource in app.router.resources())


def config_handler(
    settings: Settings, *, dev_sign_in: bool, console_path: str | None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def config(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "environment": settings.app_env,
                "signIn": "development" if dev_sign_in else "token",
                "consolePath": console_path.lstrip("/") if console_path else None,
                "cancel": has_cancel_route(request.app),
                "jobTypes": job_type_schemas(),
            },
            headers=_NO_CACHE,
        )

    return config


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "index.html",
        headers={
            **_NO_CACHE,
            "Content-Type": CONTENT_TYPES[".html"],
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
        },
    )


def assets_handler(
    files: dict[str, Path],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def asset(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(
            path, headers={**_NO_CACHE, "Content-Type": CONTENT_TYPES[path.suffix]}
        )

    return asset


def add_page_routes(
    app: web.Application, settings: Settings, *, dev_sign_in: bool, console_path: str | None
) -> None:
    app.router.add_get("/", index)
    app.router.add_get(
        CONFIG_PATH, config_handler(settings, dev_sign_in=dev_sign_in, console_path=console_path)
    )
    app.router.add_get(ASSETS_PREFIX + "/{path:.+}", assets_handler(asset_files()))

    async def announce(app: web.Application) -> None:
        log.info("playground: %s/ (open it in a browser)", settings.base_url)

    app.on_startup.append(announce)
