"""``create_app``: the one place the service is assembled from its parts.

Everything stateful (queue, clock, events publisher, providers, storage, database) can be
passed in, so tests run the real app on a virtual clock with an in-process queue; whatever is
not passed is built from the settings. What the app builds it also opens and closes, once,
each in one ``cleanup_ctx`` generator (start-up in order, clean-up in reverse); what is passed
in stays the caller's to close.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from app import idempotency
from app.api import api_routes
from app.api_errors import cors_middleware, json_errors
from app.auth import InternalAuthenticator, UserAuthenticator
from app.db import Database, open_database
from app.events import JobEvents
from app.jobs.provider_routes import provider_routes
from app.jobs.reconciler import Reconciler
from app.jobs.store import JobStore
from app.jobs.types import JOB_TYPES, queue_configs
from app.lifecycle import DRAIN, Drain
from app.metrics import AppMetrics, MeteredJobEvents, add_metrics_route, metered_providers
from app.migrate import migrate
from app.openapi import openapi_routes
from app.outbound import OutboundHttp
from app.playground import add_playground
from app.providers.base import Providers
from app.providers.registry import build_providers, remote_concurrency
from app.realtime import SSE_ROUTE, LiveUpdates, SocketHandlers, sse_handler
from app.realtime.socket_handlers import SocketLimits
from app.services import SERVICES, Services
from app.settings import Settings
from app.storage import Storage, media_routes, open_storage
from app.webhooks.delivery import queue_config as webhook_queue_config
from app.webhooks.publisher import WebhookPublisher
from app.webhooks.routes import webhook_routes
from daygen_queue import Clock, SystemClock, TaskQueue, open_task_queue

log = logging.getLogger("app")

RECONCILER = web.AppKey("reconciler", Reconciler)
OUTBOUND_HTTP = web.AppKey("outbound_http", OutboundHttp)
METRICS = web.AppKey("metrics", AppMetrics)
LIVE_UPDATES = web.AppKey("live_updates", LiveUpdates)
EMULATOR_CONSOLE_PATH = "/_emulator/"

Lifetime = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings | None = None,
    *,
    task_queue: TaskQueue | None = None,
    clock: Clock | None = None,
    events: JobEvents | None = None,
    providers: Providers | None = None,
    storage: Storage | None = None,
    database: Database | None = None,
) -> web.Application:
    """The service. ``events=None`` (the default) gives it its live updates: a ``LiveUpdates``
    publisher serving Socket.IO at ``/socket.io/`` and SSE at ``/api/jobs/{jobId}/events``.
    Any other publisher (``RecordingJobEvents`` in tests) receives every update instead, and
    the app then serves no live updates."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    drain = Drain(retry_after_seconds=settings.shutdown_retry_after_seconds)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[drain.middleware, cors_middleware(settings.cors_allowed_origins), json_errors],
    )
    app[DRAIN] = drain
    if database is None:
        database = open_database(settings.database_url, echo=settings.database_echo)
        app.cleanup_ctx.append(_database(database, owned=True))
    else:
        app.cleanup_ctx.append(_database(database, owned=False))
    if task_queue is None:
        task_queue = open_task_queue(settings.task_queue_url, clock=clock)
        app.cleanup_ctx.append(_queues(task_queue, settings, owned=True))
    else:
        app.cleanup_ctx.append(_queues(task_queue, settings, owned=False))
    outbound = OutboundHttp()
    app[OUTBOUND_HTTP] = outbound
    if storage is None:
        storage = open_storage(settings, outbound, aliases=_aliases(settings))
        app.cleanup_ctx.append(_outbound(outbound, storage))
    else:
        app.cleanup_ctx.append(_outbound(outbound, None))
    store = JobStore(database, clock, starting_credits=settings.starting_credits)
    users = UserAuthenticator(settings)
    metrics = AppMetrics()
    app[METRICS] = metrics
    if events is None:
        live = LiveUpdates(settings)
        app[LIVE_UPDATES] = live
        limits = SocketLimits(
            auth_timeout=settings.socketio_auth_timeout_seconds,
            max_connections=settings.socketio_max_connections,
            max_per_user=settings.socketio_max_connections_per_user,
        )
        handlers = SocketHandlers(
            live.sio, store=store, users=users, storage=storage, limits=limits
        )
        _serve_live_updates(app, live, handlers)
        app.router.add_get(
            SSE_ROUTE, sse_handler(live.streams, store, settings.sse_heartbeat_seconds)
        )
        metrics.watch_connections("socketio", handlers.connected_count)
        metrics.watch_connections("sse", live.streams.open_count)
        events = live
    events = WebhookPublisher(events, store=store, queue=task_queue, settings=settings, clock=clock)
    events = MeteredJobEvents(events, metrics, store)
    app[SERVICES] = Services(
        settings=settings,
        clock=clock,
        store=store,
        queue=task_queue,
        events=events,
        providers=metered_providers(
            providers or build_providers(settings, outbound=outbound, clock=clock), metrics, clock
        ),
        storage=storage,
        users=users,
        internal=InternalAuthenticator(settings),
        metrics=metrics,
    )
    reconciler = Reconciler(store, task_queue, settings, clock, events)
    app[RECONCILER] = reconciler
    app.cleanup_ctx.append(_running(reconciler, settings, database))
    app.add_routes(api_routes())
    app.add_routes(provider_routes())
    app.add_routes(media_routes(storage))
    app.add_routes(webhook_routes(outbound))
    app[idempotency.KEYS] = idempotency.KeyBook(database)
    app.add_routes(openapi_routes())
    add_metrics_route(app, settings, metrics)
    console = _mount_emulator_console(app, task_queue, settings)
    add_playground(app, settings, console_path=EMULATOR_CONSOLE_PATH if console else None)
    return app


def _mount_emulator_console(app: web.Application, queue: TaskQueue, settings: Settings) -> bool:
    """Outside production, the in-process emulator's console (and the REST face it calls) at
    ``/_emulator/``. The one place the app reaches past ``daygen_queue`` into ``emulator``:
    the in-process transport's service is the emulator, and only a development page needs it.
    Google's Cloud Tasks or ``python -m emulator`` have their own consoles, so nothing is
    mounted for them (False)."""
    service = getattr(getattr(queue, "rpc", None), "service", None)
    if settings.is_production or service is None:
        return False
    from emulator.console import console_app

    app.router.add_get(EMULATOR_CONSOLE_PATH.rstrip("/"), _to_emulator_console)
    app.add_subapp(EMULATOR_CONSOLE_PATH, console_app(service))

    async def announce(app: web.Application) -> None:
        log.info("emulator console: %s%s", settings.base_url, EMULATOR_CONSOLE_PATH)

    app.on_startup.append(announce)
    return True


async def _to_emulator_console(request: web.Request) -> web.StreamResponse:
    """``/_emulator`` to ``/_emulator/``: the console's URLs are relative to the slash."""
    raise web.HTTPPermanentRedirect(EMULATOR_CONSOLE_PATH)


def _aliases(settings: Settings) -> list[str]:
    """Other base URLs that reach this service locally (``localhost`` vs ``127.0.0.1``)."""
    base = settings.base_url
    swaps = [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")]
    return [base.replace(a, b, 1) for a, b in swaps if f"//{a}" in base]


def _outbound(outbound: OutboundHttp, storage: Storage | None) -> Lifetime:
    """The shared outbound session (and the storage the app built on it) closed at the end."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if storage is not None:
                await storage.close()
            await outbound.close()

    return lifetime


def _database(database: Database, *, owned: bool) -> Lifetime:
    """The schema migrated at start-up; the database closed with the app if the app made it."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        try:
            await migrate(database)
            yield
        finally:
            if owned:
                await database.close()

    return lifetime


def _queues(queue: TaskQueue, settings: Settings, *, owned: bool) -> Lifetime:
    """The queues of every job type (one per priority) ensured at start-up; the queue client
    closed with the app if the app made it."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        try:
            providers = app[SERVICES].providers
            for job_type in JOB_TYPES.values():
                concurrency = settings.queue_max_concurrent_dispatches
                # A remote provider's own concurrency caps its type's dispatches in flight,
                # shared between the type's priority queues.
                cap = remote_concurrency(settings, providers, job_type.name)
                for config in queue_configs(
                    job_type,
                    max_dispatches_per_second=settings.queue_max_dispatches_per_second,
                    max_concurrent_dispatches=min(concurrency, cap or concurrency),
                    retry_policies=settings.retry_policies,
                ):
                    await queue.ensure_queue(config)
            await queue.ensure_queue(webhook_queue_config())
            yield
        finally:
            if owned:
                await queue.close()

    return lifetime


def _serve_live_updates(app: web.Application, live: LiveUpdates, handlers: SocketHandlers) -> None:
    """Socket.IO on ``app``, its update channel listening from start-up to clean-up."""
    live.sio.attach(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        try:
            await live.start()
            yield
        finally:
            await handlers.close()
            await live.close()

    async def end_connections(app: web.Application) -> None:
        await live.end_connections()

    app.cleanup_ctx.append(lifetime)
    # Before aiohttp waits for open requests (an SSE stream or a websocket never ends itself).
    app.on_shutdown.append(end_connections)


def _running(reconciler: Reconciler, settings: Settings, database: Database) -> Lifetime:
    """The reconciler, from the moment everything else is up until clean-up starts."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        reconciler.start()
        log.info(
            "daygen app ready: queue %s, database %s, base URL %s",
            settings.task_queue_url,
            database.display_url(),
            settings.base_url,
        )
        try:
            yield
        finally:
            await reconciler.stop()

    return lifetime
