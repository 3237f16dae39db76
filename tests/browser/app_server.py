"""The jobs service for browser tests: ``python -m app``'s own assembly (``create_app`` from
settings) on a real port, SQLite in a scratch folder, the in-process emulator on the real
clock delivering over HTTP to the app itself, the local providers. A page can then do all a
person does: call the API, follow live updates, open ``/_emulator/``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from app.auth import issue_dev_token
from app.main import create_app
from app.settings import Settings


@dataclass
class RunningApp:
    """A served app: its base URL, its settings (to sign tokens) and an HTTP client."""

    base_url: str
    settings: Settings
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, user: str = "alice", **kwargs: Any
    ) -> tuple[int, Any]:
        """An API call as ``user`` (a development token); the status and the JSON body."""
        headers = {"Authorization": f"Bearer {issue_dev_token(self.settings, user)}"}
        async with self.http.request(
            method, self.base_url + path, headers=headers, **kwargs
        ) as response:
            return response.status, await response.json(content_type=None)


@asynccontextmanager
async def serving_app(folder: Path, **overrides: Any) -> AsyncIterator[RunningApp]:
    """The app on a free loopback port until the block ends; ``overrides`` are settings."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    options: dict[str, Any] = {
        "app_env": "development",
        "api_base_url": base_url,
        "database_url": f"sqlite+aiosqlite:///{folder / 'app.db'}",
        "storage_dir": folder / "media",
        "jwt_secret": "browser-test-secret-0123456789abcdef0123",
        "internal_api_key": "browser-test-internal-key",
        "reconcile_interval_seconds": 0,
        "local_providers_only": True,
        "emulator_db": "memory",
        **overrides,
    }
    settings = Settings(**options)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        async with aiohttp.ClientSession() as http:
            yield RunningApp(base_url, settings, http)
    finally:
        await runner.cleanup()
