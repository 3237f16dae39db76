"""The browser tests' own hands on the emulator: its REST API, called the way any Cloud Tasks
REST client calls it, to set a scene and to check what the console did."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aiohttp

from tests.support.receiver import Receiver

PROJECT = "browser-tests"
LOCATION = "here"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConsoleEmulator:
    """A running emulator (``base_url`` serves the console at ``/``) and a receiver for what
    it delivers; every queue a test makes gets a name of its own (the server is shared)."""

    def __init__(self, base_url: str, receiver: Receiver) -> None:
        self.base_url = base_url.rstrip("/")
        self.receiver = receiver
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def console_url(self) -> str:
        return self.base_url + "/"

    async def call(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        assert self._http is not None
        url = f"{self.base_url}/{path}"
        async with self._http.request(method, url, json=body, params=query or None) as response:
            payload = await response.json(content_type=None)
            assert response.status == 200, (method, path, response.status, payload)
            return payload

    async def status_of(self, method: str, path: str) -> int:
        assert self._http is not None
        async with self._http.request(method, f"{self.base_url}/{path}") as response:
            return response.status

    async def create_queue(
        self, label: str, *, paused: bool = False, min_backoff: str = "0.1s"
    ) -> str:
        """A new queue ``label-xxxxxx``; returns its full name."""
        queue_id = f"{label}-{uuid.uuid4().hex[:6]}"
        name = f"{PARENT}/queues/{queue_id}"
        body = {
            "name": name,
            "rateLimits": {"maxDispatchesPerSecond": 50, "maxConcurrentDispatches": 10},
            "retryConfig": {"maxAttempts": 5, "minBackoff": min_backoff, "maxBackoff": "60s"},
        }
        await self.call("POST", f"v2/{PARENT}/queues", body)
        if paused:
            await self.call("POST", f"v2/{name}:pause", {})
        return name

    async def create_task(
        self,
        queue: str,
        *,
        path: str = "/ok",
        task_id: str | None = None,
        delay: timedelta = timedelta(0),
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"url": self.receiver.url(path), "httpMethod": "POST"}
        if headers:
            request["headers"] = headers
        if body:
            request["body"] = base64.b64encode(body).decode()
        task: dict[str, Any] = {"httpRequest": request}
        if task_id is not None:
            task["name"] = f"{queue}/tasks/{task_id}"
        if delay:
            task["scheduleTime"] = rfc3339(datetime.now(UTC) + delay)
        created: dict[str, Any] = await self.call("POST", f"v2/{queue}/tasks", {"task": task})
        return created

    async def queue(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"v2/{name}")
        return found

    async def tasks(self, queue: str) -> list[dict[str, Any]]:
        listed = await self.call("GET", f"v2/{queue}/tasks")
        tasks: list[dict[str, Any]] = listed.get("tasks", [])
        return tasks


def short_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]
