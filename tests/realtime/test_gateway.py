"""The publisher's contract: delivery problems are logged, never raised, never a hang."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.events import JobEvents, JobUpdate
from app.realtime import LiveUpdates
from app.settings import Settings
from tests.realtime.clients import sample_view
from tests.realtime.conftest import free_port


def update() -> JobUpdate:
    return JobUpdate("alice", sample_view())


def settings(**overrides: object) -> Settings:
    return Settings(app_env="test", **overrides)  # type: ignore[arg-type]


def test_live_updates_are_a_job_events_publisher() -> None:
    assert isinstance(LiveUpdates(settings()), JobEvents)


async def test_publish_with_redis_down_logs_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    live = LiveUpdates(settings(redis_url=nowhere), publish_timeout=1)
    try:
        with caplog.at_level(logging.ERROR):
            async with asyncio.timeout(5):
                await live.publish(update())
        assert any("failed" in record.getMessage() for record in caplog.records)
    finally:
        await live.close()


async def test_publish_in_process_reaches_a_local_stream() -> None:
    live = LiveUpdates(settings())
    try:
        with live.streams.subscribe("j1") as stream:
            await live.publish(update())
            assert (await stream.get(1))["progress"] == 10
    finally:
        await live.close()
