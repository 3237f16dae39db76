"""The app ensures the seed's four queues at start-up, configured like ``queues.toml``."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from app.jobs.types import JOB_TYPES, queue_config
from app.webhooks import delivery as webhooks
from daygen_queue.queues_file import load_queue_configs
from tests.app.conftest import Service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours"}
    return timedelta(**{units[text[-1]]: float(text[:-1])})


def test_queue_config_matches_queues_toml():
    spec = tomllib.loads((ROOT / "queues.toml").read_text())
    rate, retry = spec["defaults"]["rate_limits"], spec["defaults"]["retry_config"]
    job_queues = sorted(job_type.queue for job_type in JOB_TYPES.values())
    assert sorted(spec["queues"]) == sorted([*job_queues, webhooks.QUEUE])
    for job_type in JOB_TYPES.values():
        config = queue_config(job_type)
        assert config.rate_limits.max_dispatches_per_second == rate["max_dispatches_per_second"]
        assert config.rate_limits.max_concurrent_dispatches == rate["max_concurrent_dispatches"]
        assert config.retry_config.max_attempts == retry["max_attempts"]
        assert config.retry_config.max_retry_duration == duration(retry["max_retry_duration"])
        assert config.retry_config.min_backoff == duration(retry["min_backoff"])
        assert config.retry_config.max_backoff == duration(retry["max_backoff"])
        assert config.retry_config.max_doublings == retry["max_doublings"]


async def test_the_four_queues_exist_after_start_up(service: Service):
    queues = {queue.name: queue for queue in await service.backend.list_queues()}
    job_queues = [job_type.queue for job_type in JOB_TYPES.values()]
    assert sorted(queues) == sorted([*job_queues, webhooks.QUEUE])
    assert queues[webhooks.QUEUE].config.same_settings(webhooks.queue_config())
    for job_type in JOB_TYPES.values():
        assert queues[job_type.queue].config.same_settings(queue_config(job_type))


def test_the_webhook_queue_matches_queues_toml():
    configs = {config.name: config for config in load_queue_configs(ROOT / "queues.toml")}
    assert configs[webhooks.QUEUE].same_settings(webhooks.queue_config())
