"""The queues file parser and the SQLite journal, without a server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulator.clock import SystemClock, VirtualClock
from emulator.model import (
    HttpTarget,
    OidcToken,
    QueueRecord,
    QueueState,
    RateLimits,
    RetryConfig,
    TaskRecord,
)
from emulator.queues_file import QueuesFileError, load_queue_specs, parse_duration, parse_queues
from emulator.sqlite_store import SqliteStore
from tests.emulator_server.process import REPO


def test_repository_queues_file_holds_the_daygen_queues() -> None:
    specs = load_queue_specs(REPO / "queues.toml", "projects/p/locations/l")

    names = [s.name.rsplit("/", 1)[-1] for s in specs]
    types = ["image-generation", "video-generation", "image-upscale", "batch-generation"]
    jobs = [f"{t}-{p}queue" for t in types for p in ("high-", "", "low-")]
    assert names == [*jobs, "webhook-delivery-queue"]
    webhooks = specs.pop()
    assert webhooks.retry_config.max_attempts == 12  # app.webhooks.delivery.MAX_ATTEMPTS
    assert webhooks.retry_config.min_backoff == timedelta(seconds=30)
    for spec in specs:
        # One job type's three priority queues share the seed's budget (10/s, 100 at once).
        assert spec.rate_limits.max_dispatches_per_second in (2.5, 6, 1.5)
        assert spec.rate_limits.max_concurrent_dispatches in (25, 60, 15)
        assert spec.retry_config.max_attempts == 3
        if "video" in spec.name:
            assert spec.retry_config.min_backoff == timedelta(seconds=10)
            continue
        assert spec.retry_config.max_retry_duration == timedelta(hours=1)
        assert spec.retry_config.min_backoff == timedelta(seconds=1)
        assert spec.retry_config.max_backoff == timedelta(seconds=60)


def test_queue_overrides_defaults_field_by_field() -> None:
    [entry] = parse_queues(
        {
            "defaults": {"rate_limits": {"max_dispatches_per_second": 10}},
            "queues": {"q": {"rate_limits": {"max_concurrent_dispatches": 3}}},
        }
    )
    assert entry.rate_limits == RateLimits(10, 3)
    assert entry.retry_config.max_attempts == 100  # Cloud Tasks' default


@pytest.mark.parametrize(
    "data",
    [
        {"queues": {"q": {"rate_limit": {}}}},
        {"queues": {"q": {"retry_config": {"max_attempt": 3}}}},
        {"queues": {"q": {"retry_config": {"min_backoff": "soon"}}}},
        {"queue": {}},
    ],
)
def test_typos_are_errors_not_silent_defaults(data: dict[str, object]) -> None:
    with pytest.raises(QueuesFileError):
        parse_queues(data)


def test_durations() -> None:
    assert parse_duration("1h", "x") == timedelta(hours=1)
    assert parse_duration("100ms", "x") == timedelta(milliseconds=100)
    assert parse_duration(2.5, "x") == timedelta(seconds=2.5)


def _task(name: str, now: datetime) -> TaskRecord:
    return TaskRecord(
        name=f"projects/p/locations/l/queues/q/tasks/{name}",
        queue="projects/p/locations/l/queues/q",
        http_request=HttpTarget(
            url="http://127.0.0.1/x",
            headers={"A": "b"},
            body=b"\x00\xff",
            oidc_token=OidcToken("sa@x", "aud"),
        ),
        schedule_time=now,
        create_time=now.replace(microsecond=0),
        dispatch_count=2,
        execution_count=1,
    )


async def test_store_round_trips_and_batches_concurrent_flushes(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = SqliteStore(tmp_path / "s.db")
    await store.load(SystemClock())
    queue = QueueRecord(
        "projects/p/locations/l/queues/q", RateLimits(5, 6), RetryConfig(max_attempts=7)
    )
    queue.state = QueueState.PAUSED
    store.put_queue(queue)

    async def write(index: int) -> None:
        store.put_task(_task(f"t{index}", now))
        await store.flush()

    await asyncio.gather(*(write(index) for index in range(200)))
    store.remove_task(_task("t0", now).name, now + timedelta(hours=1))
    store.remove_queue("projects/p/locations/l/queues/gone", now + timedelta(days=7))
    commits = store.commits
    await store.close()

    reopened = SqliteStore(tmp_path / "s.db")
    state = await reopened.load(SystemClock())
    await reopened.close()
    later = SqliteStore(tmp_path / "s.db")
    two_hours_on = await later.load(VirtualClock(now + timedelta(hours=2)))
    await later.close()

    assert commits < 50  # 200 concurrent writers, a handful of transactions
    assert len(state.tasks) == 199
    restored = {t.name.rsplit("/", 1)[-1]: t for t in state.tasks}["t5"]
    assert restored == _task("t5", now)
    assert state.queues[0].rate_limits == RateLimits(5, 6)
    assert state.queues[0].retry_config.max_attempts == 7
    assert state.queues[0].state is QueueState.PAUSED
    assert _task("t0", now).name in state.task_tombstones
    assert "projects/p/locations/l/queues/gone" in state.queue_tombstones
    # Tombstones are judged by the engine's clock, not the wall clock: two hours on, the
    # task's (one hour) is over and the queue's (seven days) is not.
    assert _task("t0", now).name not in two_hours_on.task_tombstones
    assert "projects/p/locations/l/queues/gone" in two_hours_on.queue_tombstones
