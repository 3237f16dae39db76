"""The Socket.IO side: who may connect, which rooms a socket joins, and when it must go.

Every socket authenticates on connect (JWT in the ``auth`` payload, or a ``token`` query
parameter for older clients) and joins ``user:{id}``; ``subscribe`` adds ``job:{id}`` for a job
the user owns. Right after connect the socket gets the state of the user's unfinished jobs,
because updates published before it connected were sent to nobody. When the token expires
the transport is closed, so socket.io-client reconnects on its own and calls its ``auth``
callback for a fresh token (a Socket.IO-level disconnect would stop it from reconnecting).

Nothing is held for free (``SocketLimits``): an engine.io session that has not completed a
Socket.IO CONNECT within ``auth_timeout`` seconds is closed (it holds a session and answers
pings, but nobody ever authenticated it); at most ``max_connections`` sockets per instance and
``max_per_user`` per user, the next one refused with ``connect_error`` ``message: "too many
connections"``; at most ``max_connections`` sessions may wait for their CONNECT at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import socketio

from app.auth import AuthError, UserAuthenticator
from app.events import JOB_UPDATE_EVENT
from app.jobs.records import JobRecord
from app.jobs.store import JobStore
from app.jobs.views import JobView, job_view, signed_job_view
from app.models import MAX_JOB_ID_LENGTH
from app.realtime.rooms import job_room, user_room
from app.storage import Storage

log = logging.getLogger("app.realtime")

NAMESPACE = "/"
SNAPSHOT_LIMIT = 200
"""At most this many unfinished jobs (the newest) are sent on connect: a user with a huge
backlog gets the recent ones at once and the rest as they move."""


def refused(reason: str) -> socketio.exceptions.ConnectionRefusedError:
    """The client sees ``connect_error`` with ``message == "unauthorized"`` and ``data.reason``."""
    return socketio.exceptions.ConnectionRefusedError("unauthorized", {"reason": reason})


TOO_MANY = "too many connections"


def too_many(reason: str) -> socketio.exceptions.ConnectionRefusedError:
    """``connect_error`` with ``message == "too many connections"`` and ``data.reason``."""
    return socketio.exceptions.ConnectionRefusedError(TOO_MANY, {"reason": reason})


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """What one instance holds for Socket.IO clients (settings ``SOCKETIO_*``)."""

    auth_timeout: float = 5.0
    max_connections: int = 10_000
    max_per_user: int = 20


def token_from(auth: Any, environ: dict[str, Any]) -> str | None:
    """The JWT from ``io(url, {auth: {token}})``, else from ``?token=`` (older clients)."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token.strip():
            return token.strip().removeprefix("Bearer ").strip()
    query: dict[str, list[str]] = parse_qs(str(environ.get("QUERY_STRING", "")))
    for value in query.get("token", []):
        if value.strip():
            return value.strip()
    return None


def job_id_from(args: tuple[Any, ...]) -> str | None:
    """``emit('subscribe', jobId)`` or ``emit('subscribe', {jobId})``."""
    if not args:
        return None
    value = args[0]
    if isinstance(value, dict):
        value = value.get("jobId")
    if isinstance(value, str) and 0 < len(value) <= MAX_JOB_ID_LENGTH:
        return value
    return None


async def close_transport(sio: socketio.AsyncServer, eio_sid: str) -> None:
    """Close the engine.io connection ``eio_sid``: the client sees "transport close" and
    reconnects on its own, calling its ``auth`` callback for a fresh token. (A Socket.IO-level
    disconnect is "io server disconnect", after which clients do not reconnect.)

    It does not wait for the client to read the CLOSE packet (``eio.disconnect`` would): a
    long-polling client that stopped polling would hold it, and a shutdown, forever."""
    socket = sio.eio.sockets.get(eio_sid)
    if socket is None:
        return
    await socket.close(wait=False, reason=sio.eio.reason.SERVER_DISCONNECT)
    sio.eio.sockets.pop(eio_sid, None)
    # engine.io-client ignores the CLOSE packet on a websocket, so the websocket itself must
    # close; python-engineio's writer closes it when it reads ``None`` from the queue.
    queue = getattr(socket, "queue", None)
    if queue is not None:
        queue.put_nowait(None)


async def close_all_transports(sio: socketio.AsyncServer) -> None:
    """Close every connection of this instance (shutting down: clients reconnect elsewhere,
    and aiohttp does not wait for open websockets until its shutdown timeout)."""
    for eio_sid in list(sio.eio.sockets):
        with contextlib.suppress(Exception):
            await close_transport(sio, eio_sid)


class SocketHandlers:
    """Registers the connect/disconnect/subscribe/unsubscribe handlers on ``sio``: tokens are
    checked by ``users``, jobs read from ``store``."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        store: JobStore,
        users: UserAuthenticator,
        storage: Storage | None = None,
        limits: SocketLimits | None = None,
    ) -> None:
        self.sio = sio
        self.store = store
        self.users = users
        self.storage = storage  # signs result URLs in the states sent (None: as stored)
        self.limits = limits or SocketLimits()
        self._user_of: dict[str, str] = {}
        self._per_user: Counter[str] = Counter()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._unauthenticated: dict[str, asyncio.TimerHandle] = {}  # engine.io sid -> timer
        self._tasks: set[asyncio.Task[Any]] = set()
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        sio.on("subscribe", self.subscribe)
        sio.on("unsubscribe", self.unsubscribe)
        self._watch_engineio_sessions()

    def _watch_engineio_sessions(self) -> None:
        """Wrap python-socketio's own engine.io connect/disconnect handlers: every new
        engine.io session gets ``auth_timeout`` seconds to complete its Socket.IO CONNECT."""
        eio = self.sio.eio
        on_connect, on_disconnect = eio.handlers["connect"], eio.handlers["disconnect"]

        async def eio_connect(eio_sid: str, environ: dict[str, Any]) -> Any:
            if len(self._unauthenticated) >= self.limits.max_connections:
                log.warning("engine.io session refused: too many waiting for their CONNECT")
                return False
            answer = await on_connect(eio_sid, environ)
            loop = asyncio.get_running_loop()
            self._unauthenticated[eio_sid] = loop.call_later(
                self.limits.auth_timeout, self._unauthenticated_too_long, eio_sid
            )
            return answer

        async def eio_disconnect(eio_sid: str, *reason: Any) -> Any:
            timer = self._unauthenticated.pop(eio_sid, None)
            if timer is not None:
                timer.cancel()
            return await on_disconnect(eio_sid, *reason)

        eio.on("connect", eio_connect)
        eio.on("disconnect", eio_disconnect)

    def _unauthenticated_too_long(self, eio_sid: str) -> None:
        self._unauthenticated.pop(eio_sid, None)
        if eio_sid in self.sio.eio.sockets:
            log.info("closing an engine.io session that never connected to Socket.IO")
            self._spawn(close_transport(self.sio, eio_sid))

    def connected_count(self) -> int:
        """How many authenticated sockets are connected (a gauge of ``app.metrics``)."""
        return len(self._user_of)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = token_from(auth, environ)
        if token is None:
            raise refused("missing token: connect with io(url, {auth: {token}})")
        try:
            principal = await self.users.verify(token)
        except AuthError as error:
            raise refused(str(error)) from None
        user_id = principal.user_id
        if len(self._user_of) >= self.limits.max_connections:
            raise too_many(f"this server holds its limit of {self.limits.max_connections}")
        if self._per_user[user_id] >= self.limits.max_per_user:
            raise too_many(f"at most {self.limits.max_per_user} connections per user")
        self._user_of[sid] = user_id
        self._per_user[user_id] += 1
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        timer = self._unauthenticated.pop(eio_sid, None) if eio_sid is not None else None
        if timer is not None:
            timer.cancel()
        await self.sio.enter_room(sid, user_room(user_id))
        self._schedule_expiry(sid, principal.expires_at)
        # After the handler returns the client is told it is connected; the snapshot runs in
        # its own task so the connect answer is not held up by the database.
        self._spawn(self._send_snapshot(sid, user_id))

    async def disconnect(self, sid: str, *_reason: Any) -> None:
        user_id = self._user_of.pop(sid, None)
        if user_id is not None:
            self._per_user[user_id] -= 1
            if self._per_user[user_id] <= 0:
                del self._per_user[user_id]
        timer = self._expiry.pop(sid, None)
        if timer is not None:
            timer.cancel()

    async def subscribe(self, sid: str, *args: Any) -> dict[str, Any]:
        """Join ``job:{id}`` for a job the user owns; the ack carries the job's current state
        (the client may have learnt the id before it connected)."""
        user_id = self._user_of.get(sid)
        job_id = job_id_from(args)
        if user_id is None:
            return {"ok": False, "error": "unauthorized"}
        if job_id is None:
            return {"ok": False, "error": "a job id is required: emit('subscribe', jobId, ack)"}
        job = await self.store.get_user_job(user_id, job_id)
        if job is None:  # unknown, or another user's: the same answer, as the HTTP API's 404
            return {"ok": False, "error": "not found"}
        await self.sio.enter_room(sid, job_room(job_id))
        return {"ok": True, "job": await self._view(job)}

    async def unsubscribe(self, sid: str, *args: Any) -> dict[str, Any]:
        job_id = job_id_from(args)
        if job_id is None:
            return {"ok": False, "error": "a job id is required: emit('unsubscribe', jobId, ack)"}
        await self.sio.leave_room(sid, job_room(job_id))
        return {"ok": True}

    async def _send_snapshot(self, sid: str, user_id: str) -> None:
        try:
            jobs = (await self.store.unfinished_jobs(user_id))[:SNAPSHOT_LIMIT]
            for job in reversed(jobs):  # oldest first, like the updates that were missed
                await self.sio.emit(JOB_UPDATE_EVENT, await self._view(job), to=sid)
        except Exception:
            log.exception(
                "sending the snapshot of unfinished jobs failed", extra={"user_id": user_id}
            )

    async def _view(self, job: JobRecord) -> JobView:
        if self.storage is None:
            return job_view(job)
        return await signed_job_view(job, self.storage)

    def _schedule_expiry(self, sid: str, expires_at: datetime) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
        self._expiry[sid] = loop.call_later(delay, self._expire, sid)

    def _expire(self, sid: str) -> None:
        self._expiry.pop(sid, None)
        if sid in self._user_of:
            self._spawn(self._close_transport(sid))

    async def _close_transport(self, sid: str) -> None:
        log.info("token expired; closing the socket", extra={"user_id": self._user_of.get(sid)})
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            await close_transport(self.sio, eio_sid)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for timer in [*self._expiry.values(), *self._unauthenticated.values()]:
            timer.cancel()
        self._expiry.clear()
        self._unauthenticated.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
