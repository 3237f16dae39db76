"""What the realtime gateway needs to know, read from the service's one ``Settings`` object.

The fields are looked up by name on ``Settings`` (``REDIS_URL``, ``SOCKETIO_CORS_ALLOWED_ORIGINS``,
``SOCKETIO_REDIS_CHANNEL``, ``SSE_HEARTBEAT_SECONDS``) with the defaults below when a field is
absent, so the gateway works with any version of the settings and tests can build a config
directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_CHANNEL = "daygen-socketio"

REDIS_OPTIONS: dict[str, Any] = {
    # An unreachable Redis must fail a publish quickly, never hang the job processor.
    "socket_connect_timeout": 5,
    # Long-lived subscriber connections: notice a dead one (NAT, failover) and reconnect.
    "health_check_interval": 30,
}


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    redis_url: str | None = None
    """With it, Socket.IO emits go through Redis (``AsyncRedisManager``) and SSE updates
    through a Redis pub/sub channel, so every instance reaches its own clients."""
    cors_allowed_origins: str | list[str] = "*"
    """Origins allowed to open a Socket.IO connection. ``*`` is safe with bearer tokens (no
    ambient cookies), and is what the seed's frontend on another port needs."""
    channel: str = DEFAULT_CHANNEL
    """Redis pub/sub channel prefix. Pub/sub ignores Redis database numbers, so deployments
    (and test runs) sharing a Redis must use different channels."""
    sse_heartbeat_seconds: float = 15.0
    """A comment line this often keeps proxies from closing an idle SSE stream."""
    publish_timeout_seconds: float = 5.0
    """Longest a publish may take (a slow Redis): the job processor waits for it."""

    @property
    def socketio_channel(self) -> str:
        return self.channel

    @property
    def sse_channel(self) -> str:
        return f"{self.channel}:sse"

    @classmethod
    def from_settings(cls, settings: Any) -> RealtimeConfig:
        origins = getattr(settings, "socketio_cors_allowed_origins", "*")
        return cls(
            redis_url=getattr(settings, "redis_url", None) or None,
            cors_allowed_origins=parse_origins(origins),
            channel=getattr(settings, "socketio_redis_channel", None) or DEFAULT_CHANNEL,
            sse_heartbeat_seconds=float(getattr(settings, "sse_heartbeat_seconds", 15.0)),
        )


def parse_origins(raw: str | list[str] | None) -> str | list[str]:
    """``*``, or a comma-separated list of origins (``https://a.example,https://b.example``)."""
    if raw is None:
        return "*"
    if isinstance(raw, list):
        return raw
    origins = [origin.strip() for origin in raw.split(",") if origin.strip()]
    if not origins or origins == ["*"]:
        return "*"
    return origins
