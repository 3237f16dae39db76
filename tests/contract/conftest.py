"""The ``TaskQueue`` contract suite runs once per backend listed in ``BACKENDS``.

Each entry names a fixture ``<name>_task_queue`` (with dashes as underscores) that yields a
fresh ``TaskQueue`` on the real clock, delivering over real HTTP. A behaviour that differs
between backends is a bug in one of them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from daygen_queue import SystemClock, TaskQueue
from daygen_queue.backends.emulator import EmulatorBackend

BACKENDS = ["emulator"]


@pytest.fixture
async def emulator_task_queue() -> AsyncIterator[TaskQueue]:
    backend = EmulatorBackend(clock=SystemClock())
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture(params=BACKENDS)
def task_queue(request: pytest.FixtureRequest) -> TaskQueue:
    fixture_name = request.param.replace("-", "_") + "_task_queue"
    backend: TaskQueue = request.getfixturevalue(fixture_name)
    return backend


@pytest.fixture
def queue_name() -> str:
    """Unique per test: a shared server keeps deleted names reserved for days."""
    return f"q-{uuid.uuid4().hex[:12]}"
