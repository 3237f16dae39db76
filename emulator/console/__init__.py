"""The emulator console: a page to see and steer every queue, on the emulator's HTTP port.

It shows queues with their configuration and live statistics, each queue's tasks (a task's
headers and body in the FULL view), and a live timeline of the engine's events; it pauses,
resumes and purges queues, edits their rate and retry settings (UpdateQueue with a field
mask), and runs or deletes tasks. It does all of that through the emulator's own REST API and
the event stream (``feed.py``), never through a side channel, so what it shows is what any
Cloud Tasks client would be told.

``add_routes`` serves it at ``/`` of an app that already has the REST face
(``python -m emulator``); ``console_app`` is a complete sub-application (REST face included)
for mounting under a prefix, as the jobs service does with its in-process emulator.
"""

from __future__ import annotations

from aiohttp import web

from emulator.console.feed import EventFeed, events_handler
from emulator.console.pages import add_page_routes, refuse_cross_site_writes
from emulator.service import CloudTasksService

EVENTS_PATH = "/console/events"
CONSOLE_FEED = web.AppKey("console_feed", EventFeed)


def add_routes(app: web.Application, service: CloudTasksService) -> None:
    """The page, its files, ``console/projects`` and ``console/events`` on ``app``, and the
    cross-site write guard on every route of it (the REST face included: the console is what
    makes that face reachable from a browser)."""
    feed = EventFeed(service.engine.events, service.engine.clock.now)
    app[CONSOLE_FEED] = feed
    app.middlewares.append(refuse_cross_site_writes)
    add_page_routes(app, service)
    app.router.add_get(EVENTS_PATH, events_handler(feed))
    app.on_shutdown.append(feed.close)


def console_app(service: CloudTasksService) -> web.Application:
    """The console with the REST face it calls, as one application to mount
    (``parent.add_subapp("/_emulator/", console_app(service))``)."""
    from emulator.rest import RestGateway

    app = web.Application()
    RestGateway(service, access_tokens=service.engine.access_tokens).add_routes(app)
    add_routes(app, service)
    return app


__all__ = ["CONSOLE_FEED", "EVENTS_PATH", "EventFeed", "add_routes", "console_app"]
