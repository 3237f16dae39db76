"""``GET``/``HEAD /media/{key}``: the stable reference URLs kept in job results.

For the local folder the file itself is served, with the content type it was saved with,
``nosniff`` (results are derived from user input and must never be interpreted as HTML) and a
cache lifetime. For a storage that signs (Cloud Storage) the answer is a ``302`` to a freshly
signed URL: the app never relays the bytes, and a reference URL never expires.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from app.storage.base import InvalidStorageKey, Storage, validate_key
from app.storage.local import LocalStorage

__all__ = ["media_routes"]

log = logging.getLogger("app.storage")


def media_routes(storage: Storage) -> list[web.RouteDef]:
    """The ``/media/`` route for ``storage`` (a JSON 404 for unknown or unsafe keys)."""

    async def serve_file(request: web.Request) -> web.StreamResponse:
        assert isinstance(storage, LocalStorage)
        key = request.match_info["key"]
        try:
            validate_key(key)
            found = await asyncio.to_thread(storage.locate, key)
        except InvalidStorageKey:
            return _not_found(key)
        if found is None:
            return _not_found(key)
        path, content_type = found
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "public, max-age=3600",
            },
        )

    async def redirect_to_signed(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            validate_key(key)
        except InvalidStorageKey:
            return _not_found(key)
        try:
            location = await storage.fetch_url(key)
        except Exception as error:  # signing needs IAM on Cloud Run, which can be unreachable
            log.warning("could not sign /media/%s: %r", key, error)
            return web.json_response(
                {"error": "unavailable", "message": "the media URL cannot be signed right now"},
                status=503,
                headers={"Retry-After": "5"},
            )
        # The signed URL expires: no cache may keep this answer.
        return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})

    handler = serve_file if isinstance(storage, LocalStorage) else redirect_to_signed
    return [web.get("/media/{key:.+}", handler)]


def _not_found(key: str) -> web.Response:
    return web.json_response(
        {"error": "not_found", "message": f"no media named {key!r}"}, status=404
    )
