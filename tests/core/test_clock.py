from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from daygen_queue import VirtualClock


async def test_virtual_sleepers_wake_in_deadline_order(virtual_clock: VirtualClock) -> None:
    woken: list[str] = []
    start = virtual_clock.now()

    async def sleeper(name: str, seconds: int) -> None:
        await virtual_clock.sleep_until(start + timedelta(seconds=seconds))
        woken.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 30), ("early", 10))]
    await asyncio.sleep(0)
    assert set(virtual_clock.parked().values()) == {
        start + timedelta(seconds=10),
        start + timedelta(seconds=30),
    }

    virtual_clock.advance(timedelta(seconds=10))
    await asyncio.sleep(0)
    assert woken == ["early"]
    virtual_clock.advance(timedelta(seconds=20))
    await asyncio.gather(*tasks)
    assert woken == ["early", "late"]
    assert virtual_clock.parked() == {}


def test_virtual_time_never_goes_backwards(virtual_clock: VirtualClock) -> None:
    with pytest.raises(ValueError):
        virtual_clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        virtual_clock.advance_to(virtual_clock.now() - timedelta(microseconds=1))


def test_virtual_clock_needs_an_aware_start() -> None:
    from datetime import datetime

    with pytest.raises(ValueError):
        VirtualClock(datetime(2026, 1, 1))
