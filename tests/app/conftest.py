"""The app under test: a real aiohttp server on 127.0.0.1, the in-process emulator on a virtual
clock delivering over real HTTP, and SQLite or PostgreSQL (one fresh schema per test).

PostgreSQL variants fail loudly when the server is unreachable: they are never skipped.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth import issue_dev_token
from app.db import Database, open_database
from app.events import RecordingJobEvents
from app.jobs.reconciler import Reconciler
from app.jobs.store import JobStore
from app.main import RECONCILER, create_app
from app.providers.base import Providers
from app.providers.registry import build_providers
from app.services import SERVICES
from app.settings import Settings
from daygen_queue import TaskQueue, VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
INTERNAL_KEY = "test-internal-key"

DB_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    """Tests run on both databases unless a module overrides this fixture."""
    return str(request.param)


@pytest.fixture
async def database(db_kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    if db_kind == "sqlite":
        db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
        yield db
        await db.close()
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db = open_database(POSTGRES_URL, schema=schema)
        yield db
        await db.close()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Service:
    """A running app and the means to drive it."""

    def __init__(
        self,
        *,
        app: web.Application,
        settings: Settings,
        backend: EmulatorBackend,
        clock: VirtualClock,
        events: RecordingJobEvents,
        database: Database,
        http: aiohttp.ClientSession,
    ) -> None:
        self.app, self.settings, self.backend, self.clock = app, settings, backend, clock
        self.events, self.database, self.http = events, database, http
        self.base_url = settings.base_url

    @property
    def store(self) -> JobStore:
        return self.app[SERVICES].store

    @property
    def reconciler(self) -> Reconciler:
        return self.app[RECONCILER]

    def token(self, user_id: str) -> str:
        return issue_dev_token(self.settings, user_id)  # JWTs expire on wall-clock time

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def request(
        self, method: str, path: str, *, user: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers.update(self.auth(user))
        async with self.http.request(
            method, self.base_url + path, headers=headers, **kwargs
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body

    async def create(self, user: str, job_type: str, body: dict[str, Any]) -> dict[str, Any]:
        status, job = await self.request("POST", f"/api/jobs/{job_type}", user=user, json=body)
        assert status == 202, job
        return job

    async def job(self, user: str, job_id: str) -> dict[str, Any]:
        status, job = await self.request("GET", f"/api/jobs/{job_id}", user=user)
        assert status == 200, job
        return job

    async def credits(self, user: str) -> int:
        status, me = await self.request("GET", "/api/me", user=user)
        assert status == 200, me
        return int(me["credits"])

    async def download(self, url: str) -> bytes:
        assert url.startswith(self.base_url + "/media/"), url
        async with self.http.get(url) as response:
            assert response.status == 200, url
            return await response.read()

    async def run_until_idle(self) -> None:
        await self.backend.run_until_idle()


StartService = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_service(database: Database, tmp_path: Path) -> AsyncIterator[StartService]:
    """``await start_service(providers=..., queue=..., **settings)``: one app per call."""
    started: list[tuple[web.AppRunner, EmulatorBackend, aiohttp.ClientSession]] = []

    async def start(
        *,
        providers: Providers | None = None,
        queue: Callable[[EmulatorBackend], TaskQueue] | None = None,
        backend_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Service:
        sock = free_socket()
        port = sock.getsockname()[1]
        options: dict[str, Any] = {
            "app_env": "test",
            "api_base_url": f"http://127.0.0.1:{port}",
            "jwt_secret": JWT_SECRET,
            "internal_api_key": INTERNAL_KEY,
            "storage_dir": tmp_path / "media",
            "reconcile_interval_seconds": 0,
            "local_providers_only": True,
            **overrides,
        }
        settings = Settings(**options)
        clock = VirtualClock()
        backend = EmulatorBackend(clock=clock, **(backend_options or {}))
        events = RecordingJobEvents()
        app = create_app(
            settings,
            task_queue=queue(backend) if queue else backend,
            clock=clock,
            events=events,
            providers=providers or build_providers(settings),
            database=database,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        http = aiohttp.ClientSession()
        started.append((runner, backend, http))
        return Service(
            app=app,
            settings=settings,
            backend=backend,
            clock=clock,
            events=events,
            database=database,
            http=http,
        )

    yield start
    for runner, backend, http in reversed(started):
        await http.close()
        await backend.close()
        await runner.cleanup()


@pytest.fixture
async def service(start_service: StartService) -> Service:
    return await start_service()
