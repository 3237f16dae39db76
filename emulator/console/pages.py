"""The console's page and files, and the one thing it needs that Cloud Tasks cannot answer.

The page is plain files in ``static/`` beside this module (HTML, CSS, ES modules: no build
step, nothing from a CDN), served as they are. Every URL in them is relative, so the same files
work at ``/`` of ``python -m emulator`` and under a prefix such as the app's ``/_emulator/``.

``console/projects`` lists the projects the emulator has seen: Cloud Tasks has no ListProjects
(Google's console asks Resource Manager), and the console needs a starting point. Everything
else the page shows comes from the REST API (``/v2/...``, ``/v2beta3/...`` for queue stats)
or the event stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Final

from aiohttp import web

from emulator.service import CloudTasksService

STATIC: Final = Path(str(resources.files(__package__) / "static"))
ASSETS_PREFIX: Final = "/console/static"
# The page loads nothing from elsewhere and runs no inline script: a CSP that says so makes
# an injected script inert even if some value ever escaped textContent.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Revalidated on every load (ETag / Last-Modified make that a 304): a console upgraded in
# place must never run yesterday's script against today's API.
_NO_CACHE: Final = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def asset_files(directory: Path = STATIC) -> dict[str, Path]:
    """The servable files, by URL path below ``ASSETS_PREFIX`` (``js/api.js``), listed once
    at start-up: a request names one of these or gets 404, so no path is ever joined from
    what a client sent."""
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


def index_handler(page: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            page,
            headers={
                **_NO_CACHE,
                "Content-Type": CONTENT_TYPES[".html"],
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Referrer-Policy": "no-referrer",
            },
        )

    return index


def assets_handler(
    files: dict[str, Path],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def asset(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        headers = {**_NO_CACHE, "Content-Type": CONTENT_TYPES[path.suffix]}
        return web.FileResponse(path, headers=headers)

    return asset


def projects_handler(
    service: CloudTasksService,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def projects(request: web.Request) -> web.StreamResponse:
        ids = sorted({parent.split("/")[1] for parent in service.known_parents()})
        return web.json_response({"projects": ids})

    return projects


@web.middleware
async def refuse_cross_site_writes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A page on another site must not purge a developer's queues through their browser.

    Browsers send ``Origin`` with every cross-site POST, PATCH and DELETE (a plain form POST
    needs no CORS preflight); Google's clients and curl send none. So a write whose ``Origin``
    is not this server's own is refused, and nothing else changes."""
    origin = request.headers.get("Origin")
    if origin is None or request.method in _SAFE_METHODS:
        return await handler(request)
    if origin == f"{request.scheme}://{request.host}":
        return await handler(request)
    return web.json_response(
        {
            "error": {
                "code": 403,
                "message": f"Cross-site {request.method} from {origin} refused.",
                "status": "PERMISSION_DENIED",
            }
        },
        status=403,
    )


def add_page_routes(app: web.Application, service: CloudTasksService) -> None:
    app.router.add_get("/", index_handler(STATIC / "index.html"))
    app.router.add_get("/console/projects", projects_handler(service))
    app.router.add_get(ASSETS_PREFIX + "/{path:.+}", assets_handler(asset_files()))
