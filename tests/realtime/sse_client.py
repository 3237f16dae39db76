"""Reads ``text/event-stream`` the way curl shows it: line by line, events split on blank
lines; comment lines (``: heartbeat``) kept apart."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SseStream:
    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)

    async def _readline(self) -> str | None:
        if self._pending:
            return self._pending.pop(0)
        raw = await self.response.content.readline()
        return raw.decode().rstrip("\n") if raw else None

    async def heartbeat(self, timeout: float = 5.0) -> str:
        """Wait for the next comment line; any event lines read meanwhile stay for
        ``next_event``."""
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise AssertionError("the stream ended while waiting for a heartbeat")
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    return self.comments[-1]
                self._pending.append(line)

    async def next_event(self, timeout: float = 10.0) -> tuple[str, Any] | None:
        """(event name, parsed data) of the next event, or None when the stream ended."""
        name, data = "message", list[str]()
        async with asyncio.timeout(timeout):
            while True:
                line = await self._readline()
                if line is None:
                    return None
                if line == "":
                    if data:
                        return name, json.loads("\n".join(data))
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())

    async def all_events(self, timeout: float = 15.0) -> list[Any]:
        """Every remaining ``jobUpdate`` until the server closes the stream."""
        updates = []
        async with asyncio.timeout(timeout):
            while (event := await self.next_event(timeout)) is not None:
                assert event[0] == "jobUpdate", event
                updates.append(event[1])
        return updates
