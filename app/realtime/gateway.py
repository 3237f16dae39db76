"""``SocketIOJobEvents``: the jobs service's ``JobEvents`` publisher, delivering every job update
to the owner's Socket.IO clients and to the job's SSE streams, on this or any other instance.

Publishing never raises (``JobEvents`` contract): the job's state is already committed, and a
client that misses an update is corrected by the next one (updates are absolute state) or by
the snapshot it gets when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio
from aiohttp import web

from app.context import SERVICES, Services
from app.events import JobUpdate
from app.jobs.views import JobView
from app.realtime.config import RealtimeConfig
from app.realtime.rooms import job_room, user_room
from app.realtime.socket_handlers import SocketHandlers, build_server, close_all_transports
from app.realtime.sse import sse_handler
from app.realtime.streams import UpdateStreams

log = logging.getLogger("app.realtime")

EVENT = "jobUpdate"
SSE_ROUTE = "/api/jobs/{job_id}/events"


class SocketIOJobEvents:
    """Build it, pass it to ``create_app(events=...)``, then ``attach`` it to that app."""

    def __init__(self, config: RealtimeConfig | None = None) -> None:
        self.config = config or RealtimeConfig()
        self.sio = build_server(self.config)
        self.streams = UpdateStreams(self.config.redis_url, self.config.sse_channel)
        self._services: Services | None = None
        self.handlers = SocketHandlers(self.sio, self._bound_services)
        self._closed = False

    def _bound_services(self) -> Services:
        if self._services is None:
            raise RuntimeError("SocketIOJobEvents.attach(app) was not called")
        return self._services

    def attach(self, app: web.Application) -> None:
        """Serve Socket.IO at ``/socket.io/`` and SSE at ``/api/jobs/{jobId}/events`` on
        ``app`` (built by ``create_app``, whose services the handlers use)."""
        self._services = app[SERVICES]
        self.sio.attach(app)
        app.router.add_get(SSE_ROUTE, sse_handler(self.streams, self.config.sse_heartbeat_seconds))
        app[REALTIME] = self
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)

    async def publish(self, update: JobUpdate) -> None:
        await self.publish_view(update.user_id, update.payload)

    async def publish_view(self, user_id: str, view: JobView) -> None:
        """Emit ``view`` to the rooms of its owner and of its job (a socket in both gets it
        once), and to the job's SSE streams."""
        context = {"job_id": view.get("jobId"), "user_id": user_id}
        timeout = self.config.publish_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await self.sio.emit(EVENT, view, to=[user_room(user_id), job_room(view["jobId"])])
        except Exception:
            log.exception("emitting a job update failed", extra=context)
        try:
            async with asyncio.timeout(timeout):
                await self.streams.publish(view)
        except Exception:
            log.exception("streaming a job update failed", extra=context)

    async def _on_startup(self, app: web.Application) -> None:
        await self.streams.start()
        if self.config.redis_url:
            await _start_manager(self.sio)

    async def _on_shutdown(self, app: web.Application) -> None:
        """Before aiohttp waits for open requests: end SSE streams and close the sockets (the
        clients reconnect, to another instance if this one is going away)."""
        self.streams.close_streams()
        await close_all_transports(self.sio)

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop timers, listeners and Redis connections. Idempotent: ``create_app`` closes its
        events publisher too."""
        if self._closed:
            return
        self._closed = True
        await self.handlers.close()
        await self.streams.close()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()
        await _close_manager(self.sio.manager)


async def _start_manager(sio: socketio.AsyncServer, timeout: float = 10.0) -> None:
    """Start the Redis manager's listener now and wait until it has subscribed.

    python-socketio starts it lazily on the first connection, in the background: updates
    published by other instances in the moments before it subscribes would reach nobody,
    though the socket that triggered it was told it is connected.
    """
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        pubsub = getattr(sio.manager, "pubsub", None)
        if pubsub is not None and pubsub.subscribed:
            return
        await asyncio.sleep(0.01)  # bounded readiness poll: the manager offers no event
    log.warning("Socket.IO Redis manager not subscribed after %.0fs; continuing", timeout)


async def _close_manager(manager: Any) -> None:
    """python-socketio has no public close for its Redis manager: cancel its listener task
    and close its connections so nothing outlives the app."""
    task = getattr(manager, "thread", None)
    if task is not None and hasattr(task, "cancel"):
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    for name in ("pubsub", "redis"):
        connection = getattr(manager, name, None)
        close = getattr(connection, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


REALTIME = web.AppKey("realtime", SocketIOJobEvents)
