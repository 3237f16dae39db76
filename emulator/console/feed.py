"""The engine's event stream pushed to browsers as server-sent events: ``GET console/events``.

Query parameters, all optional: ``queue`` (a queue id, exact), ``task`` (a task id, exact)
keep only the matching events; ``history`` (default 100, at most ``RING_SIZE``) is how many of
the most recent matching events are replayed before the live ones.

Each event is ``event: cloudtasks`` with ``id: EPOCH-N`` and ``data:`` one JSON object
``{id, time, kind, queue, task, attempt, status, retryAt, detail}``: the fields of
``emulator.events.Event`` and ``id`` = N, a sequence number that grows by one per event of
this feed; EPOCH names the feed, so that numbers from before a restart are never taken for
this one's. The stream opens with ``event: hello``: ``epoch``, the server's ``now``, and
``since``, the time from which the feed holds every event (null: since it started), so a
client counting events over a window knows whether its count is complete.
A reconnecting ``EventSource`` sends ``Last-Event-ID``; the stream then resumes after that
event with whatever the ring still holds. A client that cannot keep up loses events rather
than holding the engine back: it gets ``event: dropped`` with how many it missed.

One ``EventFeed`` per service: it numbers every event once and fans it out, so the engine
pays one subscriber however many browsers watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from emulator.events import Event, EventStream

RING_SIZE: Final = 2000
"""Events held for replay: a minute of a busy queue, a few kilobytes of tuples."""
DEFAULT_HISTORY: Final = 100
MAX_PENDING: Final = 5000
"""Events waiting for one slow client before newer ones are dropped for it."""
HEARTBEAT_SECONDS: Final = 15.0
RECONNECT_MILLISECONDS: Final = 1000
EVENT_NAME: Final = "cloudtasks"


def rfc3339(moment: datetime | None) -> str | None:
    """The REST API's timestamp form (``2026-11-28T13:21:10.525Z``), so the console compares
    event times and task times without converting."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(sequence: int, event: Event) -> dict[str, Any]:
    return {
        "id": sequence,
        "time": rfc3339(event.time),
        "kind": event.kind.value,
        "queue": event.queue,
        "task": event.task,
        "attempt": event.attempt,
        "status": event.status,
        "retryAt": rfc3339(event.retry_at),
        "detail": event.detail,
    }


def sse_message(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"event: {name}\n" + ("" if event_id is None else f"id: {event_id}\n")
    return head + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"


class EventFilter:
    """Which events one stream wants: a queue id and/or a task id, or everything."""

    __slots__ = ("queue", "task")

    def __init__(self, queue: str | None = None, task: str | None = None) -> None:
        self.queue = queue or None
        self.task = task or None

    def matches(self, event: Event) -> bool:
        if self.queue is not None and event.queue != self.queue:
            return False
        return self.task is None or event.task == self.task


class _Listener:
    """One open stream's buffer: filled synchronously by the feed, drained by its handler."""

    __slots__ = ("dropped", "filter", "pending", "wake")

    def __init__(self, wanted: EventFilter) -> None:
        self.filter = wanted
        self.pending: list[tuple[int, Event]] = []
        self.dropped = 0
        self.wake = asyncio.Event()

    def offer(self, sequence: int, event: Event) -> None:
        if not self.filter.matches(event):
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
        else:
            self.pending.append((sequence, event))
        self.wake.set()


class EventFeed:
    """Numbers the engine's events, keeps the last ``RING_SIZE`` and hands each to every
    open stream. Events already in the stream's history when the feed starts are numbered
    too, so a console opened after ``--queues`` was applied still sees those events."""

    def __init__(self, stream: EventStream, now: Callable[[], datetime]) -> None:
        self._now = now
        self.epoch = secrets.token_hex(4)
        self._ring: deque[tuple[int, Event]] = deque(maxlen=RING_SIZE)
        self._sequence = 0
        self._listeners: set[_Listener] = set()
        self._closed = False
        held = list(stream)
        self._lost_at_start = len(held) > RING_SIZE  # the oldest were never numbered
        for event in held[-RING_SIZE:]:
            self._receive(event)
        self._unsubscribe = stream.subscribe(self._receive)

    def _receive(self, event: Event) -> None:
        # Every engine event passes here, watched or not: kept to the bare minimum.
        self._sequence += 1
        self._ring.append((self._sequence, event))
        if self._listeners:
            for listener in self._listeners:
                listener.offer(self._sequence, event)

    def replay(
        self, wanted: EventFilter, *, history: int, after: int | None
    ) -> list[tuple[int, Event]]:
        """What a new stream starts with: every held event after ``after`` (a reconnection),
        or else the last ``history`` matching events."""
        if after is not None:
            return [(n, e) for n, e in self._ring if n > after and wanted.matches(e)]
        if history <= 0:
            return []
        matching: deque[tuple[int, Event]] = deque(maxlen=history)
        matching.extend((n, e) for n, e in self._ring if wanted.matches(e))
        return list(matching)

    def complete_since(self) -> datetime | None:
        """From when the ring holds every event: None while it has dropped none."""
        lost = self._lost_at_start or self._sequence > RING_SIZE
        return self._ring[0][1].time if lost and self._ring else None

    def hello(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "now": rfc3339(self._now()),
            "since": rfc3339(self.complete_since()),
        }

    def messages(self, items: Iterable[tuple[int, Event]]) -> str:
        return "".join(
            sse_message(EVENT_NAME, event_json(n, e), f"{self.epoch}-{n}") for n, e in items
        )

    def resumes_after(self, last_event_id: str) -> int | None:
        """The sequence number a reconnecting client last saw, if it saw it from this feed
        (after a restart it gets the history, like a new client)."""
        epoch, _, sequence = last_event_id.partition("-")
        if epoch != self.epoch or not sequence.isdigit():
            return None
        return int(sequence)

    @contextlib.contextmanager
    def listening(self, wanted: EventFilter) -> Iterator[_Listener]:
        listener = _Listener(wanted)
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, app: web.Application | None = None) -> None:
        """Ends every open stream (an ``on_shutdown`` hook: aiohttp would otherwise wait for
        them, since an event stream never ends by itself) and stops listening."""
        if self._closed:
            return
        self._closed = True
        for listener in list(self._listeners):
            listener.wake.set()
        self._unsubscribe()


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer, got {raw!r}.") from None
    if not 0 <= value <= maximum:
        raise _bad_request(f"{name} must be between 0 and {maximum}, got {value}.")
    return value


def _bad_request(message: str) -> web.HTTPBadRequest:
    body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    return web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")


async def _follow(
    feed: EventFeed, listener: _Listener, response: web.StreamResponse, last: int
) -> None:
    """Write what arrives, in batches (one write per wake-up however many events came),
    with a heartbeat comment when nothing did, until the feed closes."""
    while not feed.closed:
        try:
            await asyncio.wait_for(listener.wake.wait(), HEARTBEAT_SECONDS)
        except TimeoutError:
            await response.write(b": heartbeat\n\n")
            continue
        listener.wake.clear()
        batch = [(n, e) for n, e in listener.pending if n > last]
        listener.pending = []
        chunk = feed.messages(batch)
        if batch:
            last = batch[-1][0]
        if listener.dropped:
            chunk += sse_message("dropped", {"count": listener.dropped})
            listener.dropped = 0
        if chunk:
            await response.write(chunk.encode())


def events_handler(feed: EventFeed) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def events(request: web.Request) -> web.StreamResponse:
        wanted = EventFilter(request.query.get("queue"), request.query.get("task"))
        history = _int_param(request, "history", DEFAULT_HISTORY, RING_SIZE)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        # Subscribed before the replay is read: nothing can fall between the two.
        with feed.listening(wanted) as listener:
            after = feed.resumes_after(request.headers.get("Last-Event-ID", ""))
            replayed = feed.replay(wanted, history=history, after=after)
            last = replayed[-1][0] if replayed else 0
            opening = f"retry: {RECONNECT_MILLISECONDS}\n\n" + sse_message("hello", feed.hello())
            with contextlib.suppress(ConnectionResetError):  # the browser went away
                await response.write((opening + feed.messages(replayed)).encode())
                await _follow(feed, listener, response, last)
        return response

    return events
