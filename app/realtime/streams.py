"""Per-job update streams for server-sent events: an in-process subscriber registry, fed
across instances through one Redis pub/sub channel when Redis is configured.

Socket.IO has its own cross-instance path (``AsyncRedisManager``); SSE streams are plain HTTP
responses that live in one process, so the instance holding the stream must hear about updates
published anywhere. With Redis every update goes through the channel (the publishing instance
hears its own message too, so there is exactly one delivery path and one order); without it,
updates are delivered in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis

from app.jobs.views import JobView
from app.realtime.config import REDIS_OPTIONS

log = logging.getLogger("app.realtime.streams")

_QUEUE_SIZE = 64
_MAX_RETRY_SECONDS = 10.0


class StreamClosed(Exception):
    """The registry closed (the app is shutting down)."""


class JobStream:
    """The updates of one job for one listener. Bounded: when a slow reader falls behind, the
    oldest update is dropped, which loses nothing because every update is absolute state."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._queue: asyncio.Queue[JobView | None] = asyncio.Queue(_QUEUE_SIZE)

    def put(self, update: JobView | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(update)

    async def get(self, timeout: float) -> JobView:
        """The next update; ``TimeoutError`` after ``timeout`` s; ``StreamClosed`` on close."""
        update = await asyncio.wait_for(self._queue.get(), timeout)
        if update is None:
            raise StreamClosed
        return update


class UpdateStreams:
    """Subscribers by job id, and the way updates reach them (Redis channel or in process)."""

    def __init__(self, redis_url: str | None = None, channel: str = "daygen-socketio:sse") -> None:
        self._redis_url = redis_url or None
        self._channel = channel
        self._streams: dict[str, set[JobStream]] = {}
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def uses_redis(self) -> bool:
        return self._redis_url is not None

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[JobStream]:
        """Register a stream for ``job_id`` for the duration of the ``with`` block. Subscribe
        before reading the job's current state so no update can fall in between."""
        stream = JobStream(job_id)
        if self._closed:
            stream.put(None)
        self._streams.setdefault(job_id, set()).add(stream)
        try:
            yield stream
        finally:
            listeners = self._streams.get(job_id)
            if listeners is not None:
                listeners.discard(stream)
                if not listeners:
                    del self._streams[job_id]

    def listeners(self, job_id: str) -> int:
        return len(self._streams.get(job_id, ()))

    async def start(self) -> None:
        """With Redis: subscribe to the channel before returning, so an SSE request served
        after start-up cannot miss an update published elsewhere."""
        if self._redis_url is None or self._listener is not None:
            return
        self._redis = aioredis.Redis.from_url(self._redis_url, **REDIS_OPTIONS)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)
        self._listener = asyncio.create_task(self._listen(self._pubsub), name="sse-redis-listener")

    async def publish(self, update: JobView) -> None:
        if self._redis_url is None:
            self.deliver(update)
            return
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self._redis_url, **REDIS_OPTIONS)
        await self._redis.publish(self._channel, json.dumps(update))

    def deliver(self, update: JobView) -> None:
        """Hand ``update`` to this process's streams of its job."""
        for stream in list(self._streams.get(update["jobId"], ())):
            stream.put(update)

    async def _listen(self, pubsub: Any) -> None:
        """Read the channel for the life of the app; resubscribe after Redis goes away."""
        retry = 0.5
        while True:
            try:
                async for message in pubsub.listen():
                    retry = 0.5
                    if message.get("type") != "message":
                        continue
                    try:
                        update = json.loads(message["data"])
                    except ValueError:
                        log.warning("ignoring a malformed message on %s", self._channel)
                        continue
                    if isinstance(update, dict) and isinstance(update.get("jobId"), str):
                        self.deliver(update)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SSE update channel %s failed; resubscribing", self._channel)
            # Back off before resubscribing so a Redis outage is not a busy loop.
            await asyncio.sleep(retry)
            retry = min(retry * 2, _MAX_RETRY_SECONDS)
            with contextlib.suppress(Exception):
                await pubsub.subscribe(self._channel)

    def close_streams(self) -> None:
        """End every open stream (the app is shutting down); later subscribers end at once."""
        self._closed = True
        for listeners in self._streams.values():
            for stream in listeners:
                stream.put(None)

    async def close(self) -> None:
        self.close_streams()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
