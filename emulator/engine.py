"""The emulator engine: a local Cloud Tasks.

One object holds every queue and task in memory, dispatches with a per-queue token bucket and
concurrency cap from a due-time heap (no per-task timers, no polling), retries per RetryConfig,
and journals to a ``Store``. Both the in-process backend and the gRPC/REST server wrap it.

Time comes from an injected clock. On a real clock a background loop sleeps until the next
due instant. On a steppable (virtual) clock nothing moves until ``run_until_idle()`` or
``advance()`` drives it, so a scenario yields the same event trace on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from emulator import rules
from emulator.clock import Clock, RealClock, SteppableClock
from emulator.dispatch import Dispatcher, DispatchRequest, DispatchResult, HttpDispatcher
from emulator.errors import (
    ENTITY_MISSING,
    QUEUE_EXISTS,
    QUEUE_MISSING,
    QUEUE_TOMBSTONED,
    TASK_EXISTS,
    TASK_TOMBSTONED,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from emulator.events import Event, EventKind, EventStream
from emulator.headers import attempt_headers
from emulator.model import (
    Attempt,
    HttpTarget,
    NewTaskSpec,
    QueueRecord,
    QueueSpec,
    QueueState,
    QueueStats,
    TaskRecord,
)
from emulator.ratelimit import TokenBucket
from emulator.store import MemoryStore, Store
from emulator.validation import (
    apply_queue_defaults,
    check_task_size,
    split_queue_name,
    split_task_name,
    validate_new_task,
    validate_queue_spec,
)

_MICRO = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)
# How often the driver looks again at deliveries that neither finished nor parked on the
# virtual clock (real HTTP in flight); only used while run_until_idle()/advance() wait.
_SETTLE_POLL_SECONDS = 0.01
_SETTLE_SPINS = 4

QUEUE_FIELDS = frozenset(
    {
        "rate_limits.max_dispatches_per_second",
        "rate_limits.max_concurrent_dispatches",
        "retry_config.max_attempts",
        "retry_config.max_retry_duration",
        "retry_config.min_backoff",
        "retry_config.max_backoff",
        "retry_config.max_doublings",
    }
)


class TokenMinter(Protocol):
    """Signs the OIDC token sent with a task that asks for one."""

    def mint(self, *, service_account_email: str, audience: str) -> str: ...


def _micros(when: datetime) -> int:
    return (when - rules.EPOCH) // _MICRO


@dataclass(slots=True)
class _QueueRuntime:
    record: QueueRecord
    bucket: TokenBucket
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    heap: list[tuple[int, int, int, TaskRecord]] = field(default_factory=list)
    in_flight: int = 0
    finished: deque[datetime] = field(default_factory=deque)  # completions, for stats


@dataclass(slots=True, eq=False)
class _Flight:
    """One attempt on the wire."""

    queue: _QueueRuntime
    task: TaskRecord
    attempt: Attempt
    number: int  # dispatch number of this attempt, from 1
    deadline: datetime
    job: asyncio.Task[None] | None = None
    done: bool = False


class Engine:
    """A local Cloud Tasks. Queue and task names are full resource names."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        dispatcher: Dispatcher | None = None,
        store: Store | None = None,
        task_tombstone_ttl: timedelta = rules.DEFAULT_TASK_TOMBSTONE_TTL,
        queue_tombstone_ttl: timedelta = rules.DEFAULT_QUEUE_TOMBSTONE_TTL,
        token_minter: TokenMinter | None = None,
        seed: int | None = None,
        event_history: int = 100_000,
    ) -> None:
        self._clock: Clock = clock if clock is not None else RealClock()
        self._dispatcher: Dispatcher = dispatcher if dispatcher is not None else HttpDispatcher()
        self._store: Store = store if store is not None else MemoryStore()
        self._task_tombstone_ttl = task_tombstone_ttl
        self._queue_tombstone_ttl = queue_tombstone_ttl
        self._token_minter = token_minter
        self._stepper: SteppableClock | None = (
            self._clock if isinstance(self._clock, SteppableClock) else None
        )
        self._manual = self._stepper is not None
        # Generated task ids are 20 decimal digits like Cloud Tasks'; on a virtual clock they
        # come from a fixed seed so that traces repeat.
        self._rng = random.Random(seed if seed is not None else (0 if self._manual else None))
        self.events = EventStream(history=event_history)
        self._queues: dict[str, _QueueRuntime] = {}
        self._task_tombstones: dict[str, datetime] = {}
        self._tombstone_order: deque[tuple[datetime, str]] = deque()
        self._queue_tombstones: dict[str, datetime] = {}
        self._flights: set[_Flight] = set()
        self._deadlines: list[tuple[int, int, _Flight]] = []
        self._finished_deadlines = 0  # done entries still in the heap
        self._seq = itertools.count()
        self._driving = 0
        self._progress = asyncio.Event()
        self._alarm: asyncio.Future[None] | None = None  # the real-clock driver's sleep
        self._sleeping_until: datetime | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def clock(self) -> Clock:
        return self._clock

    async def start(self) -> None:
        """Load what the store kept and, on a real clock, start dispatching."""
        if self._started:
            return
        self._started = True
        state = await self._store.load()
        now = self._clock.now()
        for queue in state.queues:
            self._queues[queue.name] = self._runtime_for(queue, now)
        for task in state.tasks:
            runtime = self._queues.get(task.queue)
            if runtime is None:
                continue
            task.in_flight = 0  # an attempt cut off by a crash is simply dispatched again
            runtime.tasks[task.name] = task
            self._push(runtime, task)
        for name, until in sorted(state.task_tombstones.items(), key=lambda item: item[1]):
            self._task_tombstones[name] = until
            self._tombstone_order.append((until, name))
        self._queue_tombstones.update(state.queue_tombstones)
        if not self._manual:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        jobs = [flight.job for flight in self._flights if flight.job is not None]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        self._flights.clear()
        await self._store.flush()
        await self._store.close()
        await self._dispatcher.close()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ queues

    def _runtime_for(self, record: QueueRecord, now: datetime) -> _QueueRuntime:
        rate = record.rate_limits
        bucket = TokenBucket(rate.max_dispatches_per_second, rate.max_burst_size, now)
        return _QueueRuntime(record=record, bucket=bucket)

    def _existing(self, name: str, message: str = QUEUE_MISSING) -> _QueueRuntime:
        split_queue_name(name)
        runtime = self._queues.get(name)
        if runtime is None:
            raise NotFound(message, resource="queue")
        return runtime

    def _check_queue_tombstone(self, name: str, now: datetime) -> None:
        until = self._queue_tombstones.get(name)
        if until is not None:
            if until > now:
                raise FailedPrecondition(QUEUE_TOMBSTONED, resource="queue")
            del self._queue_tombstones[name]

    async def create_queue(self, spec: QueueSpec) -> QueueRecord:
        spec = _copy_spec(spec)
        apply_queue_defaults(spec)
        validate_queue_spec(spec)
        now = self._clock.now()
        if spec.name in self._queues:
            raise AlreadyExists(QUEUE_EXISTS, resource="queue")
        self._check_queue_tombstone(spec.name, now)
        record = QueueRecord(spec.name, spec.rate_limits, spec.retry_config)
        self._queues[spec.name] = self._runtime_for(record, now)
        self._store.put_queue(record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_CREATED, record.short_id)
        return record

    async def update_queue(
        self, spec: QueueSpec, fields: Iterable[str] | None = None
    ) -> QueueRecord:
        """UpdateQueue: an upsert. ``fields`` are dotted paths (``rate_limits.max_...``) to
        copy from ``spec``; None or empty means every field."""
        chosen = set(fields) if fields else set(QUEUE_FIELDS)
        unknown = chosen - QUEUE_FIELDS - {"rate_limits", "retry_config"}
        if unknown:
            raise InvalidArgument(f"Unknown field(s) in update_mask: {', '.join(sorted(unknown))}")
        split_queue_name(spec.name)
        runtime = self._queues.get(spec.name)
        if runtime is None:
            created = _copy_spec(spec)
            if fields:
                created = _masked(QueueSpec(spec.name), spec, chosen)
            return await self.create_queue(created)
        merged = _masked(
            QueueSpec(
                spec.name,
                replace(runtime.record.rate_limits),
                replace(runtime.record.retry_config),
            ),
            spec,
            chosen,
        )
        apply_queue_defaults(merged)
        validate_queue_spec(merged)
        record = runtime.record
        record.rate_limits = merged.rate_limits
        record.retry_config = merged.retry_config
        now = self._clock.now()
        rate = record.rate_limits
        runtime.bucket.reconfigure(rate.max_dispatches_per_second, rate.max_burst_size, now)
        self._store.put_queue(record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_UPDATED, record.short_id)
        self._kick(runtime)
        return record

    def get_queue(self, name: str) -> QueueRecord:
        return self._existing(name).record

    def list_queues(self, parent: str) -> list[QueueRecord]:
        prefix = parent.rstrip("/") + "/queues/"
        return sorted(
            (rt.record for name, rt in self._queues.items() if name.startswith(prefix)),
            key=lambda record: record.name,
        )

    def queue_stats(self, name: str) -> QueueStats:
        runtime = self._existing(name)
        now = self._clock.now()
        self._forget_old_completions(runtime, now)
        oldest = min((task.schedule_time for task in runtime.tasks.values()), default=None)
        running = runtime.record.state is QueueState.RUNNING
        return QueueStats(
            tasks_count=len(runtime.tasks),
            oldest_estimated_arrival_time=oldest,
            executed_last_minute_count=len(runtime.finished),
            concurrent_dispatches_count=runtime.in_flight,
            effective_execution_rate=(
                runtime.record.rate_limits.max_dispatches_per_second if running else 0.0
            ),
        )

    async def delete_queue(self, name: str) -> None:
        runtime = self._existing(name, ENTITY_MISSING)
        now = self._clock.now()
        del self._queues[name]
        until = now + self._queue_tombstone_ttl
        self._queue_tombstones[name] = until
        for task in runtime.tasks.values():
            self._store.remove_task(task.name, now + self._task_tombstone_ttl)
        runtime.tasks.clear()
        runtime.heap.clear()
        self._store.remove_queue(name, until)
        await self._store.flush()
        self._emit(EventKind.QUEUE_DELETED, runtime.record.short_id)

    async def pause_queue(self, name: str) -> QueueRecord:
        runtime = self._existing(name)
        runtime.record.state = QueueState.PAUSED
        self._store.put_queue(runtime.record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_PAUSED, runtime.record.short_id)
        return runtime.record

    async def resume_queue(self, name: str) -> QueueRecord:
        runtime = self._existing(name)
        runtime.record.state = QueueState.RUNNING
        self._store.put_queue(runtime.record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_RESUMED, runtime.record.short_id)
        self._kick(runtime)
        return runtime.record

    async def purge_queue(self, name: str) -> QueueRecord:
        """Deletes every task created up to now, and (as Cloud Tasks, whose create_time has
        whole seconds) any task created later within the same second."""
        runtime = self._existing(name)
        now = self._clock.now()
        runtime.record.purge_time = now
        for task in list(runtime.tasks.values()):
            self._drop(runtime, task, EventKind.TASK_PURGED, now)
        runtime.heap.clear()
        self._store.put_queue(runtime.record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_PURGED, runtime.record.short_id)
        return runtime.record

    # ------------------------------------------------------------------ tasks

    def _new_task_id(self) -> str:
        return f"{self._rng.randrange(10**20):020d}"

    async def create_task(self, queue: str, spec: NewTaskSpec) -> TaskRecord:
        runtime = self._existing(queue)
        now = self._clock.now()
        validate_new_task(spec, now)
        if spec.name is not None:
            task_queue, _ = split_task_name(spec.name)
            if task_queue != queue:
                raise InvalidArgument(
                    f"The queue name from request ('{queue}') must be the same as the queue "
                    f"name in the named task ('{task_queue}')."
                )
            name = spec.name
            if name in runtime.tasks or self._tombstoned(name, now):
                raise AlreadyExists(TASK_EXISTS, resource="task")
        else:
            name = f"{queue}/tasks/{self._new_task_id()}"
            while name in runtime.tasks:
                name = f"{queue}/tasks/{self._new_task_id()}"
        target = spec.http_request
        check_task_size(name, target)
        if spec.schedule_time is None or spec.schedule_time < now:
            schedule_time = now
        else:
            schedule_time = spec.schedule_time
        task = TaskRecord(
            name=name,
            queue=queue,
            http_request=HttpTarget(
                target.url, target.http_method, dict(target.headers), target.body, target.oidc_token
            ),
            schedule_time=schedule_time,
            create_time=rules.truncate_to_second(now),
            dispatch_deadline=spec.dispatch_deadline or rules.DEFAULT_DISPATCH_DEADLINE,
            named=spec.name is not None,
        )
        self._emit(EventKind.TASK_CREATED, runtime.record.short_id, task.short_id)
        purge_time = runtime.record.purge_time
        if purge_time is not None and task.create_time <= purge_time:
            # Created in the purge's second: Cloud Tasks purges it too (facts §2.5, §9.4).
            self._forget(task, now)
            self._emit(EventKind.TASK_PURGED, runtime.record.short_id, task.short_id)
            await self._store.flush()
            return task
        runtime.tasks[name] = task
        self._push(runtime, task)
        self._store.put_task(task)
        await self._store.flush()
        self._kick(runtime)
        return task

    def _task_location(self, name: str) -> tuple[_QueueRuntime, TaskRecord]:
        queue, _ = split_task_name(name)
        runtime = self._existing(queue)
        task = runtime.tasks.get(name)
        if task is None:
            if self._tombstoned(name, self._clock.now()):
                raise NotFound(TASK_TOMBSTONED, resource="task")
            raise NotFound(ENTITY_MISSING, resource="task")
        return runtime, task

    def get_task(self, name: str) -> TaskRecord:
        return self._task_location(name)[1]

    def list_tasks(self, queue: str) -> list[TaskRecord]:
        return list(self._existing(queue).tasks.values())

    async def delete_task(self, name: str) -> None:
        queue, _ = split_task_name(name)
        runtime = self._existing(queue, ENTITY_MISSING)
        task = runtime.tasks.get(name)
        if task is None:
            raise NotFound(ENTITY_MISSING, resource="task")
        self._drop(runtime, task, EventKind.TASK_DELETED, self._clock.now())
        await self._store.flush()

    async def run_task(self, name: str) -> TaskRecord:
        """Dispatch now, ignoring pause, rate limits and any attempt already in flight. The
        attempt counts like any other (dispatch count, RetryCount header, max_attempts)."""
        queue, _ = split_task_name(name)
        runtime = self._existing(queue, ENTITY_MISSING)
        task = runtime.tasks.get(name)
        if task is None:
            raise NotFound(ENTITY_MISSING, resource="task")
        task.generation += 1  # its heap entry is void: it must not run again at schedule time
        self._start_attempt(runtime, task, self._clock.now())
        return task

    # ------------------------------------------------------------------ time

    def next_wakeup(self) -> datetime | None:
        """The next instant at which the engine has something to do, if any."""
        now = self._clock.now()
        candidates = [self._queue_wakeup(runtime, now) for runtime in self._queues.values()]
        self._prune_deadlines()
        if self._deadlines:
            candidates.append(self._deadlines[0][2].deadline)
        return min((when for when in candidates if when is not None), default=None)

    def _queue_wakeup(self, runtime: _QueueRuntime, now: datetime) -> datetime | None:
        """When this queue can dispatch next, or None if only a completion or a change can
        make it (paused, at its concurrency cap, or empty)."""
        if runtime.record.state is not QueueState.RUNNING:
            return None
        if runtime.in_flight >= runtime.record.rate_limits.max_concurrent_dispatches:
            return None
        top = self._top(runtime)
        if top is None:
            return None
        due = top.schedule_time if top.schedule_time > now else now
        return max(due, runtime.bucket.next_token_time(now))

    async def run_until_idle(self) -> None:
        """Dispatch everything due, wait for those deliveries, jump the virtual clock to the
        next due instant, and repeat until no task is left to run."""
        clock = self._steppable()
        self._driving += 1
        try:
            while True:
                await self._settle(horizon=None)
                upcoming = self.next_wakeup()
                if upcoming is None:
                    return
                clock.advance_to(upcoming)
        finally:
            self._driving -= 1

    async def advance(self, delta: timedelta) -> None:
        """Move the virtual clock forward by ``delta``, doing on the way everything that falls
        due, in order."""
        clock = self._steppable()
        target = clock.now() + delta
        self._driving += 1
        try:
            while True:
                await self._settle(horizon=target)
                upcoming = self.next_wakeup()
                if upcoming is None or upcoming > target:
                    break
                clock.advance_to(upcoming)
            if clock.now() < target:
                clock.advance_to(target)
                await self._settle(horizon=target)
        finally:
            self._driving -= 1

    def _steppable(self) -> SteppableClock:
        if self._stepper is None:
            raise TypeError("run_until_idle() and advance() need a virtual (steppable) clock")
        return self._stepper

    async def _settle(self, horizon: datetime | None) -> None:
        """Pump until nothing is due now and no delivery is running, jumping virtual time
        only when every running delivery is parked on the clock (a handler that 'takes'
        virtual time) and the jump stays within ``horizon``."""
        clock = self._steppable()
        self._pump()
        spins = 0
        while self._flights:
            if spins < _SETTLE_SPINS:
                # In-process handlers finish or park within a few loop turns. Completions
                # pump their own queue, so nothing else becomes due while time stands still.
                spins += 1
                await asyncio.sleep(0)
                continue
            spins = 0
            parked = clock.parked()
            if all(f.job is not None and f.job in parked for f in self._flights):
                wakes = [parked[f.job] for f in self._flights if f.job is not None]
                upcoming = self.next_wakeup()
                target = min([*wakes, upcoming] if upcoming is not None else wakes)
                if horizon is not None and target > horizon:
                    return
                clock.advance_to(max(target, clock.now()))
                self._pump()
                continue
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), _SETTLE_POLL_SECONDS)

    async def _run(self) -> None:
        """Real-clock driver: sleep until the next due instant unless woken earlier.

        Non-steppable clocks flow with the wall clock, so the sleep is a loop timer rather
        than a task per wait: completions and creations happen thousands of times a second
        and must not each cost a wake-up.
        """
        loop = asyncio.get_running_loop()
        while True:
            self._pump()
            upcoming = self.next_wakeup()
            alarm: asyncio.Future[None] = loop.create_future()
            self._alarm, self._sleeping_until = alarm, upcoming
            timer = None
            if upcoming is not None:
                delay = max(0.0, (upcoming - self._clock.now()).total_seconds())
                timer = loop.call_later(delay, self._ring, alarm)
            try:
                await alarm
            finally:
                if timer is not None:
                    timer.cancel()
                self._alarm = None

    @staticmethod
    def _ring(alarm: asyncio.Future[None]) -> None:
        if not alarm.done():
            alarm.set_result(None)

    def _wake_by(self, when: datetime | None) -> None:
        """Make the real-clock driver look again no later than ``when``."""
        alarm = self._alarm
        if alarm is None or when is None:
            return
        if self._sleeping_until is None or when < self._sleeping_until:
            self._ring(alarm)

    def _kick(self, runtime: _QueueRuntime, now: datetime | None = None) -> None:
        """Something changed in a queue: dispatch right away if time is flowing, and let the
        real-clock driver know if the queue now needs it sooner."""
        if self._manual and not self._driving:
            return
        if now is None:
            now = self._clock.now()
        self._pump_queue(runtime, now)
        if self._alarm is not None:
            self._wake_by(self._queue_wakeup(runtime, now))

    # ------------------------------------------------------------------ dispatching

    def _pump(self) -> None:
        now = self._clock.now()
        self._expire_deadlines(now)
        self._expire_tombstones(now)
        for runtime in list(self._queues.values()):
            self._pump_queue(runtime, now)

    def _pump_queue(self, runtime: _QueueRuntime, now: datetime) -> None:
        if runtime.record.state is not QueueState.RUNNING:
            return
        cap = runtime.record.rate_limits.max_concurrent_dispatches
        now_us = _micros(now)
        heap = runtime.heap
        while heap and runtime.in_flight < cap:
            due_us, _, generation, task = heap[0]
            if task.generation != generation or runtime.tasks.get(task.name) is not task:
                heapq.heappop(heap)
                continue
            if due_us > now_us or not runtime.bucket.try_take(now):
                return
            heapq.heappop(heap)
            self._start_attempt(runtime, task, now)

    def _top(self, runtime: _QueueRuntime) -> TaskRecord | None:
        heap = runtime.heap
        while heap:
            _, _, generation, task = heap[0]
            if task.generation == generation and runtime.tasks.get(task.name) is task:
                return task
            heapq.heappop(heap)
        return None

    def _push(self, runtime: _QueueRuntime, task: TaskRecord) -> None:
        entry = (_micros(task.schedule_time), next(self._seq), task.generation, task)
        heapq.heappush(runtime.heap, entry)

    def _start_attempt(self, runtime: _QueueRuntime, task: TaskRecord, now: datetime) -> None:
        queue_id = runtime.record.short_id
        headers = attempt_headers(queue_id, task)
        oidc = task.http_request.oidc_token
        if oidc is not None and self._token_minter is not None:
            headers["Authorization"] = "Bearer " + self._token_minter.mint(
                service_account_email=oidc.service_account_email,
                audience=oidc.audience or task.http_request.url,
            )
        task.dispatch_count += 1
        attempt = Attempt(schedule_time=task.schedule_time, dispatch_time=now)
        if task.first_attempt is None:
            task.first_attempt = Attempt(dispatch_time=now)
        task.last_attempt = attempt
        task.in_flight += 1
        runtime.in_flight += 1
        target = task.http_request
        request = DispatchRequest(
            url=target.url,
            method=target.http_method,
            headers=headers,
            body=target.body,
            deadline=task.dispatch_deadline,
        )
        flight = _Flight(runtime, task, attempt, task.dispatch_count, now + task.dispatch_deadline)
        self._flights.add(flight)
        heapq.heappush(self._deadlines, (_micros(flight.deadline), next(self._seq), flight))
        self._store.put_task(task)
        self._emit(
            EventKind.TASK_DISPATCHED, queue_id, task.short_id, attempt=flight.number, now=now
        )
        flight.job = asyncio.get_running_loop().create_task(self._deliver(flight, request))
        self._wake_by(flight.deadline)

    async def _deliver(self, flight: _Flight, request: DispatchRequest) -> None:
        try:
            result = await self._dispatcher.dispatch(request)
        except asyncio.CancelledError:
            if flight.done:
                return  # the deadline passed: already recorded as DEADLINE_EXCEEDED
            raise
        except Exception as exc:  # any failure to deliver is a failed attempt
            result = DispatchResult(status=None, error=f"connection error: {exc!r}")
        if not flight.done:
            self._finish(flight, result, self._clock.now())

    def _prune_deadlines(self) -> None:
        """Finished attempts leave their deadline entry behind (a heap cannot remove from the
        middle): drop them from the top, and rebuild once they are most of the heap, so
        memory stays flat however many tasks pass through."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].done:
            heapq.heappop(deadlines)
            self._finished_deadlines -= 1
        if self._finished_deadlines > 64 and self._finished_deadlines * 2 > len(deadlines):
            self._deadlines = [entry for entry in deadlines if not entry[2].done]
            heapq.heapify(self._deadlines)
            self._finished_deadlines = 0

    def _expire_deadlines(self, now: datetime) -> None:
        now_us = _micros(now)
        while self._deadlines and self._deadlines[0][0] <= now_us:
            _, _, flight = heapq.heappop(self._deadlines)
            if flight.done:
                self._finished_deadlines -= 1
                continue
            job = flight.job
            timeout = DispatchResult(status=None, error="DEADLINE_EXCEEDED")
            self._finish(flight, timeout, now, expired=True)
            if job is not None:
                job.cancel()

    def _finish(
        self, flight: _Flight, result: DispatchResult, now: datetime, *, expired: bool = False
    ) -> None:
        """Record an attempt's outcome and decide the task's fate."""
        flight.done = True
        flight.job = None
        self._flights.discard(flight)
        if not expired:  # an expired deadline's entry has already left the heap
            self._finished_deadlines += 1
            self._prune_deadlines()
        runtime, task, attempt = flight.queue, flight.task, flight.attempt
        runtime.in_flight -= 1
        task.in_flight -= 1
        runtime.finished.append(now)
        self._forget_old_completions(runtime, now)
        status = result.status
        attempt.response_time = now
        attempt.http_status = status
        if status is not None:
            attempt.response_code = rules.rpc_code_for_http_status(status)
            attempt.response_message = f"HTTP {status}"
            task.response_count += 1
            if status < 500:
                task.execution_count += 1
        elif result.error == "DEADLINE_EXCEEDED":
            attempt.response_code = rules.RPC_DEADLINE_EXCEEDED
            attempt.response_message = "DEADLINE_EXCEEDED"
        else:
            attempt.response_code = rules.RPC_UNAVAILABLE
            attempt.response_message = result.error
        queue_id = runtime.record.short_id
        alive = self._queues.get(runtime.record.name) is runtime and (
            runtime.tasks.get(task.name) is task
        )
        if status is not None and rules.is_success(status):
            self._emit(
                EventKind.ATTEMPT_SUCCEEDED, queue_id, task.short_id, flight.number, status, now=now
            )
            if alive:
                self._remove(runtime, task, now)
        else:
            self._emit(
                EventKind.ATTEMPT_FAILED,
                queue_id,
                task.short_id,
                flight.number,
                status,
                detail=result.error,
                now=now,
            )
            if alive and task.in_flight == 0:
                self._after_failure(runtime, task, result, now)
        self._progress.set()
        self._kick(runtime, now)

    def _after_failure(
        self, runtime: _QueueRuntime, task: TaskRecord, result: DispatchResult, now: datetime
    ) -> None:
        retry = runtime.record.retry_config
        first = task.first_attempt.dispatch_time if task.first_attempt else None
        if rules.retries_exhausted(
            attempts=task.dispatch_count,
            first_attempt=first,
            now=now,
            max_attempts=retry.max_attempts,
            max_retry_duration=retry.max_retry_duration,
        ):
            self._remove(runtime, task, now)
            self._emit(
                EventKind.TASK_EXHAUSTED,
                runtime.record.short_id,
                task.short_id,
                task.dispatch_count,
            )
            return
        delay = rules.backoff_interval(
            task.dispatch_count,
            min_backoff=retry.min_backoff,
            max_backoff=retry.max_backoff,
            max_doublings=retry.max_doublings,
        )
        retry_after = _retry_after(result)
        if retry_after is not None:
            delay = max(delay, retry_after)
        task.schedule_time = now + delay
        task.generation += 1
        self._push(runtime, task)
        self._store.put_task(task)
        self._emit(
            EventKind.RETRY_SCHEDULED,
            runtime.record.short_id,
            task.short_id,
            task.dispatch_count,
            retry_at=task.schedule_time,
        )

    # ------------------------------------------------------------------ bookkeeping

    def _remove(self, runtime: _QueueRuntime, task: TaskRecord, now: datetime) -> None:
        del runtime.tasks[task.name]
        self._forget(task, now)

    def _forget(self, task: TaskRecord, now: datetime) -> None:
        """Drop a finished task from the store; a name the client chose stays reserved for
        the tombstone TTL (dedup does not apply to generated ids)."""
        if task.named:
            self._bury(task.name, now)
        else:
            self._store.remove_task(task.name, None)

    def _drop(
        self, runtime: _QueueRuntime, task: TaskRecord, kind: EventKind, now: datetime
    ) -> None:
        self._remove(runtime, task, now)
        self._emit(kind, runtime.record.short_id, task.short_id)

    def _bury(self, name: str, now: datetime) -> None:
        until = now + self._task_tombstone_ttl
        self._task_tombstones[name] = until
        self._tombstone_order.append((until, name))
        self._store.remove_task(name, until)

    def _tombstoned(self, name: str, now: datetime) -> bool:
        until = self._task_tombstones.get(name)
        return until is not None and until > now

    def _expire_tombstones(self, now: datetime) -> None:
        order = self._tombstone_order
        while order and order[0][0] <= now:
            until, name = order.popleft()
            if self._task_tombstones.get(name) == until:
                del self._task_tombstones[name]

    def _forget_old_completions(self, runtime: _QueueRuntime, now: datetime) -> None:
        horizon = now - _MINUTE
        while runtime.finished and runtime.finished[0] < horizon:
            runtime.finished.popleft()

    def _emit(
        self,
        kind: EventKind,
        queue: str,
        task: str | None = None,
        attempt: int | None = None,
        status: int | None = None,
        *,
        retry_at: datetime | None = None,
        detail: str = "",
        now: datetime | None = None,
    ) -> None:
        when = self._clock.now() if now is None else now
        self.events.emit(Event(when, kind, queue, task, attempt, status, retry_at, detail))


def _retry_after(result: DispatchResult) -> timedelta | None:
    """``Retry-After`` in seconds on a 429/503 is honoured as a lower bound on the backoff."""
    if result.status not in (429, 503):
        return None
    for name, value in result.headers.items():
        if name.lower() == "retry-after":
            with contextlib.suppress(ValueError):
                return timedelta(seconds=max(0, int(value)))
    return None


def _copy_spec(spec: QueueSpec) -> QueueSpec:
    return QueueSpec(spec.name, replace(spec.rate_limits), replace(spec.retry_config))


def _masked(base: QueueSpec, source: QueueSpec, fields: set[str]) -> QueueSpec:
    """``base`` with the masked fields taken from ``source``."""
    for path in fields:
        group, _, attribute = path.partition(".")
        parts: list[tuple[Any, Any]] = []
        if group == "rate_limits":
            parts.append((base.rate_limits, source.rate_limits))
        elif group == "retry_config":
            parts.append((base.retry_config, source.retry_config))
        for target, origin in parts:
            if attribute:
                setattr(target, attribute, getattr(origin, attribute))
            else:
                for name in type(origin).__slots__:
                    setattr(target, name, getattr(origin, name))
    return base
