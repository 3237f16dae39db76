"""A queue as the engine runs it: its tasks, their due-time heap, the token bucket, the
concurrency count and the completions of the last minute (for the v2beta3 stats)."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from emulator import rules
from emulator.model import QueueRecord, QueueState, QueueStats, TaskRecord
from emulator.ratelimit import TokenBucket

_MICRO = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)


def micros(when: datetime) -> int:
    """Epoch microseconds: the heaps compare ints, which is much faster than datetimes."""
    return (when - rules.EPOCH) // _MICRO


class QueueRuntime:
    """The heap holds ``(due, push order, generation, task)``. A task rescheduled or run by
    hand gets a new generation, and deleting a task leaves its entry behind: entries whose
    generation or task is no longer current are skipped when they reach the top."""

    __slots__ = ("_order", "bucket", "finished", "heap", "in_flight", "record", "tasks")

    def __init__(self, record: QueueRecord, now: datetime) -> None:
        rate = record.rate_limits
        self.record = record
        self.bucket = TokenBucket(rate.max_dispatches_per_second, rate.max_burst_size, now)
        self.tasks: dict[str, TaskRecord] = {}
        self.heap: list[tuple[int, int, int, TaskRecord]] = []
        self.in_flight = 0
        self.finished: deque[datetime] = deque()  # completion instants of the last minute
        self._order = itertools.count()

    @property
    def running(self) -> bool:
        return self.record.state is QueueState.RUNNING

    def push(self, task: TaskRecord) -> None:
        """Schedule ``task`` at its ``schedule_time`` and current generation."""
        entry = (micros(task.schedule_time), next(self._order), task.generation, task)
        heapq.heappush(self.heap, entry)

    def start_due(
        self, now: datetime, start: Callable[[QueueRuntime, TaskRecord, datetime], None]
    ) -> None:
        """``start(self, task, now)`` every task that may start at ``now``: due, under the
        concurrency cap, a token taken; each leaves the heap. Ignores pause."""
        cap = self.record.rate_limits.max_concurrent_dispatches
        now_us = micros(now)
        heap = self.heap
        tasks = self.tasks
        while heap and self.in_flight < cap:
            due_us, _, generation, task = heap[0]
            if task.generation != generation or tasks.get(task.name) is not task:
                heapq.heappop(heap)  # rescheduled, run by hand or deleted since
                continue
            if due_us > now_us or not self.bucket.try_take(now):
                return
            heapq.heappop(heap)
            start(self, task, now)  # counts itself in in_flight

    def wakeup(self, now: datetime) -> datetime | None:
        """When this queue can dispatch next, or None if only a completion or a change can
        make it (paused, at its concurrency cap, or empty)."""
        if self.record.state is not QueueState.RUNNING:
            return None
        if self.in_flight >= self.record.rate_limits.max_concurrent_dispatches:
            return None
        heap = self.heap
        tasks = self.tasks
        while heap:
            _, _, generation, task = heap[0]
            if task.generation == generation and tasks.get(task.name) is task:
                due = task.schedule_time if task.schedule_time > now else now
                return max(due, self.bucket.next_token_time(now))
            heapq.heappop(heap)
        return None

    def reconfigure(self, now: datetime) -> None:
        """The record's rate limits changed: the bucket follows."""
        rate = self.record.rate_limits
        self.bucket.reconfigure(rate.max_dispatches_per_second, rate.max_burst_size, now)

    def note_completion(self, now: datetime) -> None:
        self.finished.append(now)
        self.forget_old_completions(now)

    def forget_old_completions(self, now: datetime) -> None:
        horizon = now - _MINUTE
        while self.finished and self.finished[0] < horizon:
            self.finished.popleft()

    def stats(self, now: datetime) -> QueueStats:
        self.forget_old_completions(now)
        oldest = min((task.schedule_time for task in self.tasks.values()), default=None)
        return QueueStats(
            tasks_count=len(self.tasks),
            oldest_estimated_arrival_time=oldest,
            executed_last_minute_count=len(self.finished),
            concurrent_dispatches_count=self.in_flight,
            effective_execution_rate=(
                self.record.rate_limits.max_dispatches_per_second if self.running else 0.0
            ),
        )
