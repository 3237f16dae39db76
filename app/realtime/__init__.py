"""Live job updates: Socket.IO (``jobUpdate``) and server-sent events, one gateway.

``SocketIOJobEvents`` is the jobs service's ``JobEvents`` publisher. Build it, hand it to
``create_app(events=...)``, then ``attach`` it to the app that comes back::

    gateway = SocketIOJobEvents(RealtimeConfig.from_settings(settings))
    app = create_app(settings, events=gateway)
    gateway.attach(app)

``create_realtime_app`` does exactly that.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.realtime.config import RealtimeConfig
from app.realtime.gateway import SocketIOJobEvents
from app.realtime.rooms import job_room, user_room
from app.settings import Settings

__all__ = [
    "RealtimeConfig",
    "SocketIOJobEvents",
    "create_realtime_app",
    "job_room",
    "user_room",
]


def create_realtime_app(
    settings: Settings | None = None,
    *,
    config: RealtimeConfig | None = None,
    **create_app_options: Any,
) -> web.Application:
    """``create_app`` with the realtime gateway as its events publisher and attached to it."""
    from app.main import create_app  # imported here: app.main may import this package

    settings = settings or Settings()
    gateway = SocketIOJobEvents(config or RealtimeConfig.from_settings(settings))
    app = create_app(settings, events=gateway, **create_app_options)
    gateway.attach(app)
    return app
