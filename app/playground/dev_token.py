"""``POST /api/dev/token``: a development token for any user id, for the playground's "sign in
as" box (what ``python -m app token USER_ID`` prints, without a terminal).

Registered only outside production (``APP_ENV=production`` answers 404: the route does not
exist) and only when the service signs its own HS256 tokens. It hands out tokens for anyone,
so a page on another site must not be able to fetch one through a developer's browser: a
request whose ``Origin`` is not this server's own is refused (browsers send ``Origin`` with
every cross-site POST; curl sends none).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api import json_body
from app.api_errors import ApiError
from app.auth import USER_ID_PATTERN, issue_dev_token
from app.jobs.views import iso
from app.settings import Settings

DEV_TOKEN_PATH: Final = "/api/dev/token"
DEV_TOKEN_TTL: Final = timedelta(hours=12)


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_id: str = Field(alias="userId")

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if not USER_ID_PATTERN.match(value):
            raise ValueError("a user id is 1-128 characters of A-Z a-z 0-9 . _ : @ | -")
        return value


def dev_token_handler(settings: Settings) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def dev_token(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise ApiError(403, "forbidden", f"cross-site token request from {origin} refused")
        body: DevTokenRequest = await json_body(request, DevTokenRequest)
        now = datetime.now(UTC)
        token = issue_dev_token(settings, body.user_id, ttl=DEV_TOKEN_TTL, now=now)
        return web.json_response(
            {"token": token, "userId": body.user_id, "expiresAt": iso(now + DEV_TOKEN_TTL)},
            headers={"Cache-Control": "no-store"},
        )

    return dev_token
