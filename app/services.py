"""``Services``: everything a request handler needs, built once per app by ``create_app``.

Stored on the aiohttp app under a typed ``web.AppKey`` (never reached for through globals), so
a test can build the app with a virtual clock, an in-process queue and fake providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from app.auth import InternalAuthenticator, UserAuthenticator
from app.events import JobEvents
from app.jobs.store import JobStore
from app.metrics import AppMetrics
from app.providers.base import Providers
from app.settings import Settings
from app.storage import Storage
from daygen_queue import Clock, TaskQueue


@dataclass
class Services:
    settings: Settings
    clock: Clock
    store: JobStore
    queue: TaskQueue
    events: JobEvents
    providers: Providers
    storage: Storage
    users: UserAuthenticator
    internal: InternalAuthenticator
    metrics: AppMetrics = field(default_factory=AppMetrics)


SERVICES = web.AppKey("services", Services)
