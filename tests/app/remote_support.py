"""The app with its real provider adapters pointed at the fake BFL, Runway and Replicate, all on
one virtual clock, on the in-process emulator: the rig of the end-to-end remote-provider tests.

``RemoteRig.start()`` builds the app exactly as production does (``create_app`` picks the
adapters from the three credentials); ``restart()`` throws the running app away and builds a
fresh one on the same database, queue and port, which is what an instance dying and another
taking over looks like to the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.db import Database
from app.events import RecordingJobEvents
from app.main import create_app
from app.providers.replicate import DEFAULT_UPSCALE_VERSION
from app.settings import Settings
from daygen_queue import VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend
from tests.app.conftest import INTERNAL_KEY, JWT_SECRET, Service, free_socket
from tests.providers.adapter_support import BFL_KEY, REPLICATE_TOKEN, RUNWAY_SECRET
from tests.providers.fakes.bfl import FakeBfl
from tests.providers.fakes.replicate import FakeReplicate
from tests.providers.fakes.runway import FakeRunway

REPLICATE_WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
Middleware = Callable[..., Awaitable[web.StreamResponse]]


class RemoteRig:
    def __init__(self, database: Database, tmp_path: Path) -> None:
        self.database = database
        self.tmp_path = tmp_path
        self.clock = VirtualClock()
        self.backend = EmulatorBackend(clock=self.clock)
        self.bfl = FakeBfl(api_key=BFL_KEY, clock=self.clock)
        self.runway = FakeRunway(api_secret=RUNWAY_SECRET, clock=self.clock)
        self.replicate = FakeReplicate(
            api_token=REPLICATE_TOKEN, clock=self.clock, known_versions=(DEFAULT_UPSCALE_VERSION,)
        )
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.service: Service | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.overrides: dict[str, Any] = {}

    async def open_fakes(self) -> None:
        for fake in (self.bfl, self.runway, self.replicate):
            await fake.start()

    def settings(self, **overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "app_env": "test",
            "api_base_url": f"http://127.0.0.1:{self.port}",
            "jwt_secret": JWT_SECRET,
            "internal_api_key": INTERNAL_KEY,
            "storage_dir": self.tmp_path / "media",
            "reconcile_interval_seconds": 0,
            "bfl_api_key": BFL_KEY,
            "bfl_api_url": self.bfl.url,
            "runwayml_api_secret": RUNWAY_SECRET,
            "runwayml_base_url": self.runway.url,
            "replicate_api_token": REPLICATE_TOKEN,
            "replicate_base_url": self.replicate.url,
            "source_fetch_allow_private": True,
            **self.overrides,
            **overrides,
        }
        return Settings(**options)

    async def start(self, *, middlewares: tuple[Middleware, ...] = (), **overrides: Any) -> Service:
        """A new app on the rig's port (the previous one stopped first)."""
        await self.stop_app()
        if overrides:
            self.overrides.update(overrides)
        settings = self.settings()
        events = RecordingJobEvents()
        app = create_app(
            settings,
            task_queue=self.backend,
            clock=self.clock,
            events=events,
            database=self.database,
        )
        for middleware in middlewares:
            app.middlewares.append(middleware)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        if self._runner is None and self.service is None:
            await web.SockSite(runner, self.sock).start()
        else:
            await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._runner = runner
        self._http = aiohttp.ClientSession()
        self.service = Service(
            app=app,
            settings=settings,
            backend=self.backend,
            clock=self.clock,
            events=events,
            database=self.database,
            http=self._http,
        )
        return self.service

    async def restart(self, **overrides: Any) -> Service:
        """Kill the app (nothing it held in memory survives) and start a fresh one."""
        return await self.start(**overrides)

    async def stop_app(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.stop_app()
        await self.backend.close()
        for fake in (self.bfl, self.runway, self.replicate):
            await fake.stop()


@pytest.fixture(name="rig")
async def rig_fixture(database: Database, tmp_path: Path) -> AsyncIterator[RemoteRig]:
    rig = RemoteRig(database, tmp_path)
    await rig.open_fakes()
    yield rig
    await rig.close()
