"""A real HTTP endpoint on 127.0.0.1 that records what a queue delivers to it.

Tests wait on it with ``wait_for`` (a condition, bounded by a timeout) instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.servers import start_site


@dataclass(frozen=True)
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


Responder = Callable[[Received], int]


@dataclass
class Receiver:
    """Answers 200 unless ``responder`` says otherwise."""

    responder: Responder = lambda request: 200
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, port = await start_site(app)
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/task") -> str:
        return self.base_url + path

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(
            path=request.path_qs,
            method=request.method,
            headers=dict(request.headers),
            body=await request.read(),
        )
        async with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        return web.Response(status=self.responder(received))

    def for_path(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: predicate(self.requests)), timeout
            )
        return list(self.requests)

    async def wait_for_path(
        self, path: str, count: int = 1, timeout: float = 10.0
    ) -> list[Received]:
        await self.wait_for(
            lambda requests: len([r for r in requests if r.path == path]) >= count, timeout
        )
        return self.for_path(path)
