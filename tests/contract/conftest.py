"""The ``TaskQueue`` contract suite runs once per transport listed in ``BACKENDS``.

Each entry names a fixture ``<name>_task_queue`` (with dashes as underscores) that yields a
fresh ``TaskQueue`` on the real clock, delivering over real HTTP. A behaviour that differs
between backends is a bug in one of them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from daygen_queue import SystemClock, TaskQueue
from daygen_queue.backends.cloud_tasks import CloudTasksBackend
from daygen_queue.backends.emulator import EmulatorBackend
from tests.emulator_server.process import EmulatorProcess

BACKENDS = ["emulator", "cloud-tasks-grpc", "cloud-tasks-rest"]


@pytest.fixture
async def emulator_task_queue() -> AsyncIterator[TaskQueue]:
    backend = EmulatorBackend(clock=SystemClock())
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture
async def cloud_tasks_grpc_task_queue(
    emulator_server: EmulatorProcess,
) -> AsyncIterator[TaskQueue]:
    """``CloudTasksBackend`` -> the official async client -> gRPC -> ``python -m emulator``."""
    backend = CloudTasksBackend(
        project="contract-project",
        location="local",
        emulator_host=emulator_server.grpc_address,
    )
    yield backend
    await backend.close()


@pytest.fixture
async def cloud_tasks_rest_task_queue(
    emulator_server: EmulatorProcess,
) -> AsyncIterator[TaskQueue]:
    """``CloudTasksBackend`` -> the official client's REST transport -> ``python -m emulator``'s
    HTTP port."""
    backend = CloudTasksBackend(
        project="contract-project",
        location="local",
        emulator_host=emulator_server.http_address,
        transport="rest",
    )
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
