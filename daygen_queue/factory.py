"""``open_task_queue``: the one place that picks a backend (SAQ's ``from_url`` idea), importing
it lazily so the app never names a backend.

URLs:
- ``emulator:`` - the in-process emulator (the default), keeping nothing;
- ``emulator:?db=PATH`` - the same, journaling its queues and tasks to the SQLite file
  ``PATH`` (the store ``python -m emulator --db`` uses), so a restart redelivers every task;
- ``cloudtasks://PROJECT/LOCATION`` - Google Cloud Tasks over gRPC; with
  ``CLOUD_TASKS_EMULATOR_HOST`` set (``host:port``) the same backend talks to
  ``python -m emulator`` instead, over an insecure channel with anonymous credentials (the
  ``*_EMULATOR_HOST`` convention);
- ``cloudtasks://PROJECT/LOCATION?transport=rest`` - the same over REST (then an emulator host
  is the emulator's HTTP address).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daygen_queue.clock import Clock
from daygen_queue.interface import TaskQueue

EMULATOR_HOST_VARIABLE = "CLOUD_TASKS_EMULATOR_HOST"


def open_task_queue(
    url: str = "emulator:", *, clock: Clock | None = None, **options: Any
) -> TaskQueue:
    """A ``TaskQueue`` for ``url``. ``clock`` is the in-process emulator's (every other
    backend runs on the service's clock and ignores it); ``options`` go to the backend's
    constructor (``dispatcher=`` for the emulator; ``emulator_host=``, ``credentials=`` ...
    for Cloud Tasks)."""
    parts = urlsplit(url)
    if parts.scheme == "emulator":
        from daygen_queue.backends.emulator import EmulatorBackend

        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
        if set(query) - {"db"} or len(query.get("db", ())) > 1:
            raise ValueError(f"{url!r}: the only query parameter is db=PATH")
        if "db" in query:
            options.setdefault("db", query["db"][0])
        return EmulatorBackend(clock=clock, **options)
    if parts.scheme == "cloudtasks":
        project, location = parts.netloc, parts.path.strip("/")
        if not project or not location or "/" in location:
            raise ValueError(f"expected cloudtasks://PROJECT/LOCATION, got {url!r}")
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
        if set(query) - {"transport"} or len(query.get("transport", ())) > 1:
            raise ValueError(f"{url!r}: the only query parameter is transport=grpc|rest")
        if "transport" in query:
            options.setdefault("transport", query["transport"][0])
        from daygen_queue.backends.cloud_tasks import CloudTasksBackend

        options.pop("clock", None)  # Google's service keeps its own time
        options.setdefault("emulator_host", os.environ.get(EMULATOR_HOST_VARIABLE) or None)
        return CloudTasksBackend(project=project, location=location, **options)
    raise ValueError(f"unknown task queue URL {url!r}: use 'emulator:' or 'cloudtasks://P/L'")
