"""The jobs playground: the page a person lands on at ``/`` to make images and watch them arrive.

Plain files in ``static/`` (HTML, CSS, ES modules, the vendored ``socket.io-client``): no build
step, nothing from a CDN. The page talks only to the public API (``/api/...``, Socket.IO,
SSE) with a bearer token, as any client would; the two things it needs that the API does not
answer are here:

- ``GET /playground/config``: what the forms are made from (each job type's request schema,
  as pydantic validates it, and its model registry) and which sign-in the deployment offers;
- ``POST /api/dev/token``: outside production, a development token for any user id (the
  "sign in as" box). In production the route does not exist (404) and the page asks for a
  pasted token.
"""

from __future__ import annotations

from aiohttp import web

from app.playground.dev_token import DEV_TOKEN_PATH, dev_token_handler
from app.playground.pages import CONFIG_PATH, add_page_routes
from app.settings import Settings

__all__ = ["CONFIG_PATH", "DEV_TOKEN_PATH", "add_playground"]


def add_playground(app: web.Application, settings: Settings, *, console_path: str | None) -> None:
    """The page at ``/``, its files and config, and (outside production, with an HS256
    secret to sign with) the development sign-in."""
    dev_sign_in = not settings.is_production and settings.jwt_secret is not None
    add_page_routes(app, settings, dev_sign_in=dev_sign_in, console_path=console_path)
    if dev_sign_in:
        app.router.add_post(DEV_TOKEN_PATH, dev_token_handler(settings))
