"""The daygen_queue models refuse what Cloud Tasks would refuse, naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from daygen_queue import HttpRequest, NewTask, QueueConfig, RateLimits, RetryConfig


def field_of(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.errors()[0]["loc"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_dispatches_per_second": 0}, "max_dispatches_per_second"),
        ({"max_dispatches_per_second": 500.5}, "max_dispatches_per_second"),
        ({"max_concurrent_dispatches": 5001}, "max_concurrent_dispatches"),
        ({"max_concurrent_dispatches": 0}, "max_concurrent_dispatches"),
    ],
)
def test_rate_limits_are_bounded(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimits(**kwargs)  # type: ignore[arg-type]
    assert field_of(caught.value) == field


def test_fractional_rates_are_allowed() -> None:
    assert RateLimits(max_dispatches_per_second=0.5).max_dispatches_per_second == 0.5


def test_burst_size_is_left_to_the_service() -> None:
    """Output only: the service derives it (tests/core/test_rules.py) and reports it."""
    assert RateLimits(max_dispatches_per_second=0.5).max_burst_size is None


def test_same_settings_ignores_only_what_the_service_outputs() -> None:
    config = QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=10))
    reported = QueueConfig(
        name="q", rate_limits=RateLimits(max_dispatches_per_second=10, max_burst_size=10)
    )
    faster = QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=11))
    fewer_attempts = QueueConfig(name="q", retry_config=RetryConfig(max_attempts=3))

    assert config.same_settings(reported)
    assert not config.same_settings(faster)
    assert not QueueConfig(name="q").same_settings(fewer_attempts)
    assert not config.same_settings(config.model_copy(update={"name": "other"}))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": -2}, "max_attempts"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_doublings": -1}, "max_doublings"),
        ({"min_backoff": timedelta(seconds=-1)}, "min_backoff"),
        ({"max_backoff": timedelta(seconds=-1)}, "max_backoff"),
        ({"max_retry_duration": timedelta(seconds=-1)}, "max_retry_duration"),
    ],
)
def test_retry_config_is_bounded(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetryConfig(**kwargs)  # type: ignore[arg-type]
    assert field_of(caught.value) == field


def test_min_backoff_must_not_exceed_max_backoff() -> None:
    with pytest.raises(ValidationError, match="min_backoff must be less than or equal"):
        RetryConfig(min_backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=5))


def test_unlimited_attempts_are_allowed() -> None:
    assert RetryConfig(max_attempts=-1).max_attempts == -1


@pytest.mark.parametrize("name", ["", "has space", "a" * 101, "under_score"])
def test_queue_names_follow_cloud_tasks_rules(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        QueueConfig(name=name)
    assert field_of(caught.value) == "name"


def test_task_url_must_be_http() -> None:
    with pytest.raises(ValidationError) as caught:
        HttpRequest(url="ftp://example.com/x")
    assert field_of(caught.value) == "url"


def test_body_only_with_post_put_patch() -> None:
    with pytest.raises(ValidationError, match="only allowed with POST"):
        HttpRequest(url="http://x", http_method="GET", body=b"x")
    assert HttpRequest(url="http://x", http_method="PUT", body=b"x").body == b"x"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "bad/name"}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"dispatch_deadline": timedelta(seconds=14)}, "dispatch_deadline"),
        ({"dispatch_deadline": timedelta(minutes=31)}, "dispatch_deadline"),
        ({"schedule_time": datetime(2026, 1, 1)}, "schedule_time"),
    ],
)
def test_new_task_is_checked(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewTask(http_request=HttpRequest(url="http://x"), **kwargs)  # type: ignore[arg-type]
    assert field_of(caught.value) == field
