"""``UpdateChannel``: how a job update reaches every instance of the service.

With ``REDIS_URL`` each update is published once to one Redis pub/sub channel, and every
instance (the publishing one included) delivers what it hears to its own clients: one delivery
path and one order for Socket.IO and SSE alike, whichever instance processed the job. Without
Redis an update is delivered in this process, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis

from app.events import JobUpdate
from app.jobs.views import JobView

log = logging.getLogger("app.realtime.channel")

REDIS_OPTIONS: dict[str, Any] = {
    # An unreachable Redis must fail a publish quickly, never hang the job processor.
    "socket_connect_timeout": 5,
    # Long-lived subscriber connections: notice a dead one (NAT, failover) and reconnect.
    "health_check_interval": 30,
}
_FIRST_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 10.0

Deliver = Callable[[JobUpdate], Awaitable[None]]


def encode(update: JobUpdate) -> str:
    return json.dumps({"userId": update.user_id, "job": update.payload})


def decode(message: Any) -> JobUpdate | None:
    """The update a channel message carries, or None for anything else."""
    try:
        data = json.loads(message)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, job = data.get("userId"), data.get("job")
    if not isinstance(user_id, str) or not isinstance(job, dict):
        return None
    if not isinstance(job.get("jobId"), str):
        return None
    return JobUpdate(user_id, cast(JobView, job))


class UpdateChannel:
    def __init__(self, redis_url: str | None, name: str, deliver: Deliver) -> None:
        """``deliver(update)`` hands an update to this instance's clients; it must not
        raise."""
        self.name = name
        self._redis_url = redis_url or None
        self._deliver = deliver
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """With Redis: subscribe before returning, so a client served after start-up cannot
        miss an update published elsewhere."""
        if self._redis_url is None or self._listener is not None:
            return
        self._pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.name)
        self._listener = asyncio.create_task(self._listen(self._pubsub), name="job-updates")

    async def publish(self, update: JobUpdate) -> None:
        """Raises when Redis cannot take the update (the caller logs it)."""
        if self._redis_url is None:
            await self._deliver(update)
            return
        await self._client().publish(self.name, encode(update))

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            assert self._redis_url is not None
            self._redis = aioredis.Redis.from_url(self._redis_url, **REDIS_OPTIONS)
        return self._redis

    async def _listen(self, pubsub: Any) -> None:
        """Read the channel for the life of the app; resubscribe after Redis goes away."""
        retry = _FIRST_RETRY_SECONDS
        while True:
            try:
                async for message in pubsub.listen():
                    retry = _FIRST_RETRY_SECONDS
                    if message.get("type") != "message":
                        continue
                    update = decode(message["data"])
                    if update is None:
                        log.warning("ignoring a malformed message on %s", self.name)
                        continue
                    await self._deliver(update)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job update channel %s failed; resubscribing", self.name)
            # Back off before resubscribing so a Redis outage is not a busy loop.
            await asyncio.sleep(retry)
            retry = min(retry * 2, _MAX_RETRY_SECONDS)
            with contextlib.suppress(Exception):
                await pubsub.subscribe(self.name)

    async def close(self) -> None:
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
