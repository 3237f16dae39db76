"""The publisher's contract: delivery problems are logged, never raised, never a hang."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.events import JobEvents, JobUpdate
from app.realtime import RealtimeConfig, SocketIOJobEvents
from tests.realtime.clients import sample_view
from tests.realtime.conftest import free_port


def update() -> JobUpdate:
    return JobUpdate("alice", sample_view())


def test_the_gateway_is_a_job_events_publisher() -> None:
    assert isinstance(SocketIOJobEvents(), JobEvents)


async def test_publish_with_redis_down_logs_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    gateway = SocketIOJobEvents(RealtimeConfig(redis_url=nowhere, publish_timeout_seconds=1))
    try:
        with caplog.at_level(logging.ERROR):
            async with asyncio.timeout(5):
                await gateway.publish(update())
        assert any("failed" in record.getMessage() for record in caplog.records)
    finally:
        await gateway.close()


async def test_publish_in_process_reaches_a_local_stream() -> None:
    gateway = SocketIOJobEvents()
    try:
        with gateway.streams.subscribe("j1") as stream:
            await gateway.publish(update())
            assert (await stream.get(1))["progress"] == 10
    finally:
        await gateway.close()
