"""``--db``: a SIGKILL in the middle of delivery loses no acknowledged task. After a restart
on the same file every task is delivered at least once (an attempt cut off by the kill is
simply sent again)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks import transports

from tests.emulator_server.process import EmulatorProcess
from tests.support.servers import start_site

pytestmark = pytest.mark.slow
PARENT = "projects/persist/locations/local"
QUEUE = f"{PARENT}/queues/durable"
TASKS = 1000


class CountingReceiver:
    """Counts deliveries per task name; answers after a short piece of "work" so that many
    attempts are in flight when the emulator is killed."""

    def __init__(self) -> None:
        self.deliveries: Counter[str] = Counter()
        self._targets: list[tuple[int, asyncio.Event]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/work", self._handle)
        self._runner, port = await start_site(app)
        self.url = f"http://127.0.0.1:{port}/work"

    async def _handle(self, request: web.Request) -> web.Response:
        self.deliveries[request.headers["X-CloudTasks-TaskName"]] += 1
        for count, event in self._targets:
            if len(self.deliveries) >= count:
                event.set()
        await asyncio.sleep(0.02)  # the handler's work; keeps attempts in flight
        return web.Response(status=200)

    async def distinct(self, count: int, timeout: float) -> None:
        event = asyncio.Event()
        self._targets.append((count, event))
        if len(self.deliveries) >= count:
            event.set()
        await asyncio.wait_for(event.wait(), timeout)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def counting_receiver() -> AsyncIterator[CountingReceiver]:
    receiver = CountingReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def client_for(address: str) -> tuple[tasks_v2.CloudTasksAsyncClient, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(address)
    transport = transports.CloudTasksGrpcAsyncIOTransport(channel=channel)
    return tasks_v2.CloudTasksAsyncClient(transport=transport), channel


async def test_sigkill_mid_delivery_loses_no_task(
    tmp_path: Path, counting_receiver: CountingReceiver
) -> None:
    db = str(tmp_path / "tasks.db")
    first = EmulatorProcess(args=["--db", db]).start()
    try:
        client, channel = client_for(first.grpc_address)
        await client.create_queue(
            parent=PARENT,
            queue={
                "name": QUEUE,
                "rate_limits": {"max_dispatches_per_second": 250, "max_concurrent_dispatches": 20},
            },
        )
        limit = asyncio.Semaphore(50)

        async def create(index: int) -> None:
            async with limit:
                await client.create_task(
                    parent=QUEUE,
                    task={
                        "name": f"{QUEUE}/tasks/t-{index:04d}",
                        "http_request": {"url": counting_receiver.url, "body": b"job"},
                    },
                    retry=None,
                )

        await asyncio.gather(*(create(index) for index in range(TASKS)))
        await counting_receiver.distinct(200, timeout=20)
        await channel.close()
    finally:
        first.kill()  # SIGKILL: no shutdown, no final flush
    delivered_before = len(counting_receiver.deliveries)
    assert delivered_before < TASKS, "the kill must land mid-delivery"

    second = EmulatorProcess(args=["--db", db]).start()
    try:
        await counting_receiver.distinct(TASKS, timeout=30)
        client, channel = client_for(second.grpc_address)
        queue = await client.get_queue(name=QUEUE)
        await channel.close()
    finally:
        second.stop()

    assert set(counting_receiver.deliveries) == {f"t-{index:04d}" for index in range(TASKS)}
    assert queue.rate_limits.max_dispatches_per_second == 250  # the queue survived too
