"""``create_app``: the one place the service is assembled from its parts.

Everything stateful (queue, clock, events publisher, providers, storage) can be passed in, so
tests run the real app on a virtual clock with an in-process queue; whatever is not passed is
built from the settings. On start-up the schema is migrated, the four queues are ensured and
the reconciler starts; on clean-up everything the app created is closed.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from app.api import api_routes, cors_middleware, json_errors
from app.auth import InternalAuthenticator, UserAuthenticator
from app.context import SERVICES, Services
from app.db import Database, open_database
from app.events import JobEvents, NullJobEvents
from app.jobs.store import JobStore
from app.jobs.types import JOB_TYPES, queue_config
from app.migrate import migrate
from app.processor import handle_task
from app.providers.base import Providers
from app.providers.registry import build_providers
from app.reconciler import Reconciler
from app.settings import Settings
from app.storage import LocalStorage, Storage, media_routes
from daygen_queue import Clock, SystemClock, TaskQueue, open_task_queue

log = logging.getLogger("app")

DATABASE = web.AppKey("database", Database)
RECONCILER = web.AppKey("reconciler", Reconciler)
_OWNED: web.AppKey[list[Any]] = web.AppKey("owned")


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
    settings = settings or Settings()
    clock = clock or SystemClock()
    owned: list[Any] = []
    if database is None:
        database = open_database(settings.database_url, echo=settings.database_echo)
        owned.append(database)
    if task_queue is None:
        task_queue = open_task_queue(settings.task_queue_url, clock=clock)
        owned.append(task_queue)
    if storage is None:
        local = LocalStorage(settings.storage_dir, settings.base_url, aliases=_aliases(settings))
        storage = local
    if events is None:
        events = NullJobEvents()
    store = JobStore(database, clock, starting_credits=settings.starting_credits)
    services = Services(
        settings=settings,
        clock=clock,
        store=store,
        queue=task_queue,
        events=events,
        providers=providers or build_providers(settings),
        storage=storage,
        users=UserAuthenticator(settings),
        internal=InternalAuthenticator(settings),
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[cors_middleware(settings.cors_allowed_origins), json_errors],
    )
    app[SERVICES] = services
    app[DATABASE] = database
    app[RECONCILER] = Reconciler(store, task_queue, settings, clock, events)
    app[_OWNED] = owned
    app.add_routes(api_routes())
    app.router.add_post("/internal/tasks/{type}", handle_task)
    if isinstance(storage, LocalStorage):
        app.add_routes(media_routes(storage))
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


def _aliases(settings: Settings) -> list[str]:
    """Other base URLs that reach this service locally (``localhost`` vs ``127.0.0.1``)."""
    base = settings.base_url
    swaps = [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")]
    return [base.replace(a, b, 1) for a, b in swaps if f"//{a}" in base]


async def _start(app: web.Application) -> None:
    services = app[SERVICES]
    settings = services.settings
    await migrate(app[DATABASE])
    for job_type in JOB_TYPES.values():
        await services.queue.ensure_queue(
            queue_config(
                job_type,
                max_dispatches_per_second=settings.queue_max_dispatches_per_second,
                max_concurrent_dispatches=settings.queue_max_concurrent_dispatches,
            )
        )
    app[RECONCILER].start()
    log.info(
        "daygen app ready: queue %s, database %s, base URL %s",
        settings.task_queue_url,
        app[DATABASE].display_url(),
        settings.base_url,
    )


async def _stop(app: web.Application) -> None:
    await app[RECONCILER].stop()
    services = app[SERVICES]
    close = getattr(services.events, "close", None)
    if close is not None:
        await close()
    owned: list[Any] = app[_OWNED]
    for resource in owned[::-1]:
        await resource.close()
