"""``SqliteStore``: the engine's journal in one SQLite file (``--db PATH``), via aiosqlite.

Write-behind: ``put_*``/``remove_*`` only record the latest state per name in memory;
``flush()`` writes everything pending in ONE transaction. While a transaction commits, new
writes pile up and go together in the next one, so 50 concurrent CreateTask calls cost a
handful of commits, not 50. WAL mode with ``synchronous=NORMAL`` survives a killed process
(only an OS crash can lose the last commits), which is the promise we make: a task whose
CreateTask was answered is on disk.

Writes the engine does not flush itself (dispatch counters, retry schedules) are flushed by
a short timer, so a restart loses at most that much progress, never a task.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from emulator import rules
from emulator.clock import Clock
from emulator.model import (
    AppEngineRouting,
    Attempt,
    HttpTarget,
    OAuthToken,
    OidcToken,
    QueueHttpTarget,
    QueueRecord,
    QueueState,
    RateLimits,
    RetryConfig,
    TaskRecord,
    UriOverride,
)
from emulator.store import StoredState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, queue TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task_tombstones (name TEXT PRIMARY KEY, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue_tombstones (name TEXT PRIMARY KEY, until TEXT NOT NULL);
"""
# Background flush delay for writes nobody awaits.
AUTO_FLUSH_SECONDS = 0.05
# Expired tombstones are deleted every this many flushes.
_PRUNE_EVERY = 200

_MICRO = timedelta(microseconds=1)


def _t(when: datetime | None) -> int | None:
    return None if when is None else (when - rules.EPOCH) // _MICRO


def _dt(micros: int | None) -> datetime | None:
    return None if micros is None else rules.EPOCH + timedelta(microseconds=micros)


def _d(micros: int) -> timedelta:
    return timedelta(microseconds=micros)


def _attempt_json(attempt: Attempt | None) -> list[Any] | None:
    if attempt is None:
        return None
    return [
        _t(attempt.schedule_time),
        _t(attempt.dispatch_time),
        _t(attempt.response_time),
        attempt.response_code,
        attempt.response_message,
        attempt.http_status,
    ]


def _attempt(data: list[Any] | None) -> Attempt | None:
    if data is None:
        return None
    return Attempt(_dt(data[0]), _dt(data[1]), _dt(data[2]), data[3], data[4], data[5])


def _retry_json(retry: RetryConfig) -> list[Any]:
    return [
        retry.max_attempts,
        retry.max_retry_duration // _MICRO,
        retry.min_backoff // _MICRO,
        retry.max_backoff // _MICRO,
        retry.max_doublings,
    ]


def _retry(data: list[Any]) -> RetryConfig:
    return RetryConfig(data[0], _d(data[1]), _d(data[2]), _d(data[3]), data[4])


def _routing_json(routing: AppEngineRouting) -> list[str]:
    return [routing.service, routing.version, routing.instance]


def _http_target_json(target: QueueHttpTarget) -> dict[str, Any]:
    uri = target.uri_override
    return {
        "uri": None
        if uri is None
        else [uri.scheme, uri.host, uri.port, uri.path, uri.query, uri.enforce_mode],
        "method": target.http_method,
        "headers": target.header_overrides,
        "oidc": None
        if target.oidc_token is None
        else [target.oidc_token.service_account_email, target.oidc_token.audience],
        "oauth": None
        if target.oauth_token is None
        else [target.oauth_token.service_account_email, target.oauth_token.scope],
    }


def _http_target(data: dict[str, Any]) -> QueueHttpTarget:
    uri, oidc, oauth = data["uri"], data["oidc"], data["oauth"]
    return QueueHttpTarget(
        uri_override=None if uri is None else UriOverride(*uri),
        http_method=data["method"],
        header_overrides=data["headers"],
        oidc_token=None if oidc is None else OidcToken(*oidc),
        oauth_token=None if oauth is None else OAuthToken(*oauth),
    )


def encode_task(task: TaskRecord) -> str:
    target = task.http_request
    extras: dict[str, Any] = {}  # only when present: the common task stays small
    if target.oauth_token is not None:
        extras["oauth"] = [target.oauth_token.service_account_email, target.oauth_token.scope]
    if target.app_engine is not None:
        extras["app_engine"] = _routing_json(target.app_engine)
    if task.retry_config is not None:
        extras["retry"] = _retry_json(task.retry_config)
    return json.dumps(
        extras
        | {
            "url": target.url,
            "method": target.http_method,
            "headers": target.headers,
            "body": base64.b64encode(target.body).decode() if target.body else "",
            "oidc": None
            if target.oidc_token is None
            else [target.oidc_token.service_account_email, target.oidc_token.audience],
            "schedule": _t(task.schedule_time),
            "create": _t(task.create_time),
            "deadline": task.dispatch_deadline // _MICRO,
            "dispatches": task.dispatch_count,
            "responses": task.response_count,
            "executions": task.execution_count,
            "first": _attempt_json(task.first_attempt),
            "last": _attempt_json(task.last_attempt),
            "named": task.named,
        },
        separators=(",", ":"),
    )


def decode_task(name: str, queue: str, data: str) -> TaskRecord:
    raw = json.loads(data)
    oidc, oauth, app_engine, retry = raw["oidc"], raw.get("oauth"), raw.get("app_engine"), None
    if "retry" in raw:
        retry = _retry(raw["retry"])
    schedule = _dt(raw["schedule"])
    create = _dt(raw["create"])
    assert schedule is not None and create is not None
    return TaskRecord(
        name=name,
        queue=queue,
        http_request=HttpTarget(
            url=raw["url"],
            http_method=raw["method"],
            headers=raw["headers"],
            body=base64.b64decode(raw["body"]) if raw["body"] else b"",
            oidc_token=None if oidc is None else OidcToken(oidc[0], oidc[1]),
            oauth_token=None if oauth is None else OAuthToken(*oauth),
            app_engine=None if app_engine is None else AppEngineRouting(*app_engine),
        ),
        schedule_time=schedule,
        create_time=create,
        dispatch_deadline=_d(raw["deadline"]),
        dispatch_count=raw["dispatches"],
        response_count=raw["responses"],
        execution_count=raw["executions"],
        first_attempt=_attempt(raw["first"]),
        last_attempt=_attempt(raw["last"]),
        named=raw.get("named", True),
        retry_config=retry,
    )


def encode_queue(queue: QueueRecord) -> str:
    rate, retry = queue.rate_limits, queue.retry_config
    return json.dumps(
        {
            "rate": rate.max_dispatches_per_second,
            "concurrent": rate.max_concurrent_dispatches,
            "attempts": retry.max_attempts,
            "duration": retry.max_retry_duration // _MICRO,
            "min": retry.min_backoff // _MICRO,
            "max": retry.max_backoff // _MICRO,
            "doublings": retry.max_doublings,
            "state": int(queue.state),
            "purge": _t(queue.purge_time),
            "http_target": None
            if queue.http_target is None
            else _http_target_json(queue.http_target),
            "routing": None
            if queue.app_engine_routing_override is None
            else _routing_json(queue.app_engine_routing_override),
            "task_ttl": queue.task_ttl // _MICRO,
            "tombstone_ttl": None if queue.tombstone_ttl is None else queue.tombstone_ttl // _MICRO,
            "pull": queue.pull,
        }
    )


def decode_queue(name: str, data: str) -> QueueRecord:
    raw = json.loads(data)
    return QueueRecord(
        name=name,
        rate_limits=RateLimits(raw["rate"], raw["concurrent"]),
        retry_config=RetryConfig(
            raw["attempts"], _d(raw["duration"]), _d(raw["min"]), _d(raw["max"]), raw["doublings"]
        ),
        state=QueueState(raw["state"]),
        purge_time=_dt(raw["purge"]),
        http_target=None if raw.get("http_target") is None else _http_target(raw["http_target"]),
        app_engine_routing_override=None
        if raw.get("routing") is None
        else AppEngineRouting(*raw["routing"]),
        task_ttl=_d(raw.get("task_ttl", rules.DEFAULT_TASK_TTL // _MICRO)),
        tombstone_ttl=None if raw.get("tombstone_ttl") is None else _d(raw["tombstone_ttl"]),
        pull=raw.get("pull", False),
    )


class SqliteStore:
    """A durable ``Store``. Pending writes are keyed by name, so a task dispatched ten times
    between two flushes is written once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._clock: Clock | None = None  # the engine's, from load()
        self._queues: dict[str, QueueRecord | datetime] = {}  # record, or tombstone expiry
        self._tasks: dict[str, TaskRecord | datetime | None] = {}  # None: deleted, no tombstone
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._flushes = 0
        self.commits = 0  # for tests and benchmarks: how well writes batch

    async def _connect(self) -> aiosqlite.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(_SCHEMA)
            await db.commit()
            self._db = db
        return self._db

    async def load(self, clock: Clock) -> StoredState:
        self._clock = clock
        db = await self._connect()
        now = clock.now()
        state = StoredState()
        async with db.execute("SELECT name, data FROM queues") as cursor:
            async for name, data in cursor:
                state.queues.append(decode_queue(name, data))
        async with db.execute("SELECT name, queue, data FROM tasks") as cursor:
            async for name, queue, data in cursor:
                state.tasks.append(decode_task(name, queue, data))
        for table, target in (
            ("task_tombstones", state.task_tombstones),
            ("queue_tombstones", state.queue_tombstones),
        ):
            async with db.execute(f"SELECT name, until FROM {table}") as cursor:
                async for name, until in cursor:
                    expiry = datetime.fromisoformat(until)
                    if expiry > now:
                        target[name] = expiry
        return state

    # ------------------------------------------------------------------ journal

    def put_queue(self, queue: QueueRecord) -> None:
        self._queues[queue.name] = queue
        self._schedule()

    def remove_queue(self, name: str, tombstone_until: datetime) -> None:
        self._queues[name] = tombstone_until
        self._schedule()

    def put_task(self, task: TaskRecord) -> None:
        self._tasks[task.name] = task
        self._schedule()

    def remove_task(self, name: str, tombstone_until: datetime | None) -> None:
        self._tasks[name] = tombstone_until
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush writes
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(AUTO_FLUSH_SECONDS, self._auto_flush)

    def _auto_flush(self) -> None:
        self._timer = None
        job = asyncio.get_running_loop().create_task(self.flush())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def flush(self) -> None:
        """Returns once everything written before the call is committed."""
        if not self._queues and not self._tasks:
            # Nothing pending, but an earlier flush may still be committing our writes.
            async with self._lock:
                return
        async with self._lock:
            if not self._queues and not self._tasks:
                return  # a flush that ran while we waited took our writes
            queues, self._queues = self._queues, {}
            tasks, self._tasks = self._tasks, {}
            await self._write(queues, tasks)

    async def _write(
        self,
        queues: dict[str, QueueRecord | datetime],
        tasks: dict[str, TaskRecord | datetime | None],
    ) -> None:
        db = await self._connect()
        queue_rows = [(n, encode_queue(q)) for n, q in queues.items() if isinstance(q, QueueRecord)]
        queue_gone = [(n, q.isoformat()) for n, q in queues.items() if isinstance(q, datetime)]
        task_rows = [
            (n, t.queue, encode_task(t)) for n, t in tasks.items() if isinstance(t, TaskRecord)
        ]
        task_gone = [(n, t.isoformat()) for n, t in tasks.items() if isinstance(t, datetime)]
        task_dropped = [(n,) for n, t in tasks.items() if t is None]
        try:
            if queue_rows:
                await db.executemany(
                    "INSERT OR REPLACE INTO queues (name, data) VALUES (?, ?)", queue_rows
                )
                await db.executemany(
                    "DELETE FROM queue_tombstones WHERE name = ?", [(n,) for n, _ in queue_rows]
                )
            if queue_gone:
                await db.executemany(
                    "DELETE FROM queues WHERE name = ?", [(n,) for n, _ in queue_gone]
                )
                await db.executemany(
                    "INSERT OR REPLACE INTO queue_tombstones (name, until) VALUES (?, ?)",
                    queue_gone,
                )
            if task_rows:
                await db.executemany(
                    "INSERT OR REPLACE INTO tasks (name, queue, data) VALUES (?, ?, ?)", task_rows
                )
            if task_gone or task_dropped:
                await db.executemany(
                    "DELETE FROM tasks WHERE name = ?",
                    [(n,) for n, _ in task_gone] + task_dropped,
                )
            if task_gone:
                await db.executemany(
                    "INSERT OR REPLACE INTO task_tombstones (name, until) VALUES (?, ?)", task_gone
                )
            self._flushes += 1
            if self._flushes % _PRUNE_EVERY == 0 and self._clock is not None:
                cutoff = self._clock.now().isoformat()
                await db.execute("DELETE FROM task_tombstones WHERE until <= ?", (cutoff,))
            await db.commit()
            self.commits += 1
        except BaseException:
            # Keep what failed to commit (unless newer state arrived meanwhile) for the next try.
            for queue_name, queue in queues.items():
                self._queues.setdefault(queue_name, queue)
            for task_name, task in tasks.items():
                self._tasks.setdefault(task_name, task)
            with contextlib.suppress(Exception):
                await db.rollback()
            raise

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for job in list(self._background):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await job
        await self.flush()
        if self._db is not None:
            await self._db.close()
            self._db = None
