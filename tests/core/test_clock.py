"""The clocks, and the engine's time driver on each: a wall clock passes by itself, a virtual
clock only when a drive jumps it."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

import daygen_queue
import emulator as emu
import emulator.clock
from daygen_queue import SystemClock, VirtualClock

QUEUE = "projects/p/locations/l/queues/q"


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
    with pytest.raises(ValueError):
        VirtualClock(datetime(2026, 1, 1))


def test_sleeping_reaches_a_wall_clock_deadline_but_never_a_virtual_one() -> None:
    wall = SystemClock()
    virtual = VirtualClock()

    assert wall.deadline_to_sleep_time(wall.now() - timedelta(seconds=5)) == 0.0
    assert 9.0 < wall.deadline_to_sleep_time(wall.now() + timedelta(seconds=10)) <= 10.0
    assert virtual.deadline_to_sleep_time(virtual.now() + timedelta(seconds=10)) == math.inf


def test_the_project_has_one_wall_clock_and_one_virtual_clock() -> None:
    assert daygen_queue.SystemClock is emulator.clock.SystemClock is emu.RealClock
    assert daygen_queue.VirtualClock is emulator.clock.VirtualClock


async def test_on_the_wall_clock_the_engine_dispatches_by_itself_at_the_due_time() -> None:
    clock = SystemClock()
    delivered: dict[str, datetime] = {}
    all_in = asyncio.Event()

    async def handler(request: emu.DispatchRequest) -> int:
        delivered[request.headers["X-CloudTasks-TaskName"]] = clock.now()
        if len(delivered) == 2:
            all_in.set()
        return 200

    target = emu.HttpTarget(url="http://target.invalid/run")
    async with emu.Engine(clock=clock, dispatcher=emu.CallableDispatcher(handler)) as engine:
        await engine.create_queue(emu.QueueSpec(QUEUE))
        later = clock.now() + timedelta(milliseconds=50)
        await engine.create_task(
            QUEUE, emu.NewTaskSpec(target, name=f"{QUEUE}/tasks/later", schedule_time=later)
        )
        await engine.create_task(QUEUE, emu.NewTaskSpec(target, name=f"{QUEUE}/tasks/now"))

        await asyncio.wait_for(all_in.wait(), 10)

        assert delivered["now"] < later <= delivered["later"]
        with pytest.raises(TypeError, match="virtual"):
            await engine.run_until_idle()


@dataclass
class _CountedEngine:
    """A wall-clock engine whose in-memory target answers 200, with the driver's pumps and
    the deliveries counted; ``all_in`` is set once ``expected`` deliveries arrived."""

    engine: emu.Engine
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    pumps: int = 0
    delivered: int = 0

    @classmethod
    def build(cls, expected: int) -> _CountedEngine:
        async def handler(request: emu.DispatchRequest) -> int:
            counted.delivered += 1
            if counted.delivered == expected:
                counted.all_in.set()
            return 200

        engine = emu.Engine(clock=SystemClock(), dispatcher=emu.CallableDispatcher(handler))
        counted = cls(engine)
        pump = engine.pump

        def counting_pump() -> None:
            counted.pumps += 1
            pump()

        engine.pump = counting_pump  # type: ignore[method-assign]
        return counted


def test_on_uvloop_a_rate_limited_queue_wakes_the_engine_once_per_token_not_in_a_spin() -> None:
    """uvloop runs a timer of under half a millisecond at once: a driver that asked it for
    the 0.4 ms left until the next token would wake, find nothing startable and ask again
    until the token came. The driver rounds its sleeps up to whole milliseconds instead."""
    uvloop = pytest.importorskip("uvloop")
    rate, extra = 100, 30  # a burst of 100 (Cloud Tasks' derivation), then 30 at 10 ms each

    async def scenario() -> tuple[int, int]:
        counted = _CountedEngine.build(rate + extra)
        engine = counted.engine
        async with engine:
            spec = emu.QueueSpec(QUEUE, rate_limits=emu.RateLimits(max_dispatches_per_second=rate))
            await engine.create_queue(spec)
            await engine.pause_queue(QUEUE)
            target = emu.HttpTarget(url="http://target.invalid/run")
            for _ in range(rate + extra):
                await engine.create_task(QUEUE, emu.NewTaskSpec(target))
            before = counted.pumps
            await engine.resume_queue(QUEUE)
            await asyncio.wait_for(counted.all_in.wait(), 10)
            return counted.pumps - before, counted.delivered

    pumps, delivered = uvloop.run(scenario())
    assert delivered == rate + extra
    # One wake per token after the burst, and a few for rounding: a spin makes dozens each.
    assert pumps <= 2 * extra


async def test_on_the_wall_clock_tasks_created_together_start_together_at_the_next_pump() -> None:
    """CreateTask answers before the task starts; the driver's next pump, within
    PUMP_SOON_SECONDS, starts it with every task created meanwhile."""
    counted = _CountedEngine.build(20)
    engine = counted.engine
    async with engine:
        await engine.create_queue(emu.QueueSpec(QUEUE))
        await asyncio.sleep(0)  # the driver's task starts and goes to sleep: nothing is due
        before = counted.pumps
        target = emu.HttpTarget(url="http://target.invalid/run")
        for _ in range(20):
            await engine.create_task(QUEUE, emu.NewTaskSpec(target))
        dispatched = engine.events.of_kind(emu.EventKind.TASK_DISPATCHED)
        assert dispatched == [] and counted.pumps == before  # every answer came before any start
        await asyncio.wait_for(counted.all_in.wait(), 10)
        dispatched = engine.events.of_kind(emu.EventKind.TASK_DISPATCHED)
        assert len(dispatched) == 20
        assert len({event.time for event in dispatched}) == 1  # started by one pump
        assert counted.pumps - before == 1


async def test_a_drive_stops_at_its_horizon_and_resumes_from_there(
    virtual_clock: VirtualClock,
) -> None:
    start = virtual_clock.now()
    delivered: list[timedelta] = []

    async def handler(request: emu.DispatchRequest) -> int:
        delivered.append(virtual_clock.now() - start)
        return 200

    target = emu.HttpTarget(url="http://target.invalid/run")
    dispatcher = emu.CallableDispatcher(handler)
    async with emu.Engine(clock=virtual_clock, dispatcher=dispatcher) as engine:
        await engine.create_queue(emu.QueueSpec(QUEUE))
        for seconds in (5, 20):
            when = start + timedelta(seconds=seconds)
            name = f"{QUEUE}/tasks/at-{seconds}"
            await engine.create_task(QUEUE, emu.NewTaskSpec(target, name=name, schedule_time=when))

        await engine.advance(timedelta(seconds=10))
        assert delivered == [timedelta(seconds=5)]
        assert virtual_clock.now() == start + timedelta(seconds=10)

        await engine.run_until_idle()
        assert delivered == [timedelta(seconds=5), timedelta(seconds=20)]
        assert virtual_clock.now() == start + timedelta(seconds=20)
