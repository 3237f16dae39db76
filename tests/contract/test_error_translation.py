"""One error translation for every transport: the in-process transport's refusals, REST's
JSON errors and gRPC's all reach ``translate_error`` as the same api_core exceptions."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.rpc import error_details_pb2

import emulator as emu
from daygen_queue import (
    BackendUnavailable,
    HttpRequest,
    InvalidArgument,
    NewTask,
    QueueAlreadyExists,
    QueueError,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)
from daygen_queue.backends.cloud_tasks import grpc_coded
from daygen_queue.backends.emulator import api_error
from daygen_queue.client import CloudTasksQueue
from daygen_queue.error_translation import translate_error
from emulator.errors import ENTITY_MISSING, QUEUE_MISSING

TASK_RESOURCE = "cloudtasks.googleapis.com/Task"


@pytest.mark.parametrize(
    ("refusal", "subject", "expected"),
    [
        # The same message, told apart by the ResourceInfo detail alone.
        (emu.NotFound(ENTITY_MISSING, resource="task"), "task", TaskNotFound),
        (emu.NotFound(ENTITY_MISSING, resource="queue"), "task", QueueNotFound),
        (emu.NotFound(QUEUE_MISSING, resource="queue"), "queue", QueueNotFound),
        (emu.AlreadyExists("Requested entity already exists"), "task", TaskAlreadyExists),
        (emu.AlreadyExists("Queue already exists"), "queue", QueueAlreadyExists),
        (emu.FailedPrecondition("existed too recently"), "queue", QueueRecentlyDeleted),
        (emu.InvalidArgument("bad"), "task", InvalidArgument),
    ],
)
def test_in_process_refusals_translate_like_grpc_errors(
    refusal: emu.EmulatorError, subject: str, expected: type[Exception]
) -> None:
    error = api_error(refusal)
    translated = translate_error(error, subject)  # type: ignore[arg-type]

    assert error.grpc_status_code is not None
    assert error.grpc_status_code.name == refusal.code
    assert type(translated) is expected
    assert translated.message == refusal.message


def test_in_process_errors_carry_the_resource_info_unpacked() -> None:
    error = api_error(emu.NotFound(ENTITY_MISSING, resource="task"))

    assert isinstance(error, exceptions.NotFound)
    assert [type(detail) for detail in error.details] == [error_details_pb2.ResourceInfo]
    assert error.details[0].resource_type == TASK_RESOURCE


def rest_error(status: int, body: dict[str, Any]) -> exceptions.GoogleAPICallError:
    """What api_core raises for a REST error answer (it classes it by HTTP status)."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.request = requests.Request("GET", "http://127.0.0.1:1/v2/x").prepare()
    return exceptions.from_http_response(response)


def test_rest_errors_are_rebuilt_from_the_grpc_status_in_their_body() -> None:
    """HTTP 400 is both INVALID_ARGUMENT and FAILED_PRECONDITION: the body says which."""
    error = rest_error(
        400,
        {
            "error": {
                "code": 400,
                "message": "existed too recently",
                "status": "FAILED_PRECONDITION",
            }
        },
    )

    assert isinstance(error, exceptions.BadRequest)  # api_core's reading alone
    rebuilt = grpc_coded(error)
    assert isinstance(rebuilt, exceptions.FailedPrecondition)
    assert rebuilt.message == "existed too recently"
    assert type(translate_error(rebuilt, "queue")) is QueueRecentlyDeleted


def test_rest_error_details_are_unpacked_like_grpc_ones() -> None:
    detail = {"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resourceType": TASK_RESOURCE}
    error = rest_error(
        404,
        {
            "error": {
                "code": 404,
                "message": ENTITY_MISSING,
                "status": "NOT_FOUND",
                "details": [detail, {"@type": "type.googleapis.com/no.Such"}],
            }
        },
    )

    rebuilt = grpc_coded(error)

    assert isinstance(rebuilt, exceptions.NotFound)
    assert isinstance(rebuilt.details[0], error_details_pb2.ResourceInfo)
    assert rebuilt.details[0].resource_type == TASK_RESOURCE
    assert type(translate_error(rebuilt, "task")) is TaskNotFound


def test_a_rest_error_without_google_s_body_is_left_as_api_core_read_it() -> None:
    error = rest_error(502, {"unexpected": True})

    assert grpc_coded(error) is error


class FailingRpc:
    """A transport whose CreateTask and GetTask fail with a given exception."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def create_task(self, request: Any) -> Any:
        raise self.error

    async def get_task(self, request: Any) -> Any:
        raise self.error

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "error",
    [
        exceptions.RetryError("Timeout of 600.0s exceeded", cause=None),
        exceptions.ServiceUnavailable("connection refused"),
        exceptions.DeadlineExceeded("slow"),
    ],
)
async def test_an_unreachable_service_is_backend_unavailable(error: Exception) -> None:
    client = CloudTasksQueue(FailingRpc(error), project="p", location="l")  # type: ignore[arg-type]
    task = NewTask(http_request=HttpRequest(url="http://127.0.0.1/x"))

    with pytest.raises(BackendUnavailable):
        await client.create_task("q", task)
    with pytest.raises(BackendUnavailable):
        await client.get_task("q", "t")


async def test_an_unmapped_status_keeps_its_code() -> None:
    client = CloudTasksQueue(
        FailingRpc(exceptions.PermissionDenied("no")),  # type: ignore[arg-type]
        project="p",
        location="l",
    )

    with pytest.raises(QueueError) as caught:
        await client.get_task("q", "t")

    assert type(caught.value) is QueueError
    assert caught.value.code == "PERMISSION_DENIED"
