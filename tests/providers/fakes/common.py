"""What every fake provider shares: a loopback aiohttp server, a record of the requests it got,
scripted one-off answers (``inject``), and result files whose links expire.

A fake runs each task through a script of states, one step per poll (the last step repeats),
so a test says "Pending twice, then Ready" and gets exactly that. Time (link expiry, task
timestamps) comes from an injected ``Clock``: a test on a ``VirtualClock`` moves it by hand.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from daygen_queue import Clock, SystemClock

__all__ = ["Canned", "FakeServer", "RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Canned:
    """An answer given instead of the real one (a 429, a 502...)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        if self.body is None:
            return web.Response(status=self.status, headers=self.headers)
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, headers=self.headers)
        return web.json_response(self.body, status=self.status, headers=self.headers)


@dataclass
class _File:
    data: bytes
    content_type: str
    expires_at: datetime


class FakeServer:
    """Base of the fakes: ``start()`` binds 127.0.0.1 (port 0 = any), ``url`` is its base."""

    def __init__(self, *, clock: Clock | None = None, result_ttl: timedelta) -> None:
        self.clock = clock or SystemClock()
        self.result_ttl = result_ttl
        self.requests: list[RecordedRequest] = []
        self._injected: dict[str, deque[Canned | None]] = {}
        self._files: dict[str, _File] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.app = web.Application(middlewares=[self._record])
        self.app.router.add_get("/files/{token}/{name}", self._serve_file)

    # -- scripting -------------------------------------------------------------------------

    def inject(self, route: str, *answers: Canned | None) -> None:
        """The next calls of ``route`` (``submit``, ``poll``, ``cancel``, ``file``) get these
        answers, in order, before the real behaviour resumes; ``None`` lets one call through
        (``inject("submit", None, Canned(502))``: the second submit fails)."""
        self._injected.setdefault(route, deque()).extend(answers)

    def injected(self, route: str) -> web.Response | None:
        queue = self._injected.get(route)
        if queue:
            canned = queue.popleft()
            return None if canned is None else canned.response()
        return None

    def calls(self, method: str, path_prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- result files ----------------------------------------------------------------------

    def add_file(self, data: bytes, content_type: str, name: str) -> str:
        """A link to ``data`` that stops answering (403, as signed blob links do) after
        ``result_ttl``."""
        token = secrets.token_urlsafe(12)
        self._files[token] = _File(data, content_type, self.clock.now() + self.result_ttl)
        return f"{self.url}/files/{token}/{name}"

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        canned = self.injected("file")
        if canned is not None:
            return canned
        found = self._files.get(request.match_info["token"])
        if found is None:
            return web.Response(status=404, text="BlobNotFound")
        if self.clock.now() >= found.expires_at:
            return web.Response(
                status=403, text="AuthenticationFailed: Signed expiry time has passed"
            )
        return web.Response(body=found.data, content_type=found.content_type)

    # -- lifecycle -------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = await request.json()
            except ValueError:
                body = raw
        self.requests.append(
            RecordedRequest(
                request.method,
                request.host,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def steps(script: Iterable[str] | None, default: Iterable[str]) -> list[str]:
    chosen = list(script if script is not None else default)
    if not chosen:
        raise ValueError("a task script needs at least one step")
    return chosen


def bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value.removeprefix("Bearer ").strip() if value.startswith("Bearer ") else None
