"""The emulator reproduces Cloud Tasks' dispatch semantics, checked exactly on a virtual clock.

Handlers run in process (``CallableDispatcher``) and may "take time" by sleeping on the
virtual clock; ``run_until_idle()`` jumps time whenever everything waits on it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import pytest

import emulator as emu
from daygen_queue import (
    HttpRequest,
    InvalidArgument,
    NewTask,
    QueueConfig,
    QueueRecentlyDeleted,
    RateLimits,
    RetryConfig,
    TaskAlreadyExists,
    TaskNotFound,
    VirtualClock,
)
from daygen_queue.backends.emulator import EmulatorBackend
from emulator import EventKind

S = timedelta(seconds=1)
Handler = Callable[[emu.DispatchRequest], Awaitable["emu.DispatchResult | int"]]


class Recorder:
    """Delivers to ``script`` and remembers (virtual time, request) of every attempt; times
    are seconds since ``clock_start`` (by default, when the recorder was made)."""

    def __init__(
        self,
        clock: VirtualClock,
        script: Callable[[emu.DispatchRequest], int] | None = None,
        *,
        clock_start: datetime | None = None,
    ) -> None:
        self.clock = clock
        self.clock_start = clock.now() if clock_start is None else clock_start
        self.script = script or (lambda request: 200)
        self.calls: list[tuple[datetime, emu.DispatchRequest]] = []
        self.busy_for = timedelta(0)
        self.concurrent = 0
        self.max_concurrent = 0

    async def __call__(self, request: emu.DispatchRequest) -> int:
        self.calls.append((self.clock.now(), request))
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.busy_for:
                await self.clock.sleep_until(self.clock.now() + self.busy_for)
            return self.script(request)
        finally:
            self.concurrent -= 1

    def times(self, task: str | None = None) -> list[float]:
        start = self.clock_start
        return [
            (when - start).total_seconds()
            for when, request in self.calls
            if task is None or request.headers["X-CloudTasks-TaskName"] == task
        ]


MakeBackend = Callable[..., EmulatorBackend]


@pytest.fixture
async def make_backend(virtual_clock: VirtualClock) -> AsyncIterator[MakeBackend]:
    """``make_backend(handler, clock=virtual_clock)``: a backend delivering to ``handler``;
    every backend made is closed at teardown, whatever the test did."""
    made: list[EmulatorBackend] = []

    def make(handler: Handler, clock: VirtualClock = virtual_clock) -> EmulatorBackend:
        backend = EmulatorBackend(clock=clock, dispatcher=emu.CallableDispatcher(handler))
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            await backend.close()


@pytest.fixture
def recorder(virtual_clock: VirtualClock) -> Recorder:
    return Recorder(virtual_clock, clock_start=virtual_clock.now())


@pytest.fixture
def backend(make_backend: MakeBackend, recorder: Recorder) -> EmulatorBackend:
    return make_backend(recorder)


def new_task(name: str | None = None, **extra: object) -> NewTask:
    return NewTask(http_request=HttpRequest(url="http://target.invalid/run"), name=name, **extra)  # type: ignore[arg-type]


async def add_tasks(backend: EmulatorBackend, queue: str, count: int, prefix: str = "t") -> None:
    for index in range(count):
        await backend.create_task(queue, new_task(f"{prefix}{index}"))


# --------------------------------------------------------------------------- rate and concurrency


async def test_full_bucket_bursts_then_dispatches_at_the_configured_rate(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=10))
    )
    await add_tasks(backend, "q", 30)

    await backend.run_until_idle()

    times = recorder.times()
    assert times[:10] == [0.0] * 10  # burst = 10 for 10/s
    assert times[10:] == pytest.approx([0.1 * k for k in range(1, 21)], abs=1e-6)


async def test_max_rate_queue_bursts_one_hundred(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await add_tasks(backend, "q", 150)

    await backend.run_until_idle()

    times = recorder.times()
    assert times.count(0.0) == 100
    assert times[100:] == pytest.approx([0.002 * k for k in range(1, 51)], abs=1e-6)


async def test_tokens_accumulate_while_idle(
    backend: EmulatorBackend, recorder: Recorder, virtual_clock: VirtualClock
) -> None:
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=1))
    )
    await add_tasks(backend, "q", 10, prefix="a")
    await backend.run_until_idle()
    await backend.advance(5 * S)
    await add_tasks(backend, "q", 6, prefix="b")

    await backend.run_until_idle()

    times = recorder.times()
    assert times[:10] == [0.0] * 10
    # 5 s idle refilled 5 tokens: five go at once, the sixth one second later.
    assert times[10:] == pytest.approx([5, 5, 5, 5, 5, 6])


async def test_concurrency_cap_is_never_exceeded(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.busy_for = 5 * S
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_concurrent_dispatches=3))
    )
    await add_tasks(backend, "q", 10)

    await backend.run_until_idle()

    assert recorder.max_concurrent == 3
    assert sorted(Counter(recorder.times()).items()) == [(0, 3), (5, 3), (10, 3), (15, 1)]


# --------------------------------------------------------------------------- retries


async def test_retries_follow_the_backoff_sequence(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.script = lambda request: 500
    retry = RetryConfig(max_attempts=9, min_backoff=10 * S, max_backoff=300 * S, max_doublings=3)
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    times = recorder.times()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps == [10, 20, 40, 80, 160, 240, 300, 300]
    [exhausted] = backend.events.of_kind(EventKind.TASK_EXHAUSTED)
    assert exhausted.attempt == 9
    with pytest.raises(TaskNotFound):
        await backend.get_task("q", "t")


async def test_a_tasks_own_retry_config_replaces_the_queues_stop_rule_and_backoff(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    """The queue (9 attempts, 10 s doubling 3 times) against the task's own policy (4
    attempts, 2 s doubling once, capped at 5 s); an unset field of the task's is Cloud Tasks'
    default, never the queue's."""
    recorder.script = lambda request: 500
    queue_retry = RetryConfig(
        max_attempts=9, min_backoff=10 * S, max_backoff=300 * S, max_doublings=3
    )
    own = RetryConfig(max_attempts=4, min_backoff=2 * S, max_backoff=5 * S, max_doublings=1)
    await backend.create_queue(QueueConfig(name="q", retry_config=queue_retry))
    await backend.create_task("q", new_task("own", retry_config=own))
    await backend.create_task("q", new_task("by-queue"))

    created = await backend.get_task("q", "own")
    await backend.run_until_idle()

    own_gaps = [b - a for a, b in itertools.pairwise(recorder.times("own"))]
    queue_gaps = [b - a for a, b in itertools.pairwise(recorder.times("by-queue"))]
    assert own_gaps == [2, 4, 5]  # 2, doubled once to 4, then linear by 4 capped at 5
    assert queue_gaps == [10, 20, 40, 80, 160, 240, 300, 300]
    assert created.retry_config == own
    exhausted = {
        event.task: event.attempt for event in backend.events.of_kind(EventKind.TASK_EXHAUSTED)
    }
    assert exhausted == {"own": 4, "by-queue": 9}


async def test_task_is_retried_until_both_limits_are_met(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.script = lambda request: 503
    retry = RetryConfig(
        max_attempts=3,
        max_retry_duration=timedelta(hours=1),
        min_backoff=60 * S,
        max_backoff=600 * S,
        max_doublings=3,
    )
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    times = recorder.times()
    # 3 attempts happen within 3 minutes, but the hour is not over: it keeps going...
    assert len(times) > 3
    assert times[2] < 3600
    # ...and stops at the first failure at or after one hour from the first attempt.
    assert times[-1] >= 3600 > times[-2]


async def test_duration_alone_does_not_stop_retries_before_max_attempts(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.script = lambda request: 500
    retry = RetryConfig(
        max_attempts=4, max_retry_duration=1 * S, min_backoff=10 * S, max_backoff=10 * S
    )
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    assert recorder.times() == [0, 10, 20, 30]


async def test_unlimited_attempts_without_duration_retry_forever(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.script = lambda request: 500
    retry = RetryConfig(max_attempts=-1, min_backoff=1 * S, max_backoff=60 * S)
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t"))

    await backend.advance(timedelta(days=1))

    assert len(recorder.times()) > 1000
    assert (await backend.get_task("q", "t")).dispatch_count == len(recorder.times())


async def test_retry_headers_over_503_then_404_then_200(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    statuses = iter([503, 404, 200])
    recorder.script = lambda request: next(statuses)
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    headers = [request.headers for _, request in recorder.calls]
    assert [h["X-CloudTasks-TaskRetryCount"] for h in headers] == ["0", "1", "2"]
    assert [h["X-CloudTasks-TaskExecutionCount"] for h in headers] == ["0", "0", "1"]
    assert [h.get("X-CloudTasks-TaskPreviousResponse") for h in headers] == [None, "503", "404"]
    assert [h.get("X-CloudTasks-TaskRetryReason") for h in headers] == [None, "", ""]
    assert {h["User-Agent"] for h in headers} == {"Google-Cloud-Tasks"}
    etas = [float(h["X-CloudTasks-TaskETA"]) for h in headers]
    assert [eta - etas[0] for eta in etas] == pytest.approx([0, 0.1, 0.3])


async def test_retry_after_on_503_lengthens_the_backoff(
    make_backend: MakeBackend, virtual_clock: VirtualClock
) -> None:
    calls: list[datetime] = []

    async def handler(request: emu.DispatchRequest) -> emu.DispatchResult:
        calls.append(virtual_clock.now())
        if len(calls) == 1:
            return emu.DispatchResult(status=503, headers={"Retry-After": "30"})
        return emu.DispatchResult(status=200)

    backend = make_backend(handler)
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    assert calls[1] - calls[0] == 30 * S


async def test_handler_slower_than_its_deadline_fails_the_attempt(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.busy_for = 120 * S
    retry = RetryConfig(max_attempts=2, min_backoff=1 * S, max_backoff=1 * S)
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t", dispatch_deadline=60 * S))

    await backend.run_until_idle()

    failures = backend.events.of_kind(EventKind.ATTEMPT_FAILED)
    assert [(e.time - recorder.clock_start, e.status, e.detail) for e in failures] == [
        (60 * S, None, "DEADLINE_EXCEEDED"),
        (121 * S, None, "DEADLINE_EXCEEDED"),
    ]
    assert recorder.times() == [0, 61]


async def test_connection_errors_are_failed_attempts(make_backend: MakeBackend) -> None:
    async def refuse(request: emu.DispatchRequest) -> int:
        raise ConnectionRefusedError("nobody listens")

    backend = make_backend(refuse)
    retry = RetryConfig(max_attempts=2, min_backoff=1 * S, max_backoff=1 * S)
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task("q", new_task("t"))

    await backend.run_until_idle()

    failures = backend.events.of_kind(EventKind.ATTEMPT_FAILED)
    assert [(e.status, "connection error" in e.detail) for e in failures] == [(None, True)] * 2


# --------------------------------------------------------------------------- names and time


async def test_task_name_is_reserved_until_the_tombstone_expires(
    backend: EmulatorBackend,
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("job"))
    await backend.run_until_idle()

    with pytest.raises(TaskAlreadyExists):
        await backend.create_task("q", new_task("job"))
    with pytest.raises(TaskNotFound, match="existed recently"):
        await backend.get_task("q", "job")

    await backend.advance(timedelta(minutes=59, seconds=59))
    with pytest.raises(TaskAlreadyExists):
        await backend.create_task("q", new_task("job"))
    await backend.advance(1 * S)
    await backend.create_task("q", new_task("job"))


async def test_scheduled_task_runs_at_its_time_and_past_times_run_now(
    backend: EmulatorBackend, recorder: Recorder, virtual_clock: VirtualClock
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    start = virtual_clock.now()
    await backend.create_task("q", new_task("later", schedule_time=start + timedelta(hours=2)))
    past = await backend.create_task("q", new_task("past", schedule_time=start - timedelta(days=1)))

    await backend.run_until_idle()

    assert past.schedule_time == start
    assert recorder.times("past") == [0]
    assert recorder.times("later") == [7200]


async def test_schedule_time_more_than_thirty_days_ahead_is_refused(
    backend: EmulatorBackend, virtual_clock: VirtualClock
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    limit = virtual_clock.now() + timedelta(days=30)

    await backend.create_task("q", new_task("ok", schedule_time=limit))
    with pytest.raises(InvalidArgument, match="no more than 720h in the future"):
        await backend.create_task("q", new_task("no", schedule_time=limit + S))


async def test_task_over_one_mebibyte_is_refused(backend: EmulatorBackend) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    huge = NewTask(http_request=HttpRequest(url="http://x/y", body=b"x" * (1024 * 1024)))

    with pytest.raises(InvalidArgument, match="maximum task size"):
        await backend.create_task("q", huge)


async def test_engine_validates_what_the_models_let_through(backend: EmulatorBackend) -> None:
    """A client that bypasses the models (any gRPC client) is still checked."""
    await backend.create_queue(QueueConfig(name="q"))
    get_with_body = NewTask.model_construct(
        http_request=HttpRequest.model_construct(
            url="http://x/y", http_method="GET", headers={}, body=b"x", oidc_token=None
        ),
        name=None,
        schedule_time=None,
        dispatch_deadline=None,
    )
    short_deadline = NewTask.model_construct(
        http_request=HttpRequest(url="http://x/y"),
        name=None,
        schedule_time=None,
        dispatch_deadline=timedelta(seconds=1),
    )

    with pytest.raises(InvalidArgument, match="POST, PUT or PATCH"):
        await backend.create_task("q", get_with_body)
    with pytest.raises(InvalidArgument, match=r"between \[15s, 30m\]"):
        await backend.create_task("q", short_deadline)


# --------------------------------------------------------------------------- queue operations


async def test_purge_while_paused_then_resume_delivers_nothing(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.pause_queue("q")
    await add_tasks(backend, "q", 5)

    await backend.purge_queue("q")
    await backend.resume_queue("q")
    await backend.run_until_idle()

    assert recorder.calls == []
    assert len(backend.events.of_kind(EventKind.TASK_PURGED)) == 5


async def test_task_created_in_the_purge_second_is_purged_too(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.advance(timedelta(milliseconds=300))
    await backend.purge_queue("q")
    await backend.advance(timedelta(milliseconds=600))  # still the same second

    await backend.create_task("q", new_task("same-second"))
    await backend.advance(timedelta(milliseconds=100))  # the next second
    await backend.create_task("q", new_task("next-second"))
    await backend.run_until_idle()

    assert recorder.times("same-second") == []
    assert len(recorder.times("next-second")) == 1


async def test_create_after_pause_and_resume_is_delivered(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.pause_queue("q")
    await backend.create_task("q", new_task("while-paused"))
    await backend.run_until_idle()
    assert recorder.calls == []

    await backend.resume_queue("q")
    await backend.create_task("q", new_task("after-resume"))
    await backend.run_until_idle()

    assert {r.headers["X-CloudTasks-TaskName"] for _, r in recorder.calls} == {
        "while-paused",
        "after-resume",
    }


async def test_delete_right_after_pause_removes_queue_and_reserves_its_name(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.pause_queue("q")
    await add_tasks(backend, "q", 3)

    await backend.delete_queue("q")
    await backend.run_until_idle()

    assert recorder.calls == []
    with pytest.raises(QueueRecentlyDeleted):
        await backend.create_queue(QueueConfig(name="q"))
    await backend.advance(timedelta(days=7))
    await backend.create_queue(QueueConfig(name="q"))
    assert await backend.list_tasks("q") == []


async def test_run_task_bypasses_pause_and_does_not_run_again_at_schedule_time(
    backend: EmulatorBackend, recorder: Recorder, virtual_clock: VirtualClock
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.pause_queue("q")
    later = virtual_clock.now() + timedelta(hours=1)
    await backend.create_task("q", new_task("t", schedule_time=later))

    await backend.run_task("q", "t")
    await backend.resume_queue("q")
    await backend.run_until_idle()
    await backend.advance(timedelta(hours=2))

    assert recorder.times("t") == [0]


async def test_failed_run_task_is_rescheduled_by_backoff_not_at_its_old_time(
    backend: EmulatorBackend, recorder: Recorder, virtual_clock: VirtualClock
) -> None:
    outcomes = iter([500, 200])
    recorder.script = lambda request: next(outcomes)
    retry = RetryConfig(min_backoff=10 * S, max_backoff=10 * S)
    await backend.create_queue(QueueConfig(name="q", retry_config=retry))
    await backend.create_task(
        "q", new_task("t", schedule_time=virtual_clock.now() + timedelta(hours=1))
    )

    await backend.run_task("q", "t")
    await backend.run_until_idle()

    assert recorder.times("t") == [0, 10]


async def test_run_task_on_a_rate_limited_queue_goes_at_once(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=1))
    )
    await add_tasks(backend, "q", 12)
    await backend.run_task("q", "t11")
    await backend.run_until_idle()

    assert recorder.times("t11") == [0]
    assert sorted(recorder.times()).count(0) == 11  # the forced one took no token


async def test_deleting_a_task_in_flight_discards_its_outcome(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.busy_for = 10 * S
    recorder.script = lambda request: 500
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("t"))
    await backend.advance(1 * S)  # dispatched and busy

    await backend.delete_task("q", "t")
    await backend.run_until_idle()

    assert recorder.times("t") == [0]
    assert backend.events.of_kind(EventKind.RETRY_SCHEDULED) == []


async def test_update_queue_takes_effect_on_waiting_tasks(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    slow = QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=1))
    await backend.create_queue(slow)
    await add_tasks(backend, "q", 20)
    await backend.advance(timedelta(milliseconds=1))  # the burst of 10 went out

    await backend.update_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=100))
    )
    await backend.run_until_idle()

    assert recorder.times()[-1] < 0.2


async def test_queue_stats_reflect_waiting_and_running_tasks(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    recorder.busy_for = 10 * S
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_concurrent_dispatches=2))
    )
    await add_tasks(backend, "q", 5)
    await backend.advance(1 * S)

    stats = (await backend.get_queue("q")).stats

    assert stats is not None
    assert stats.tasks_count == 5
    assert stats.concurrent_dispatches_count == 2
    await backend.run_until_idle()
    stats = (await backend.get_queue("q")).stats
    assert stats is not None and stats.tasks_count == 0


# --------------------------------------------------------------------------- determinism and scale


async def scenario(make_backend: MakeBackend, clock: VirtualClock) -> list[tuple[object, ...]]:
    attempts: Counter[str] = Counter()

    async def handler(request: emu.DispatchRequest) -> int:
        name = request.headers["X-CloudTasks-TaskName"]
        attempts[name] += 1
        await clock.sleep_until(clock.now() + timedelta(milliseconds=250))
        return 503 if int(name[-1], 16) % 3 == 0 and attempts[name] < 3 else 200

    backend = make_backend(handler, clock)
    await backend.create_queue(
        QueueConfig(
            name="q",
            rate_limits=RateLimits(max_dispatches_per_second=5, max_concurrent_dispatches=4),
            retry_config=RetryConfig(min_backoff=1 * S, max_backoff=10 * S),
        )
    )
    for _ in range(40):
        await backend.create_task("q", new_task())  # generated ids
    await backend.run_until_idle()
    return [(e.time, e.kind, e.task, e.attempt, e.status, e.retry_at) for e in backend.events]


async def test_the_same_scenario_yields_the_same_event_trace(make_backend: MakeBackend) -> None:
    first = await scenario(make_backend, VirtualClock())
    second = await scenario(make_backend, VirtualClock())

    assert first == second
    assert len(first) > 150


async def test_production_queue_with_a_third_failing_twice(make_backend: MakeBackend) -> None:
    """The seed's queue (10/s, 100 concurrent, 3 attempts, 1 h). A third of the tasks fail
    twice then succeed; a few always fail, and the AND rule keeps retrying those past three
    attempts until the hour is over."""
    attempts: Counter[str] = Counter()

    async def handler(request: emu.DispatchRequest) -> int:
        name = request.headers["X-CloudTasks-TaskName"]
        attempts[name] += 1
        number = int(name.removeprefix("t"))
        if number < 10:
            return 500  # always fails
        if number % 3 == 0 and attempts[name] <= 2:
            return 503
        return 200

    backend = make_backend(handler)
    config = QueueConfig(
        name="image-generation-queue",
        rate_limits=RateLimits(max_dispatches_per_second=10, max_concurrent_dispatches=100),
        retry_config=RetryConfig(max_attempts=3, max_retry_duration=timedelta(hours=1)),
    )
    await backend.create_queue(config)
    await add_tasks(backend, config.name, 1000)

    await backend.run_until_idle()

    flaky = [f"t{n}" for n in range(10, 1000) if n % 3 == 0]
    assert all(attempts[name] == 3 for name in flaky)
    assert all(attempts[f"t{n}"] == 1 for n in range(10, 1000) if n % 3)
    doomed = [attempts[f"t{n}"] for n in range(10)]
    assert min(doomed) > 3  # past max_attempts, because the hour had not passed
    exhausted = backend.events.of_kind(EventKind.TASK_EXHAUSTED)
    assert {e.task for e in exhausted} == {f"t{n}" for n in range(10)}
    first_dispatch = {
        e.task: e.time for e in reversed(backend.events.of_kind(EventKind.TASK_DISPATCHED))
    }
    assert all(e.time - first_dispatch[e.task] >= timedelta(hours=1) for e in exhausted)
    assert await backend.list_tasks(config.name) == []


async def test_event_subscribers_see_every_change(backend: EmulatorBackend) -> None:
    seen: list[EventKind] = []
    unsubscribe = backend.events.subscribe(lambda event: seen.append(event.kind))
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("t"))
    await backend.run_until_idle()
    unsubscribe()
    await backend.pause_queue("q")

    assert seen == [
        EventKind.QUEUE_CREATED,
        EventKind.TASK_CREATED,
        EventKind.TASK_DISPATCHED,
        EventKind.ATTEMPT_SUCCEEDED,
    ]


async def test_nothing_moves_on_a_virtual_clock_until_driven(
    backend: EmulatorBackend, recorder: Recorder
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    await backend.create_task("q", new_task("t"))
    for _ in range(5):
        await asyncio.sleep(0)

    assert recorder.calls == []
    await backend.run_until_idle()
    assert len(recorder.calls) == 1


async def test_generated_task_ids_are_not_reserved_after_the_task(
    backend: EmulatorBackend,
) -> None:
    await backend.create_queue(QueueConfig(name="q"))
    task = await backend.create_task("q", new_task())
    await backend.run_until_idle()

    with pytest.raises(TaskNotFound, match="Requested entity was not found"):
        await backend.get_task("q", task.name)


async def test_finished_attempts_leave_no_deadline_behind(virtual_clock: VirtualClock) -> None:
    """Regression: every finished attempt kept its deadline entry (and through it the task and
    its request) until the attempts dispatched before it were done: one slow delivery held
    the memory of everything after it."""

    async def handler(request: emu.DispatchRequest) -> int:
        if request.headers["X-CloudTasks-TaskName"] == "slow":
            await virtual_clock.sleep_until(virtual_clock.now() + timedelta(minutes=5))
        return 200

    queue = "projects/p/locations/l/queues/q"
    target = emu.HttpTarget(url="http://target.invalid/run")
    dispatcher = emu.CallableDispatcher(handler)
    async with emu.Engine(clock=virtual_clock, dispatcher=dispatcher) as engine:
        await engine.create_queue(emu.QueueSpec(queue))
        for name in ["slow", *(f"t{index}" for index in range(2000))]:
            await engine.create_task(queue, emu.NewTaskSpec(target, name=f"{queue}/tasks/{name}"))

        await engine.advance(timedelta(seconds=30))

        assert [task.short_id for task in engine.list_tasks(queue)] == ["slow"]
        assert len(engine._deadlines) <= 64
        await engine.run_until_idle()
        assert len(engine._deadlines) == 0
