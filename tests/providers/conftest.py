"""Fixtures for provider, storage and fetch tests: a storage folder and local HTTP servers.

Servers bind 127.0.0.1 only; no test sends traffic anywhere else.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from app.storage import LocalStorage
from tests.providers.adapter_support import (  # noqa: F401
    bfl,
    fake_bfl,
    fake_replicate,
    fake_runway,
    http,
    replicate,
    runway,
)

# Cloud Storage fixtures live beside their helpers; imported so every module here sees them.
from tests.providers.gcs_support import bucket, gcs, gcs_server, outbound, sa_key  # noqa: F401

BASE_URL = "https://api.daygen.test"

ServeFn = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", BASE_URL)


@pytest.fixture
async def serve() -> AsyncIterator[ServeFn]:
    """Start an aiohttp app on 127.0.0.1 (random port); stopped after the test."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def png_bytes(width: int, height: int, mode: str = "RGB", colour: object = (200, 40, 90)) -> bytes:
    """A small real PNG to feed providers."""
    buf = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buf, "PNG")  # type: ignore[arg-type]
    return buf.getvalue()


class NoNetworkSession:
    """Stands in for an aiohttp session and fails the test if anything tries to use it."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"network used: session.{name}")
