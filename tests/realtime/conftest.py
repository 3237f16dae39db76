"""Fixtures for the realtime tests: the app with its Socket.IO gateway (in process, or as real
``python -m app`` processes sharing Redis), the real JavaScript socket.io-client, and a source
image server that holds a job in ``PROCESSING`` until the test lets it go.

Everything binds 127.0.0.1; every wait is bounded; each test run uses its own Redis channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from PIL import Image

from app.auth import issue_dev_token
from app.main import create_app
from app.services import SERVICES
from app.settings import Settings
from tests.support.servers import wait_healthy

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node" / "socketio"
JWT_SECRET = "realtime-test-jwt-secret-0123456789abcdef"
INTERNAL_KEY = "realtime-test-internal-key"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IMAGE_BODY = {"prompt": "a lighthouse at dusk", "model": "local", "width": 64, "height": 64}


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


def png_bytes(width: int = 32, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the app in process


@dataclass
class Service:
    """A running app (in this process) with its live updates, and the means to drive it."""

    settings: Settings
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def token(self, user_id: str, ttl: timedelta = timedelta(hours=1)) -> str:
        return _token(self.settings, user_id, ttl)

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def create(self, user_id: str, job_type: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/api/jobs/{job_type}"
        async with self.http.post(url, json=body, headers=self.auth(user_id)) as response:
            job = await response.json()
            assert response.status == 202, job
            return dict(job)

    async def pause(self, job_type: str) -> None:
        await self.app[SERVICES].queue.pause_queue(f"{job_type}-queue")

    async def resume(self, job_type: str) -> None:
        await self.app[SERVICES].queue.resume_queue(f"{job_type}-queue")


StartService = Callable[..., Awaitable[Service]]


def app_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "port": port,
        "api_base_url": f"http://127.0.0.1:{port}",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "storage_dir": tmp_path / "media",
        "jwt_secret": JWT_SECRET,
        "internal_api_key": INTERNAL_KEY,
        "reconcile_interval_seconds": 0,
        "queue_max_dispatches_per_second": 500,
        "emulator_db": "memory",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def start_service(tmp_path: Path) -> AsyncIterator[StartService]:
    """``await start_service(**settings)``: one app per call, on a socket bound before the app
    is built (its URL is in the settings), stopped after the test."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**overrides: Any) -> Service:
        sock = free_socket()
        port = sock.getsockname()[1]
        folder = tmp_path / f"app-{len(runners)}"
        folder.mkdir()
        settings = app_settings(folder, port, **overrides)
        app = create_app(settings)
        runner = web.AppRunner(app, shutdown_timeout=5)
        await runner.setup()
        runners.append(runner)
        await web.SockSite(runner, sock).start()
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        sessions.append(http)
        return Service(settings, app, http)

    yield start
    for http in sessions:
        await http.close()
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def service(start_service: StartService) -> Service:
    return await start_service()


# --------------------------------------------------------------------------- Redis


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis (``../shared/services.md``); fails loudly when it is not running."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({error}); start it as in services.md")
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
def redis_channel() -> str:
    """Pub/sub ignores database numbers: a channel of its own keeps runs apart."""
    return f"daygen-test-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- source image gate


@dataclass
class SourceGate:
    """Serves a PNG at ``url`` only once ``release()`` is called, so a job that reads it stays
    ``PROCESSING`` for as long as the test needs; ``requested`` is set when the job asks."""

    url: str = ""
    requested: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
async def source_gate() -> AsyncIterator[SourceGate]:
    gate = SourceGate()
    image = png_bytes()

    async def source(request: web.Request) -> web.Response:
        gate.requested.set()
        await asyncio.wait_for(gate.released.wait(), 30)
        return web.Response(body=image, content_type="image/png")

    app = web.Application()
    app.router.add_get("/source.png", source)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    gate.url = f"http://127.0.0.1:{sock.getsockname()[1]}/source.png"
    yield gate
    gate.release()
    await runner.cleanup()


# --------------------------------------------------------------------------- the JS client


@pytest.fixture(scope="session")
def node_client_dir() -> Path:
    """tests/node/socketio with socket.io-client v4 installed (``npm install`` if missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the socket.io-client tests (Node.js 20)")
    if not (NODE_DIR / "node_modules" / "socket.io-client" / "package.json").exists():
        try:
            result = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("npm install of socket.io-client timed out: is the npm registry reachable?")
        if result.returncode != 0:
            pytest.fail(
                "npm install of socket.io-client failed (is the npm registry reachable?):\n"
                + result.stdout[-2000:]
                + result.stderr[-2000:]
            )
    return NODE_DIR


class NodeScript:
    """A Node script speaking JSON lines: events on stdout, commands on stdin."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []
        self.stderr = ""

    async def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no event from the JS client within {timeout}s; seen so far: {self.seen}"
            ) from None
        if not line:
            await self._collect_stderr()
            raise AssertionError(f"the JS client exited; seen: {self.seen}\n{self.stderr}")
        event: dict[str, Any] = json.loads(line)
        self.seen.append(event)
        return event

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first next event matching ``predicate``, within ``timeout`` seconds overall."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.next_event(timeout)
                    if predicate(event):
                        return event
        except TimeoutError:
            raise AssertionError(
                f"no matching event from the JS client within {timeout}s; seen: {self.seen}"
            ) from None

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def _collect_stderr(self) -> None:
        if self.process.stderr is not None:
            with contextlib.suppress(Exception):
                self.stderr = (await asyncio.wait_for(self.process.stderr.read(), 2)).decode()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)


RunNode = Callable[..., Awaitable[NodeScript]]


@pytest.fixture
async def run_node(node_client_dir: Path) -> AsyncIterator[RunNode]:
    """``await run_node("listen.mjs", URL=..., TOKENS=...)``: killed after the test."""
    scripts: list[NodeScript] = []

    async def run(script: str, **env: str) -> NodeScript:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(node_client_dir / script),
            cwd=node_client_dir,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        node_script = NodeScript(process)
        scripts.append(node_script)
        return node_script

    yield run
    for script in scripts:
        await script.stop()


# --------------------------------------------------------------------------- app processes


@dataclass
class AppProcess:
    """``python -m app`` as a real process."""

    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


StartAppProcess = Callable[..., Awaitable[AppProcess]]


@pytest.fixture
async def start_app_process(tmp_path: Path) -> AsyncIterator[StartAppProcess]:
    """``await start_app_process(**env)``: waits (bounded) for ``/healthz``; stopped after."""
    started: list[AppProcess] = []

    async def start(**env: str) -> AppProcess:
        port = free_port()
        log_path = tmp_path / f"app-{port}.log"
        environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "APP_ENV": "test",
            "PORT": str(port),
            "API_BASE_URL": f"http://127.0.0.1:{port}",
            "JWT_SECRET": JWT_SECRET,
            "INTERNAL_API_KEY": INTERNAL_KEY,
            "RECONCILE_INTERVAL_SECONDS": "0",
            "EMULATOR_DB": "memory",  # instances sharing a database each have their own queue
            **env,
        }
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                cwd=REPO,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        instance = AppProcess(port, process, log_path)
        started.append(instance)
        try:
            await wait_healthy(instance.base_url, alive=lambda: instance.process.returncode is None)
        except (RuntimeError, TimeoutError) as error:
            raise AssertionError(
                f"python -m app did not become healthy:\n{instance.log()}"
            ) from error
        return instance

    yield start
    for instance in reversed(started):
        if instance.process.returncode is None:
            instance.process.terminate()
            try:
                await asyncio.wait_for(instance.process.wait(), 10)
            except TimeoutError:
                instance.process.kill()
                await instance.process.wait()


def token_for(user_id: str, ttl: timedelta = timedelta(hours=1)) -> str:
    """A token the app processes (``JWT_SECRET`` above) accept."""
    settings = Settings(app_env="test", jwt_secret=JWT_SECRET, internal_api_key=INTERNAL_KEY)
    return _token(settings, user_id, ttl)


def _token(settings: Settings, user_id: str, ttl: timedelta) -> str:
    """A token expiring ``ttl`` from now; a negative ``ttl`` gives one that has expired (issued
    an hour before its expiry, since a token is never issued already expired)."""
    if ttl > timedelta(0):
        return issue_dev_token(settings, user_id, ttl=ttl)
    issued = datetime.now(UTC) + ttl - timedelta(hours=1)
    return issue_dev_token(settings, user_id, ttl=timedelta(hours=1), now=issued)
