"""Scheduled jobs (``runAt``) on the virtual clock: the job's task carries the time, so the job
runs then and not before, its credits are taken at creation, and it survives a restart of the
app (a fresh app on the same database and queue)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from app.db import Database
from app.events import RecordingJobEvents
from app.jobs.views import iso
from app.main import create_app
from app.providers.registry import build_providers
from app.settings import Settings
from daygen_queue import VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend
from emulator import EventKind
from tests.app.conftest import INTERNAL_KEY, JWT_SECRET, Service, StartService, free_socket

BODY = {"prompt": "a sunrise", "width": 64, "height": 64}


async def test_a_job_scheduled_ahead_is_pending_with_its_run_at_and_paid_for(
    start_service: StartService,
):
    service = await start_service()
    when = service.clock.now() + timedelta(hours=5)
    job = await service.create("alice", "image-generation", {**BODY, "runAt": iso(when)})
    assert job["status"] == "PENDING"
    assert job["runAt"] == iso(when)
    assert await service.credits("alice") == 99
    task = await service.backend.get_task("image-generation-queue", job["jobId"])
    assert task.schedule_time == when

    await service.backend.advance(timedelta(hours=5) - timedelta(seconds=1))
    assert (await service.job("alice", job["jobId"]))["status"] == "PENDING"
    await service.run_until_idle()
    done = await service.job("alice", job["jobId"])
    assert done["status"] == "COMPLETED"
    [dispatched] = service.backend.events.of_kind(EventKind.TASK_DISPATCHED)
    assert dispatched.time == when


async def test_run_at_in_the_past_means_now(start_service: StartService):
    service = await start_service()
    now = service.clock.now()
    job = await service.create(
        "bob", "image-generation", {**BODY, "runAt": iso(now - timedelta(days=2))}
    )
    assert job["runAt"] == iso(now)
    await service.run_until_idle()
    assert (await service.job("bob", job["jobId"]))["status"] == "COMPLETED"
    assert service.clock.now() == now


@pytest.mark.parametrize(
    ("run_at", "message"),
    [
        ("in an hour", "RFC 3339"),
        ("2026-01-05T10:00:00", "time zone"),
        (1767225600, "RFC 3339"),
        ("2026-02-13T00:00:00Z", "30 days"),  # the virtual clock starts on 2026-01-01
    ],
)
async def test_a_bad_run_at_is_refused_before_anything_is_charged(
    start_service: StartService, run_at: object, message: str
):
    service = await start_service()
    status, body = await service.request(
        "POST", "/api/jobs/image-generation", user="carol", json={**BODY, "runAt": run_at}
    )
    assert status == 422, body
    assert body["fields"][0]["field"] == "runAt"
    assert message in body["fields"][0]["message"]
    assert await service.credits("carol") == 100


async def test_exactly_30_days_ahead_is_accepted(start_service: StartService):
    service = await start_service()
    when = service.clock.now() + timedelta(days=30)
    job = await service.create("dora", "image-generation", {**BODY, "runAt": iso(when)})
    assert job["runAt"] == iso(when)


class App:
    """One app process's worth: started on a fixed port, stopped, started again."""

    def __init__(self, database: Database, tmp_path: Path) -> None:
        self.database, self.tmp_path = database, tmp_path
        self.clock = VirtualClock()
        self.backend = EmulatorBackend(clock=self.clock)
        self.sock: socket.socket | None = free_socket()
        self.port = self.sock.getsockname()[1]
        self.runner: web.AppRunner | None = None

    async def start(self) -> Service:
        sock = self.sock or self._rebind()
        self.sock = None
        settings = Settings(
            app_env="test",
            api_base_url=f"http://127.0.0.1:{self.port}",
            jwt_secret=JWT_SECRET,
            internal_api_key=INTERNAL_KEY,
            storage_dir=self.tmp_path / "media",
            reconcile_interval_seconds=0,
            local_providers_only=True,
        )
        events = RecordingJobEvents()
        app = create_app(
            settings,
            task_queue=self.backend,
            clock=self.clock,
            events=events,
            providers=build_providers(settings),
            database=self.database,
        )
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()
        return Service(
            app=app,
            settings=settings,
            backend=self.backend,
            clock=self.clock,
            events=events,
            database=self.database,
            http=self.http,
        )

    def _rebind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        return sock

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def __aenter__(self) -> App:
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.http.close()
        await self.backend.close()


@pytest.fixture
async def app_process(database: Database, tmp_path: Path) -> AsyncIterator[App]:
    async with App(database, tmp_path) as app:
        yield app


async def test_a_job_three_days_ahead_runs_then_after_an_app_restart(app_process: App):
    first = await app_process.start()
    start = first.clock.now()
    when = start + timedelta(days=3)
    job = await first.create("erin", "image-generation", {**BODY, "runAt": iso(when)})
    await app_process.stop()  # the app goes away; the queue keeps the task

    second = await app_process.start()
    await second.backend.advance(timedelta(days=3) - timedelta(minutes=1))
    assert (await second.job("erin", job["jobId"]))["status"] == "PENDING"
    assert second.backend.events.of_kind(EventKind.TASK_DISPATCHED) == []

    await second.run_until_idle()
    done = await second.job("erin", job["jobId"])
    assert done["status"] == "COMPLETED"
    assert done["runAt"] == iso(when)
    row = await second.store.get_job(job["jobId"])
    assert row is not None and row.started_at == when
    assert await second.credits("erin") == 99


async def test_a_scheduled_job_can_be_cancelled_until_it_starts(start_service: StartService):
    service = await start_service()
    when = service.clock.now() + timedelta(days=1)
    job = await service.create(
        "fred", "image-generation", {**BODY, "runAt": iso(when), "priority": "high"}
    )
    assert await service.credits("fred") == 99
    status, cancelled = await service.request(
        "POST", f"/api/jobs/{job['jobId']}/cancel", user="fred"
    )
    assert status == 200 and cancelled["status"] == "CANCELLED"
    assert await service.credits("fred") == 100
    deleted = service.backend.events.of_kind(EventKind.TASK_DELETED)
    assert [(event.queue, event.task) for event in deleted] == [
        ("image-generation-high-queue", job["jobId"])
    ]
    await service.run_until_idle()
    assert service.backend.events.of_kind(EventKind.TASK_DISPATCHED) == []
    assert (await service.job("fred", job["jobId"]))["status"] == "CANCELLED"


async def test_the_reconciler_leaves_a_scheduled_job_alone_until_its_time(
    start_service: StartService,
):
    from tests.app.test_reconciler import FlakyQueue, flaky_queue

    holder: dict[str, FlakyQueue] = {}
    service = await start_service(queue=flaky_queue(holder), reconcile_after_seconds=60)
    when = service.clock.now() + timedelta(hours=2)
    job = await service.create("gil", "image-generation", {**BODY, "runAt": iso(when)})
    holder["queue"].broken = False  # the task was never created
    await service.backend.advance(timedelta(hours=1))
    assert await service.reconciler.run_once() == 0  # not due: not looked at
    await service.backend.advance(timedelta(hours=1, minutes=2))
    assert await service.reconciler.run_once() == 1
    task = await service.backend.get_task("image-generation-queue", job["jobId"])
    assert task.schedule_time == service.clock.now()  # a past runAt: due at once
    await service.run_until_idle()
    assert (await service.job("gil", job["jobId"]))["status"] == "COMPLETED"
