"""``CloudTasksBackend`` beyond the contract suite: how it is chosen, how it fails when the
service is down (over gRPC and REST), and how Google's errors map when no ResourceInfo says
which resource."""

from __future__ import annotations

import socket
import time

import pytest
from google.api_core import exceptions

from daygen_queue import open_task_queue
from daygen_queue.backends.cloud_tasks import CloudTasksBackend, GrpcRpc, RestRpc
from daygen_queue.error_translation import translate_error
from daygen_queue.errors import (
    BackendUnavailable,
    InvalidArgument,
    QueueAlreadyExists,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)
from tests.emulator_server.conftest import GrpcStack


def test_factory_points_the_backend_at_the_emulator_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:8123")

    backend = open_task_queue("cloudtasks://my-project/europe-west1")

    assert isinstance(backend, CloudTasksBackend)
    assert backend.emulator_host == "127.0.0.1:8123"
    assert backend.parent == "projects/my-project/locations/europe-west1"


def test_the_url_chooses_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:8124")

    rest = open_task_queue("cloudtasks://p/l?transport=rest")
    grpc = open_task_queue("cloudtasks://p/l", clock=None)  # the clock is the emulator's only

    assert isinstance(rest, CloudTasksBackend) and isinstance(rest.rpc, RestRpc)
    assert isinstance(grpc, CloudTasksBackend) and isinstance(grpc.rpc, GrpcRpc)
    with pytest.raises(ValueError, match=r"transport=grpc\|rest"):
        open_task_queue("cloudtasks://p/l?transprot=rest")
    with pytest.raises(ValueError, match="unknown transport"):
        open_task_queue("cloudtasks://p/l?transport=http2")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_a_server_that_is_down_is_backend_unavailable_without_hanging(
    transport: str,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    backend = CloudTasksBackend(
        project="p",
        location="l",
        emulator_host=f"127.0.0.1:{port}",
        transport=transport,  # type: ignore[arg-type]
    )
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable):
            await backend.get_queue("q")
    finally:
        await backend.close()
    assert time.monotonic() - started < 10


async def test_missing_queue_on_a_task_operation_is_queue_not_found(stack: GrpcStack) -> None:
    backend = CloudTasksBackend(
        project="test-project", location="local", emulator_host=stack.address
    )
    try:
        with pytest.raises(QueueNotFound):
            await backend.delete_task("no-queue", "t")
        with pytest.raises(QueueNotFound):
            await backend.run_task("no-queue", "t")
    finally:
        await backend.close()


@pytest.mark.parametrize(
    ("error", "subject", "expected"),
    [
        (exceptions.NotFound("Queue does not exist. If you just..."), "task", QueueNotFound),
        (exceptions.NotFound("Requested entity was not found."), "task", TaskNotFound),
        (exceptions.NotFound("Requested entity was not found."), "queue", QueueNotFound),
        (exceptions.AlreadyExists("Requested entity already exists"), "task", TaskAlreadyExists),
        (exceptions.Conflict("Queue already exists"), "queue", QueueAlreadyExists),
        (exceptions.FailedPrecondition("existed too recently"), "queue", QueueRecentlyDeleted),
        (exceptions.BadRequest("bad"), "task", InvalidArgument),
        (exceptions.ServiceUnavailable("down"), "queue", BackendUnavailable),
        (exceptions.DeadlineExceeded("slow"), "queue", BackendUnavailable),
    ],
)
def test_google_errors_without_resource_info(
    error: exceptions.GoogleAPICallError, subject: str, expected: type[Exception]
) -> None:
    translated = translate_error(error, subject)  # type: ignore[arg-type]
    assert type(translated) is expected
    assert translated.message == error.message
