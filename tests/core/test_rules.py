"""Cloud Tasks' retry rules as pure functions, pinned to the documented sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator import rules

S = timedelta(seconds=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sequence(count: int, *, min_s: float, max_s: float, doublings: int) -> list[float]:
    return [
        rules.backoff_interval(
            k, min_backoff=min_s * S, max_backoff=max_s * S, max_doublings=doublings
        ).total_seconds()
        for k in range(1, count + 1)
    ]


def test_backoff_doubles_then_grows_linearly_then_caps() -> None:
    assert sequence(8, min_s=10, max_s=300, doublings=3) == [10, 20, 40, 80, 160, 240, 300, 300]


def test_backoff_without_doublings_is_linear() -> None:
    expected = [float(10 * k) for k in range(1, 21)] + [200.0, 200.0]
    assert sequence(22, min_s=10, max_s=200, doublings=0) == expected


def test_default_backoff_reaches_the_cap_on_the_seventeenth_retry() -> None:
    gaps = sequence(18, min_s=0.1, max_s=3600, doublings=16)
    assert gaps[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert gaps[15] == pytest.approx(3276.8)
    assert gaps[16:] == [3600.0, 3600.0]


def test_default_queue_backs_off_for_about_three_and_a_half_days() -> None:
    total = sum(sequence(99, min_s=0.1, max_s=3600, doublings=16))
    assert total == pytest.approx(305_354, abs=1)


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        rules.backoff_interval(0, min_backoff=S, max_backoff=S, max_doublings=1)


@pytest.mark.parametrize(
    ("attempts", "elapsed_s", "max_attempts", "max_duration_s", "exhausted"),
    [
        (3, 10, 3, 0, True),  # attempts met, duration unlimited
        (2, 10, 3, 0, False),
        (3, 10, 3, 3600, False),  # attempts met but the hour has not passed: AND keeps going
        (3, 3600, 3, 3600, True),
        (50, 3599, 3, 3600, False),
        (1, 3600, 3, 3600, False),  # the hour passed but too few attempts
        (1000, 10**6, -1, 0, False),  # both unlimited: forever
        (1, 3600, -1, 3600, True),  # unlimited attempts: only the duration counts
        (1, 3599, -1, 3600, False),
        (100, 0, 100, 0, True),
    ],
)
def test_retries_stop_only_when_both_limits_are_met(
    attempts: int, elapsed_s: int, max_attempts: int, max_duration_s: int, exhausted: bool
) -> None:
    assert (
        rules.retries_exhausted(
            attempts=attempts,
            first_attempt=T0,
            now=T0 + elapsed_s * S,
            max_attempts=max_attempts,
            max_retry_duration=max_duration_s * S,
        )
        is exhausted
    )


@pytest.mark.parametrize(
    ("rate", "burst"), [(500, 100), (1, 10), (0.5, 10), (10, 10), (50, 50), (200, 100)]
)
def test_burst_is_derived_from_the_rate(rate: float, burst: int) -> None:
    assert rules.derive_max_burst_size(rate) == burst


def test_eta_is_fractional_epoch_seconds() -> None:
    when = datetime(2022, 10, 25, 4, 7, 35, 329624, tzinfo=UTC)
    assert rules.format_eta(when) == "1666670855.329624"


@pytest.mark.parametrize(
    ("status", "code"), [(200, 0), (404, 5), (503, 14), (500, 13), (429, 8), (418, 9), (599, 2)]
)
def test_http_status_maps_to_rpc_code(status: int, code: int) -> None:
    assert rules.rpc_code_for_http_status(status) == code


@pytest.mark.parametrize(
    ("status", "headers", "seconds"),
    [
        (503, {"Retry-After": "30"}, 30),
        (429, {"retry-after": "5"}, 5),
        (503, {"Retry-After": "-4"}, 0),
        (500, {"Retry-After": "30"}, None),  # only 429 and 503 ask for it
        (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        (503, {}, None),
    ],
)
def test_retry_after_counts_only_on_429_and_503_in_seconds(
    status: int, headers: dict[str, str], seconds: int | None
) -> None:
    expected = None if seconds is None else seconds * S
    assert rules.retry_after(status, headers) == expected
