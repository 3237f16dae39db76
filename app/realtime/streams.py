"""Per-job update streams for server-sent events: the SSE responses of this instance, by job.

``LiveUpdates`` hands every update it delivers here (whichever instance published it, see
``app.realtime.channel``), and each ``GET /api/jobs/{jobId}/events`` reads its own stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from app.jobs.views import JobView

_QUEUE_SIZE = 64


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
    """The open streams of this instance, by job id."""

    def __init__(self) -> None:
        self._streams: dict[str, set[JobStream]] = {}
        self._closed = False

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

    def open_count(self) -> int:
        """How many streams are open (a gauge of ``app.metrics``)."""
        return sum(len(listeners) for listeners in self._streams.values())

    def deliver(self, update: JobView) -> None:
        """Hand ``update`` to this instance's streams of its job."""
        for stream in list(self._streams.get(update["jobId"], ())):
            stream.put(update)

    def close(self) -> None:
        """End every open stream (the app is shutting down); later subscribers end at once."""
        self._closed = True
        for listeners in self._streams.values():
            for stream in listeners:
                stream.put(None)
