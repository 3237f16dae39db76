"""The app ensures every job type's queues (one per priority) at start-up, configured exactly
like ``queues.toml``: budget shares and the type's retry policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs.types import JOB_TYPES, queue_configs
from app.webhooks import delivery as webhooks
from daygen_queue.queues_file import load_queue_configs
from tests.app.conftest import Service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def expected_configs() -> dict:
    return {
        config.name: config for job_type in JOB_TYPES.values() for config in queue_configs(job_type)
    }


def test_queue_configs_match_queues_toml():
    from_file = {config.name: config for config in load_queue_configs(ROOT / "queues.toml")}
    expected = expected_configs()
    assert sorted(from_file) == sorted([*expected, webhooks.QUEUE])
    for name, config in expected.items():
        assert from_file[name].same_settings(config), name
    assert from_file[webhooks.QUEUE].same_settings(webhooks.queue_config())


def test_each_type_has_a_queue_per_priority_within_the_seed_budget():
    for job_type in JOB_TYPES.values():
        configs = queue_configs(job_type)
        assert [config.name for config in configs] == [
            f"{job_type.name}-high-queue",
            f"{job_type.name}-queue",
            f"{job_type.name}-low-queue",
        ]
        assert sum(c.rate_limits.max_dispatches_per_second for c in configs) == pytest.approx(10)
        assert sum(c.rate_limits.max_concurrent_dispatches for c in configs) == 100


async def test_every_queue_exists_after_start_up(service: Service):
    queues = {queue.name: queue for queue in await service.backend.list_queues()}
    expected = expected_configs()
    assert sorted(queues) == sorted([*expected, webhooks.QUEUE])
    assert queues[webhooks.QUEUE].config.same_settings(webhooks.queue_config())
    for name, config in expected.items():
        assert queues[name].config.same_settings(config), name
