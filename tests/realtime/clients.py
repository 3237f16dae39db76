"""A python-socketio client that records what it receives, for the isolation and refusal
tests (the JS client covers the frontend flow)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio


class RecordingClient:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connect_errors: asyncio.Queue[Any] = asyncio.Queue()
        self.sio.on("jobUpdate", self._on_update)
        self.sio.on("connect_error", self._on_connect_error)

    async def _on_update(self, update: dict[str, Any]) -> None:
        await self.updates.put(update)

    async def _on_connect_error(self, data: Any) -> None:
        await self.connect_errors.put(data)

    async def connect(self, url: str, token: str | None = None, **options: Any) -> None:
        auth = {"token": token} if token is not None else None
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=5, **options)

    async def refusal(self, url: str, token: str | None = None, **options: Any) -> Any:
        """Connect expecting a refusal; the ``connect_error`` data the server sent."""
        try:
            await self.connect(url, token, **options)
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("the connection was accepted")
        return await asyncio.wait_for(self.connect_errors.get(), 5)

    async def next_update(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.updates.get(), timeout)

    async def updates_until(self, job_id: str, status: str, timeout: float = 15.0) -> list[Any]:
        """Every update of ``job_id`` up to and including the first with ``status``."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                update = await self.updates.get()
                if update["jobId"] != job_id:
                    continue
                seen.append(update)
                if update["status"] == status:
                    return seen

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, *args, timeout=5)

    async def close(self) -> None:
        await self.sio.disconnect()


def sample_view(**changes: Any) -> dict[str, Any]:
    """A job view as ``GET /api/jobs/{id}`` shows it, for tests without a database."""
    base: dict[str, Any] = {
        "jobId": "j1",
        "type": "image-generation",
        "status": "PROCESSING",
        "progress": 10,
        "resultUrl": None,
        "resultUrls": None,
        "error": None,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:01.000Z",
    }
    return {**base, **changes}
