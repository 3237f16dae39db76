"""The emulator engine: a local Cloud Tasks.

One object holds every queue and task in memory, dispatches with a per-queue token bucket and
concurrency cap from a due-time heap (no per-task timers, no polling), retries per RetryConfig,
and journals to a ``Store``. Both the in-process backend and the gRPC/REST server wrap it.

Around it, each in a module of its own: ``driving`` moves it through time on any clock,
``runtime`` holds one queue's scheduling state, ``deadlines`` the attempts' deadlines and
``tombstones`` the names kept reserved. What stays here is the state machine itself: queue
and task CRUD with Cloud Tasks' semantics, starting attempts, recording their outcome and the
retry decision. It is still over 400 lines because those four share one state (the queues,
the attempts in flight, the store and the event stream) and every transition touches
several of them; split further, each half would reach into the other's fields.

The engine never reads the wall clock: every instant comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from emulator import records, rules, targets
from emulator.clock import Clock, SystemClock
from emulator.deadlines import DeadlineHeap
from emulator.dispatch import Dispatcher, DispatchRequest, DispatchResult, HttpDispatcher
from emulator.driving import Driver
from emulator.errors import (
    ENTITY_MISSING,
    QUEUE_EXISTS,
    QUEUE_MISSING,
    TASK_EXISTS,
    TASK_TOMBSTONED,
    AlreadyExists,
    InvalidArgument,
    NotFound,
)
from emulator.events import Event, EventKind, EventStream
from emulator.headers import attempt_headers
from emulator.model import (
    Attempt,
    NewTaskSpec,
    OAuthToken,
    OidcToken,
    QueueRecord,
    QueueSpec,
    QueueState,
    QueueStats,
    TaskRecord,
)
from emulator.oauth import AccessTokens
from emulator.runtime import QueueRuntime
from emulator.store import MemoryStore, Store
from emulator.tombstones import Tombstones
from emulator.validation import (
    apply_queue_defaults,
    check_task_size,
    split_queue_name,
    split_task_name,
    validate_new_task,
    validate_queue_spec,
)

DEFAULT_APP_ENGINE_HOST = "http://127.0.0.1:8080"
_TASK_ID_LIMIT = 10**20  # generated ids: 20 decimal digits
_TASK_ID_BITS = _TASK_ID_LIMIT.bit_length()
PULL_QUEUE_TASK = (
    "Cannot add a push task to a pull queue: the task's target must match the queue type."
)


class TokenMinter(Protocol):
    """Signs the OIDC token sent with a task that asks for one."""

    def mint(self, *, service_account_email: str, audience: str) -> str: ...


@dataclass(slots=True, eq=False)
class _Flight:
    """One attempt on the wire."""

    queue: QueueRuntime
    task: TaskRecord
    attempt: Attempt
    number: int  # dispatch number of this attempt, from 1
    deadline: datetime
    delivery: asyncio.Task[None] | None = None  # the dispatcher call, while it runs
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
        access_tokens: AccessTokens | None = None,
        app_engine_host: str = DEFAULT_APP_ENGINE_HOST,
        seed: int | None = None,
        event_history: int = 100_000,
    ) -> None:
        """``app_engine_host`` is where App Engine tasks go (their ``Host`` header still names
        the routing's ``*.appspot.com`` host); ``access_tokens`` mints the opaque OAuth tokens
        (one is made when not given)."""
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._dispatcher: Dispatcher = dispatcher if dispatcher is not None else HttpDispatcher()
        self._store: Store = store if store is not None else MemoryStore()
        # A memory store keeps nothing: CreateTask, every job's call, skips its no-op writes.
        self._journaled = type(self._store) is not MemoryStore
        self._token_minter = token_minter
        self.access_tokens = access_tokens if access_tokens is not None else AccessTokens()
        self.app_engine_host = app_engine_host
        self._tombstones = Tombstones(task_ttl=task_tombstone_ttl, queue_ttl=queue_tombstone_ttl)
        self._driver = Driver(self, self._clock)
        # Generated task ids are 20 decimal digits like Cloud Tasks'; when time moves only
        # when driven they come from a fixed seed, so that traces repeat.
        if seed is None and self._driver.repeatable:
            seed = 0
        self._rng = random.Random(seed)
        self.events = EventStream(history=event_history)
        self._queues: dict[str, QueueRuntime] = {}
        # The attempts on the wire, by the asyncio task delivering each.
        self.deliveries: dict[asyncio.Task[None], _Flight] = {}
        self._deadlines: DeadlineHeap[_Flight] = DeadlineHeap()
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def clock(self) -> Clock:
        return self._clock

    async def start(self) -> None:
        """Load what the store kept and, on a clock that passes by itself, start dispatching."""
        if self._started:
            return
        self._started = True
        state = await self._store.load(self._clock)
        now = self._clock.now()
        for queue in state.queues:
            self._queues[queue.name] = QueueRuntime(queue, now)
        for task in state.tasks:
            runtime = self._queues.get(task.queue)
            if runtime is None:
                continue
            task.in_flight = 0  # an attempt cut off by a crash is simply dispatched again
            runtime.tasks[task.name] = task
            runtime.push(task)
        self._tombstones.restore(state.task_tombstones, state.queue_tombstones)
        self._driver.start()

    async def stop_dispatching(self) -> None:
        """Start no new attempt from now on (the process is stopping): attempts already on
        the wire run to their end and their outcomes are kept; ``close()`` follows."""
        await self._driver.stop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._driver.stop()
        deliveries = list(self.deliveries)
        for delivery in deliveries:
            delivery.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)
        self.deliveries.clear()
        await self._store.flush()
        await self._store.close()
        await self._dispatcher.close()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ time

    async def run_until_idle(self) -> None:
        """Dispatch everything due, wait for those deliveries, jump the virtual clock to the
        next due instant, and repeat until no task is left to run."""
        await self._driver.run_until_idle()

    async def advance(self, delta: timedelta) -> None:
        """Move the virtual clock forward by ``delta``, doing on the way everything that falls
        due, in order."""
        await self._driver.advance(delta)

    # pump(), next_wakeup() and deliveries are what the driver sees of the engine
    # (``driving.Schedule``).

    def next_wakeup(self) -> datetime | None:
        """The next instant at which the engine has something to do, if any."""
        now = self._clock.now()
        earliest = self._deadlines.earliest()
        for runtime in self._queues.values():
            when = runtime.wakeup(now)
            if when is not None and (earliest is None or when < earliest):
                earliest = when
        return earliest

    def pump(self) -> None:
        """Time out the attempts past their deadline, forget expired tombstones and start
        every attempt that is due."""
        now = self._clock.now()
        # Popped first, then finished: a finished attempt starts the next ones, whose
        # deadlines are at least 15 s away, so none of them is expired now.
        for flight in self._deadlines.pop_expired(now):
            delivery = flight.delivery
            timeout = DispatchResult(status=None, error="DEADLINE_EXCEEDED")
            self._finish(flight, timeout, now, expired=True)
            if delivery is not None:
                delivery.cancel()
        self._tombstones.expire(now)
        for runtime in list(self._queues.values()):
            self._pump_queue(runtime, now)

    def _kick(self, runtime: QueueRuntime, now: datetime | None = None) -> None:
        """Something changed in a queue: while time passes, dispatch right away, and let a
        sleeping driver know if the queue now needs it sooner."""
        if not self._driver.running:
            return
        if now is None:
            now = self._clock.now()
        self._pump_queue(runtime, now)
        if self._driver.sleeping:
            self._driver.wake_by(runtime.wakeup(now))

    def _pump_queue(self, runtime: QueueRuntime, now: datetime) -> None:
        if runtime.record.state is QueueState.RUNNING:
            runtime.start_due(now, self._start_attempt)

    # ------------------------------------------------------------------ queues

    def _existing(self, name: str, message: str = QUEUE_MISSING) -> QueueRuntime:
        runtime = self._queues.get(name)
        if runtime is None:
            split_queue_name(name)  # a malformed name is INVALID_ARGUMENT, not NOT_FOUND
            raise NotFound(message, resource="queue")
        return runtime  # every name in the table was validated when its queue was created

    async def create_queue(self, spec: QueueSpec) -> QueueRecord:
        spec = records.copy_spec(spec)
        apply_queue_defaults(spec)
        validate_queue_spec(spec)
        now = self._clock.now()
        if spec.name in self._queues:
            raise AlreadyExists(QUEUE_EXISTS, resource="queue")
        self._tombstones.check_queue(spec.name, now)
        record = QueueRecord(spec.name, spec.rate_limits, spec.retry_config)
        records.apply_spec(record, spec)
        self._queues[spec.name] = QueueRuntime(record, now)
        self._store.put_queue(record)
        await self._store.flush()
        self._emit(EventKind.QUEUE_CREATED, record.short_id)
        return record

    async def update_queue(self, spec: QueueSpec) -> QueueRecord:
        """UpdateQueue: ``spec`` replaces every settable field (zeros take the defaults); a
        missing queue is created (an upsert). The state never changes here."""
        split_queue_name(spec.name)
        runtime = self._queues.get(spec.name)
        if runtime is None:
            return await self.create_queue(spec)
        merged = records.copy_spec(spec)
        apply_queue_defaults(merged)
        validate_queue_spec(merged)
        record = runtime.record
        record.rate_limits = merged.rate_limits
        record.retry_config = merged.retry_config
        record.http_target = merged.http_target
        record.app_engine_routing_override = merged.app_engine_routing_override
        if merged.task_ttl is not None:
            record.task_ttl = merged.task_ttl
        if merged.tombstone_ttl is not None:
            record.tombstone_ttl = merged.tombstone_ttl
        now = self._clock.now()
        runtime.reconfigure(now)
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
        return self._existing(name).stats(self._clock.now())

    async def delete_queue(self, name: str) -> None:
        runtime = self._existing(name, ENTITY_MISSING)
        now = self._clock.now()
        del self._queues[name]
        until = self._tombstones.bury_queue(name, now)
        ttl = runtime.record.tombstone_ttl or self._tombstones.task_ttl
        for task in runtime.tasks.values():
            self._store.remove_task(task.name, now + ttl)
        runtime.tasks.clear()
        runtime.heap.clear()
        self._store.remove_queue(name, until)
        await self._store.flush()
        self._emit(EventKind.QUEUE_DELETED, runtime.record.short_id)

    async def pause_queue(self, name: str) -> QueueRecord:
        return await self._set_state(name, QueueState.PAUSED, EventKind.QUEUE_PAUSED)

    async def resume_queue(self, name: str) -> QueueRecord:
        return await self._set_state(name, QueueState.RUNNING, EventKind.QUEUE_RESUMED)

    async def _set_state(self, name: str, state: QueueState, kind: EventKind) -> QueueRecord:
        runtime = self._existing(name)
        runtime.record.state = state
        self._store.put_queue(runtime.record)
        await self._store.flush()
        self._emit(kind, runtime.record.short_id)
        self._kick(runtime)  # resuming may let tasks go at once; a paused queue starts none
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
        # randrange(10**20) written out (the same draws, so the same ids for a seed): it is
        # called for every task created without a name.
        getrandbits = self._rng.getrandbits
        draw = getrandbits(_TASK_ID_BITS)
        while draw >= _TASK_ID_LIMIT:
            draw = getrandbits(_TASK_ID_BITS)
        return f"{draw:020d}"

    async def create_task(self, queue: str, spec: NewTaskSpec) -> TaskRecord:
        runtime = self._queues.get(queue)
        if runtime is None:
            runtime = self._existing(queue)  # raises: NOT_FOUND or INVALID_ARGUMENT
        now = self._clock.now()
        record = runtime.record
        if record.pull:
            raise InvalidArgument(PULL_QUEUE_TASK, resource="queue")
        routed = record.http_target is not None and record.http_target.has_routing
        validate_new_task(spec, now, queue_routed=routed)
        tasks = runtime.tasks
        if spec.name is not None:
            task_queue = _queue_of(spec.name, queue)
            if task_queue != queue:
                raise InvalidArgument(
                    f"The queue name from request ('{queue}') must be the same as the queue "
                    f"name in the named task ('{task_queue}')."
                )
            name = spec.name
            if name in tasks or self._tombstones.is_buried(name, now):
                raise AlreadyExists(TASK_EXISTS, resource="task")
        else:
            name = f"{queue}/tasks/{self._new_task_id()}"
            while name in tasks:
                name = f"{queue}/tasks/{self._new_task_id()}"
        check_task_size(name, spec.http_request)
        task = records.new_task(name, queue, spec, now)
        self.events.emit(Event(now, EventKind.TASK_CREATED, record.short_id, task.short_id))
        purge_time = record.purge_time
        if purge_time is not None and task.create_time <= purge_time:
            # Created in the purge's second: Cloud Tasks compares whole-second create times
            # with the purge time, so it purges this task too.
            self._forget(task, now, record.tombstone_ttl)
            self._emit(EventKind.TASK_PURGED, record.short_id, task.short_id, now=now)
            await self._store.flush()
            return task
        tasks[name] = task
        runtime.push(task)
        if self._journaled:
            self._store.put_task(task)
            await self._store.flush()
        if self._driver.starts_in_batches:
            self._driver.pump_soon()
        else:
            self._kick(runtime, now)
        return task

    def _task_location(self, name: str) -> tuple[QueueRuntime, TaskRecord]:
        queue, _ = split_task_name(name)
        runtime = self._existing(queue)
        task = runtime.tasks.get(name)
        if task is None:
            if self._tombstones.is_buried(name, self._clock.now()):
                raise NotFound(TASK_TOMBSTONED, resource="task")
            raise NotFound(ENTITY_MISSING, resource="task")
        return runtime, task

    def get_task(self, name: str) -> TaskRecord:
        return self._task_location(name)[1]

    def list_tasks(self, queue: str) -> list[TaskRecord]:
        return list(self._existing(queue).tasks.values())

    def _live_task(self, name: str) -> tuple[QueueRuntime, TaskRecord]:
        """DeleteTask's and RunTask's lookup: NOT_FOUND without the tombstone message."""
        queue, _ = split_task_name(name)
        runtime = self._existing(queue, ENTITY_MISSING)
        task = runtime.tasks.get(name)
        if task is None:
            raise NotFound(ENTITY_MISSING, resource="task")
        return runtime, task

    async def delete_task(self, name: str) -> None:
        runtime, task = self._live_task(name)
        self._drop(runtime, task, EventKind.TASK_DELETED, self._clock.now())
        await self._store.flush()

    async def run_task(self, name: str) -> TaskRecord:
        """Dispatch now, ignoring pause, rate limits and any attempt already in flight. The
        attempt counts like any other (dispatch count, RetryCount header, max_attempts)."""
        runtime, task = self._live_task(name)
        task.generation += 1  # its heap entry is void: it must not run again at schedule time
        self._start_attempt(runtime, task, self._clock.now())
        return task

    # ------------------------------------------------------------------ attempts

    def _start_attempt(self, runtime: QueueRuntime, task: TaskRecord, now: datetime) -> None:
        record = runtime.record
        queue_id = record.short_id
        target = task.http_request
        deadline = task.dispatch_deadline
        if targets.needs_targets(record, target):
            wire = self._wire_request(record, task)
            request = DispatchRequest(wire.url, wire.method, wire.headers, wire.body, deadline)
        else:  # the plain HTTP task: the hot path, inline
            headers = attempt_headers(queue_id, task)
            oidc = target.oidc_token
            if oidc is not None and self._token_minter is not None:
                headers["Authorization"] = "Bearer " + self._token_minter.mint(
                    service_account_email=oidc.service_account_email,
                    audience=oidc.audience or target.url,
                )
            request = DispatchRequest(
                target.url, target.http_method, headers, target.body, deadline
            )
        number = task.dispatch_count = task.dispatch_count + 1
        attempt = Attempt(task.schedule_time, now)
        if task.first_attempt is None:
            task.first_attempt = Attempt(None, now)
        task.last_attempt = attempt
        task.in_flight += 1
        runtime.in_flight += 1
        flight = _Flight(runtime, task, attempt, number, now + deadline)
        self._deadlines.push(flight)
        self._store.put_task(task)
        self._emit(EventKind.TASK_DISPATCHED, queue_id, task.short_id, attempt=number, now=now)
        delivery = asyncio.get_running_loop().create_task(self._deliver(flight, request))
        if not flight.done:  # an eager task factory may have run the delivery to its end
            flight.delivery = delivery
            self.deliveries[delivery] = flight
        self._driver.wake_by(flight.deadline)

    def _wire_request(self, record: QueueRecord, task: TaskRecord) -> targets.WireRequest:
        """The attempt of an App Engine task, or of an HTTP task with queue-level overrides
        or an OAuth token (``emulator.targets``)."""
        if task.http_request.app_engine is not None:
            project = record.name.split("/", 2)[1]
            return targets.app_engine_request(record, task, project, self.app_engine_host)
        return targets.http_request(record, task, self._mint_oidc, self._mint_access)

    def _mint_oidc(self, token: OidcToken, url: str) -> str:
        if self._token_minter is None:
            raise RuntimeError("no OIDC token minter")  # never: checked by http_request's caller
        return self._token_minter.mint(
            service_account_email=token.service_account_email, audience=token.audience or url
        )

    def _mint_access(self, token: OAuthToken) -> str:
        return self.access_tokens.mint(token)

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

    def _finish(
        self, flight: _Flight, result: DispatchResult, now: datetime, *, expired: bool = False
    ) -> None:
        """Record an attempt's outcome and decide the task's fate."""
        flight.done = True
        if flight.delivery is not None:
            del self.deliveries[flight.delivery]
            flight.delivery = None
        if not expired:  # an expired deadline's entry has already left the heap
            self._deadlines.finished()
        runtime, task, attempt = flight.queue, flight.task, flight.attempt
        runtime.in_flight -= 1
        task.in_flight -= 1
        runtime.note_completion(now)
        records.record_outcome(task, attempt, result, now)
        status = result.status
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
        self._driver.note_progress()
        self._kick(runtime, now)

    def _after_failure(
        self, runtime: QueueRuntime, task: TaskRecord, result: DispatchResult, now: datetime
    ) -> None:
        """The retry decision: give up when both limits are met, else back off."""
        retry = task.retry_config or runtime.record.retry_config
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
        retry_after = rules.retry_after(result.status, result.headers)
        if retry_after is not None:
            delay = max(delay, retry_after)
        task.schedule_time = now + delay
        task.generation += 1
        runtime.push(task)
        self._store.put_task(task)
        self._emit(
            EventKind.RETRY_SCHEDULED,
            runtime.record.short_id,
            task.short_id,
            task.dispatch_count,
            retry_at=task.schedule_time,
        )

    # ------------------------------------------------------------------ bookkeeping

    def _remove(self, runtime: QueueRuntime, task: TaskRecord, now: datetime) -> None:
        del runtime.tasks[task.name]
        self._forget(task, now, runtime.record.tombstone_ttl)

    def _forget(self, task: TaskRecord, now: datetime, ttl: timedelta | None) -> None:
        """Drop a finished task from the store; a name the client chose stays reserved for
        the queue's tombstone TTL, else the engine's (dedup does not apply to generated
        ids)."""
        if task.named:
            self._store.remove_task(task.name, self._tombstones.bury(task.name, now, ttl))
        else:
            self._store.remove_task(task.name, None)

    def _drop(
        self, runtime: QueueRuntime, task: TaskRecord, kind: EventKind, now: datetime
    ) -> None:
        self._remove(runtime, task, now)
        self._emit(kind, runtime.record.short_id, task.short_id)

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


def _queue_of(task_name: str, queue: str) -> str:
    """The queue part of a task name, validated. A name under ``queue`` (an existing queue,
    so a valid queue name) only needs its task id checked: CreateTask's hot path."""
    prefix = len(queue) + 7  # "/tasks/"
    if (
        task_name.startswith(queue)
        and task_name.startswith("/tasks/", len(queue))
        and rules.TASK_ID_RE.match(task_name[prefix:]) is not None
    ):
        return queue
    return split_task_name(task_name)[0]  # raises with Cloud Tasks' message when invalid
