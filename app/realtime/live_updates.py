"""``LiveUpdates``: the service's ``JobEvents`` publisher, delivering every job update to the
owner's Socket.IO clients and to the job's SSE streams, on this or any other instance.

An update is published once, to the ``UpdateChannel`` (Redis, or this process); what each
instance hears it delivers locally: to its SSE streams of the job, and to the Socket.IO rooms
of the owner and of the job on python-socketio's plain in-memory manager. Socket.IO has no
cross-instance path of its own, so both kinds of client see the same updates in the same order.

Publishing never raises (``JobEvents`` contract): the job's state is already committed, and a
client that misses an update is corrected by the next one (updates are absolute state) or by
the snapshot it gets when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import socketio

from app.events import JOB_UPDATE_EVENT, JobUpdate
from app.realtime.channel import UpdateChannel
from app.realtime.rooms import job_room, user_room
from app.realtime.socket_handlers import close_all_transports
from app.realtime.streams import UpdateStreams
from app.settings import Settings

log = logging.getLogger("app.realtime")

PUBLISH_TIMEOUT_SECONDS = 5.0
"""Longest a publish may take (a slow Redis): the job processor waits for it."""


class LiveUpdates:
    def __init__(
        self, settings: Settings, *, publish_timeout: float = PUBLISH_TIMEOUT_SECONDS
    ) -> None:
        origins = settings.socketio_cors_allowed_origins
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            # "*" is safe with bearer tokens (no ambient cookies), and is what the seed's
            # frontend on another port needs.
            cors_allowed_origins="*" if origins == ["*"] else origins,
            logger=False,
            engineio_logger=False,
        )
        self.streams = UpdateStreams()
        self.channel = UpdateChannel(
            settings.redis_url, f"{settings.socketio_redis_channel}:job-updates", self._deliver
        )
        self.publish_timeout = publish_timeout

    async def publish(self, update: JobUpdate) -> None:
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.channel.publish(update)
        except Exception:
            log.exception("publishing a job update failed", extra=_context(update))

    async def _deliver(self, update: JobUpdate) -> None:
        """To this instance's clients of the update: the job's SSE streams, and the rooms of
        its owner and of the job (a socket in both gets it once)."""
        view = update.payload
        self.streams.deliver(view)
        rooms = [user_room(update.user_id), job_room(update.job_id)]
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.sio.emit(JOB_UPDATE_EVENT, view, to=rooms)
        except Exception:
            log.exception("emitting a job update failed", extra=_context(update))

    async def start(self) -> None:
        await self.channel.start()

    async def end_connections(self) -> None:
        """Shutting down, before aiohttp waits for open requests: end the SSE streams and
        close the sockets (the clients reconnect, to another instance if this one goes)."""
        self.streams.close()
        await close_all_transports(self.sio)

    async def close(self) -> None:
        """Stop the channel listener and python-socketio's background tasks."""
        self.streams.close()
        await self.channel.close()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()


def _context(update: JobUpdate) -> dict[str, str]:
    return {"job_id": update.job_id, "user_id": update.user_id}
