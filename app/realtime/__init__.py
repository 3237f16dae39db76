"""Live job updates: Socket.IO (``jobUpdate``) and server-sent events.

``create_app`` builds it all: a ``LiveUpdates`` publisher (the service's ``JobEvents``), the
Socket.IO handlers (``SocketHandlers``, given the store and the user authenticator) and the SSE
route (``sse_handler``).
"""

from app.realtime.live_updates import LiveUpdates
from app.realtime.rooms import job_room, user_room
from app.realtime.socket_handlers import SocketHandlers
from app.realtime.sse import SSE_ROUTE, sse_handler

__all__ = ["SSE_ROUTE", "LiveUpdates", "SocketHandlers", "job_room", "sse_handler", "user_room"]
