"""Serving until told to stop, and stopping the way Cloud Run expects.

Cloud Run sends SIGTERM and kills the instance 10 s later. On SIGTERM (or Ctrl-C) the app:

1. stops taking deliveries: ``POST /internal/tasks/...`` answers 503 with ``Retry-After``
   (Cloud Tasks counts it as a failed attempt and retries with backoff, elsewhere on Cloud
   Run); the in-process emulator starts no new attempt at all;
2. lets the deliveries already running finish, for up to ``SHUTDOWN_GRACE_SECONDS``
   (6 s by default: the rest of the stop took up to 2 s on a loaded machine);
3. hands back those still running then: each is cancelled and answers 503 with
   ``Retry-After``, a failed attempt the queue retries (the retry takes the job over from the
   attempt that was stopped, see ``app.jobs.transitions.claim_job``; whatever the stopped
   attempt still writes is discarded, as for any superseded attempt); the in-process
   emulator journals that retry for the next start;
4. closes its connections (Socket.IO clients get "transport close" and reconnect on their
   own, SSE streams end) and its resources, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.services import SERVICES

log = logging.getLogger("app.lifecycle")

TASK_PATH_PREFIX = "/internal/tasks/"
CLEANUP_SECONDS = 0.5
"""What ``runner.cleanup`` gets for deliveries still open after the grace period."""


class Drain:
    """Counts the deliveries in progress and refuses new ones once the app is stopping."""

    def __init__(self, *, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.stopping = False
        self.handing_back = False
        self._running: set[asyncio.Task[object]] = set()
        self._idle: asyncio.Event | None = None

    @property
    def running(self) -> int:
        return len(self._running)

    def _refused(self, message: str) -> web.Response:
        return web.json_response(
            {"error": "shutting_down", "message": message},
            status=503,
            headers={"Retry-After": str(self.retry_after_seconds)},
        )

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(TASK_PATH_PREFIX):
            return await handler(request)
        if self.stopping:
            return self._refused("this instance is stopping; retry later")
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not self.handing_back:
                raise
            task.uncancel()  # cancelled by hand_back(): answer, so the queue retries it
            return self._refused("this instance stopped before the task finished; retry")
        finally:
            self._running.discard(task)
            if not self._running and self._idle is not None:
                self._idle.set()

    async def stop(self, grace: float) -> int:
        """Refuse new deliveries; wait up to ``grace`` seconds for the running ones. Returns
        how many were still running (to be handed back)."""
        self.stopping = True
        await self._wait_idle(grace)
        return self.running

    async def hand_back(self, wait: float) -> None:
        """Cancel the deliveries still running: each answers 503 (``Retry-After``)."""
        self.handing_back = True
        for task in list(self._running):
            task.cancel()
        await self._wait_idle(wait)

    async def _wait_idle(self, timeout: float) -> None:
        if not self._running:
            return
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            pass


DRAIN = web.AppKey("drain", Drain)


async def serve(
    app: web.Application,
    listener: socket.socket,
    *,
    grace: float,
    announce: Callable[[str], None],
) -> None:
    """Serve ``app`` (from ``create_app``) on ``listener`` until SIGTERM or SIGINT, then stop
    as described above."""
    # The in-process emulator's (a queue served elsewhere has nothing to stop here).
    stop_dispatching = getattr(app[SERVICES].queue, "stop_dispatching", None)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLEANUP_SECONDS)
    await runner.setup()
    try:
        site = web.SockSite(runner, listener)
        await site.start()
        announce(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopped.set)
        await stopped.wait()
        began = time.monotonic()
        drain = app[DRAIN]
        log.info("stopping: no new deliveries; %d running get %gs", drain.running, grace)
        if stop_dispatching is not None:
            await stop_dispatching()
        handed_back = await drain.stop(grace)
        if handed_back:
            log.warning("%d deliveries still running: handed back to the queue", handed_back)
            await drain.hand_back(CLEANUP_SECONDS)
        await runner.cleanup()
        log.info("stopped in %.2fs", time.monotonic() - began)
    finally:
        await runner.cleanup()  # a second call does nothing
