"""``open_task_queue``: the one place that picks a backend (SAQ's ``from_url`` idea), importing
it lazily so the app never names a backend.

URLs:
- ``emulator:`` - the in-process emulator (the default);
- ``cloudtasks://PROJECT/LOCATION`` - Google Cloud Tasks; with ``CLOUD_TASKS_EMULATOR_HOST``
  set (``host:port``) the same backend talks to ``python -m emulator`` instead, over an
  insecure channel with anonymous credentials (the ``*_EMULATOR_HOST`` convention).
"""

from __future__ import annotations

import os
from typing import Any, Protocol
from urllib.parse import urlsplit

from daygen_queue.interface import TaskQueue

EMULATOR_HOST_VARIABLE = "CLOUD_TASKS_EMULATOR_HOST"


class QueueSettings(Protocol):
    """Anything that can name its queue backend as a URL (the app's settings can)."""

    @property
    def task_queue_url(self) -> str: ...


def open_task_queue(
    settings_or_url: str | QueueSettings = "emulator:", **options: Any
) -> TaskQueue:
    """A ``TaskQueue`` for a URL or a settings object. ``options`` go to the backend's
    constructor (``clock=``, ``dispatcher=`` for the emulator; ``emulator_host=`` ...)."""
    url = settings_or_url if isinstance(settings_or_url, str) else settings_or_url.task_queue_url
    parts = urlsplit(url)
    if parts.scheme == "emulator":
        from daygen_queue.backends.emulator import EmulatorBackend

        return EmulatorBackend(**options)
    if parts.scheme == "cloudtasks":
        project, location = parts.netloc, parts.path.strip("/")
        if not project or not location or "/" in location:
            raise ValueError(f"expected cloudtasks://PROJECT/LOCATION, got {url!r}")
        from daygen_queue.backends.cloud_tasks import CloudTasksBackend

        options.pop("clock", None)  # Google's service keeps its own time
        options.setdefault("emulator_host", os.environ.get(EMULATOR_HOST_VARIABLE) or None)
        return CloudTasksBackend(project=project, location=location, **options)
    raise ValueError(f"unknown task queue URL {url!r}: use 'emulator:' or 'cloudtasks://P/L'")
