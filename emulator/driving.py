"""How time passes for the engine: one loop for every clock, in the spirit of trio's run loop.

The loop pumps the engine (starts every attempt that is due, times out every attempt past
its deadline), then lets time pass until the next instant the engine has something to do.
How time passes is the clock's own answer to ``deadline_to_sleep_time(next instant)``:

- a number of seconds (the wall clock): the loop sleeps that long on one event-loop timer,
  and a change that needs the engine sooner (a new task, a finished attempt, a resumed
  queue) wakes it early;
- ``math.inf`` (a virtual clock, which sleeping never moves): the loop lets the deliveries
  in flight settle, each one finished or itself parked on the clock, jumps the clock to the
  next instant anything happens, pumps, and so on until the drive is over.

Where the loop runs follows from the clock as well. A clock that passes by itself gets the
loop in a background task from ``start()`` to ``stop()``. A clock that must be jumped (a
``SteppableClock``) runs it only inside ``run_until_idle()`` and ``advance()``: between two
such calls nothing moves at all, so a scenario yields the same event trace on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Protocol

from emulator.clock import Clock, SteppableClock

# The settle heuristic. asyncio cannot say "every task is blocked" (trio's
# wait_all_tasks_blocked), so the driver approximates it before each jump. In-process handlers
# finish or park on the virtual clock within a few event-loop turns, and a finished attempt
# dispatches the next one of its queue itself, so nothing else falls due while time stands
# still: the driver gives deliveries SETTLE_SPINS turns, then looks at what they wait on. A
# delivery neither finished nor parked is doing real I/O (HTTP to a real server): the driver
# looks again as soon as an attempt finishes, or after SETTLE_POLL_SECONDS.
SETTLE_SPINS = 4
SETTLE_POLL_SECONDS = 0.01

# Asked of the clock when the engine has nothing to do: a wall clock then sleeps until a
# change wakes it, a virtual clock still says that only a jump gets anywhere.
_NOTHING_DUE = datetime.max.replace(tzinfo=UTC)

# How long a new task may wait, on a clock that passes by itself, for the pump that starts it
# together with every other task created meanwhile (``pump_soon``). Cloud Tasks answers
# CreateTask before it dispatches; here the deliveries of a stream of creations share the
# event loop's wake-ups instead of costing one each: a third less CPU per task end to end over
# gRPC (benchmarks/grpc_emulator.py), for at most this much more latency.
PUMP_SOON_SECONDS = 0.005


class Schedule(Protocol):
    """The engine, as the driver sees it."""

    def pump(self) -> None:
        """Start every attempt that is due now; time out every one past its deadline."""
        ...

    def next_wakeup(self) -> datetime | None:
        """The next instant at which the engine has something to do, if any."""
        ...

    @property
    def deliveries(self) -> Collection[asyncio.Task[None]]:
        """The asyncio tasks of the deliveries in flight: one live collection, the same
        object for the engine's whole life."""
        ...


class Driver:
    """Moves one engine through time (see the module docstring)."""

    def __init__(self, schedule: Schedule, clock: Clock) -> None:
        self._schedule = schedule
        self._clock = clock
        self._stepper = clock if isinstance(clock, SteppableClock) else None
        self._loops = 0  # time loops running: the background one, or the drives in progress
        self._background: asyncio.Task[None] | None = None
        # The running loop's sleep: one future, rung by its timer, by wake_by() or by the
        # timer of pump_soon().
        self._alarm: asyncio.Future[None] | None = None
        self._sleeping_until: datetime | None = None
        self._soon: asyncio.TimerHandle | None = None
        self._progress = asyncio.Event()  # an attempt finished

    @property
    def running(self) -> bool:
        """Whether time is passing: only then may the engine start attempts on its own."""
        return self._loops > 0

    @property
    def sleeping(self) -> bool:
        """Whether the loop sleeps on a timer that ``wake_by`` may need to cut short."""
        return self._alarm is not None

    @property
    def repeatable(self) -> bool:
        """Whether time moves only when driven, so that a scenario can repeat exactly."""
        return self._stepper is not None

    def start(self) -> None:
        """On a clock that passes by itself, run the loop from now on."""
        if self._stepper is None and self._background is None:
            self._background = asyncio.get_running_loop().create_task(self._run(horizon=None))

    async def stop(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
            self._background = None

    def wake_by(self, when: datetime | None) -> None:
        """Something needs the engine no later than ``when``: cut the loop's sleep short if
        it would sleep past that."""
        alarm = self._alarm
        if alarm is None or when is None:
            return
        if self._sleeping_until is None or when < self._sleeping_until:
            _ring(alarm)

    @property
    def starts_in_batches(self) -> bool:
        """Whether new work waits for ``pump_soon``: on a clock that passes by itself. A
        virtual clock's drive starts it at once, as every trace so far expects."""
        return self._stepper is None

    def pump_soon(self) -> None:
        """A task was created: pump within ``PUMP_SOON_SECONDS`` (at once if the loop is
        awake: it pumps before it sleeps again)."""
        alarm = self._alarm
        if alarm is None or self._soon is not None:
            return
        if self._sleeping_until is not None and self._sleeping_until <= self._clock.now():
            return  # its own timer is already due
        self._soon = asyncio.get_running_loop().call_later(PUMP_SOON_SECONDS, _ring, alarm)

    def note_progress(self) -> None:
        """An attempt finished (a settling drive looks again)."""
        self._progress.set()

    async def run_until_idle(self) -> None:
        """Run until nothing is left to happen, jumping the clock from each instant anything
        happens to the next."""
        self._steppable()
        await self._run(horizon=None)

    async def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``, doing on the way everything that falls due,
        in order."""
        await self._run(horizon=self._steppable().now() + delta)

    def _steppable(self) -> SteppableClock:
        if self._stepper is None:
            raise TypeError("run_until_idle() and advance() need a virtual (steppable) clock")
        return self._stepper

    async def _run(self, horizon: datetime | None) -> None:
        """The time loop. ``horizon``: how far a drive may move the clock (None: until
        nothing is left to happen; a clock that passes by itself is never jumped)."""
        self._loops += 1
        try:
            while True:
                self._schedule.pump()
                upcoming = self._schedule.next_wakeup()
                seconds = self._clock.deadline_to_sleep_time(upcoming or _NOTHING_DUE)
                if seconds == math.inf:
                    # Sleeping never gets there: this clock moves only when it is jumped.
                    await self._jump_through(horizon)
                    return
                await self._sleep(upcoming, seconds)
        finally:
            self._loops -= 1

    async def _sleep(self, upcoming: datetime | None, seconds: float) -> None:
        """Sleep on a loop timer rather than a task per wait: attempts start and finish
        thousands of times a second, and each must not cost a wake-up."""
        loop = asyncio.get_running_loop()
        alarm: asyncio.Future[None] = loop.create_future()
        self._alarm, self._sleeping_until = alarm, upcoming
        # Whole milliseconds, rounded up: uvloop's timers round to the nearest millisecond
        # and run a delay under half of one at once, so a token due in 0.4 ms would have the
        # loop wake, find nothing startable and sleep again, over and over, until it came.
        timer = (
            None
            if upcoming is None
            else loop.call_later(math.ceil(seconds * 1000) / 1000, _ring, alarm)
        )
        try:
            await alarm
        finally:
            if timer is not None:
                timer.cancel()
            if self._soon is not None:
                self._soon.cancel()
                self._soon = None
            self._alarm = None

    async def _jump_through(self, horizon: datetime | None) -> None:
        """Settle, jump the clock to the next instant anything happens, pump, and again,
        until nothing is left to happen or the horizon is reached."""
        clock = self._steppable()
        while True:
            target = await self._settle(clock)
            if target is None or (horizon is not None and target > horizon):
                if horizon is None or clock.now() >= horizon:
                    return
                target = horizon
            clock.advance_to(max(target, clock.now()))
            self._schedule.pump()

    async def _settle(self, clock: SteppableClock) -> datetime | None:
        """Wait until every delivery has finished or is parked on the clock (a handler that
        'takes' virtual time); return the next instant anything happens: the earliest
        wake-up of a parked delivery or the engine's next wakeup."""
        deliveries = self._schedule.deliveries
        spins = 0
        while deliveries:
            if spins < SETTLE_SPINS:
                spins += 1
                await asyncio.sleep(0)
                continue
            spins = 0
            parked = clock.parked()
            if all(delivery in parked for delivery in deliveries):
                wakes = [parked[delivery] for delivery in deliveries]
                upcoming = self._schedule.next_wakeup()
                return min([*wakes, upcoming] if upcoming is not None else wakes)
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), SETTLE_POLL_SECONDS)
        return self._schedule.next_wakeup()


def _ring(alarm: asyncio.Future[None]) -> None:
    if not alarm.done():
        alarm.set_result(None)
