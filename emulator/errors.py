"""Errors the emulator answers with: a gRPC status code name and Cloud Tasks' own message.

The messages are the ones real Cloud Tasks answers with, word for word, so that a client that
matches on them behaves the same against the emulator as against Google.
"""

from __future__ import annotations

from typing import Final, Literal

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

Resource = Literal["queue", "task", "location", "other"]

QUEUE_MISSING = (
    "Queue does not exist. If you just created the queue, wait at least a minute for the queue "
    "to initialize."
)
ENTITY_MISSING = "Requested entity was not found."
TASK_TOMBSTONED = (
    "The task no longer exists, though a task with this name existed recently. The task either "
    "successfully completed or was deleted."
)
QUEUE_EXISTS = "Queue already exists"
QUEUE_TOMBSTONED = (
    "The queue cannot be created because a queue with this name existed too recently."
)
TASK_EXISTS = "Requested entity already exists"
QUEUE_NAME_FORMAT = (
    'Queue name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/'
    '<QUEUE_ID>".'
)


class EmulatorError(Exception):
    """A request the emulator refuses. ``code`` is the gRPC status name (``NOT_FOUND``...)."""

    code: str = "UNKNOWN"

    def __init__(self, message: str, *, resource: Resource = "other") -> None:
        super().__init__(message)
        self.message = message
        self.resource: Resource = resource


class NotFound(EmulatorError):
    code = "NOT_FOUND"


class AlreadyExists(EmulatorError):
    code = "ALREADY_EXISTS"


class InvalidArgument(EmulatorError):
    code = "INVALID_ARGUMENT"


class FailedPrecondition(EmulatorError):
    code = "FAILED_PRECONDITION"


def task_id_invalid(task_id: str) -> InvalidArgument:
    return InvalidArgument(
        f'Task ID "{task_id}" can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens (-), '
        "or underscores (_). Task ID must between 1 and 500 characters.",
        resource="task",
    )


class Unimplemented(EmulatorError):
    """A method the emulator does not serve (the message names it)."""

    code = "UNIMPLEMENTED"


class Aborted(EmulatorError):
    """A concurrent change won (SetIamPolicy with a stale etag)."""

    code = "ABORTED"


RESOURCE_TYPES: Final = {
    "queue": "cloudtasks.googleapis.com/Queue",
    "task": "cloudtasks.googleapis.com/Task",
    "location": "locations.googleapis.com/Location",
}


def rpc_status_of(error: EmulatorError) -> status_pb2.Status:
    """The google.rpc.Status for an engine error, with the Help detail Cloud Tasks attaches to
    a malformed queue name, and a ResourceInfo naming the kind of resource the
    error is about (a missing queue and a missing task can carry the same message)."""
    status = status_pb2.Status(code=code_pb2.Code.Value(error.code), message=error.message)
    resource_type = RESOURCE_TYPES.get(error.resource)
    if resource_type is not None:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ResourceInfo(resource_type=resource_type))
        status.details.append(detail)
    if error.message == QUEUE_NAME_FORMAT:
        help_detail = error_details_pb2.Help(
            links=[
                error_details_pb2.Help.Link(
                    description="Definition of queue name",
                    url="https://cloud.google.com/tasks/docs/reference/rest/v2/"
                    "projects.locations.queues#Queue.FIELDS.name",
                )
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(help_detail)
        status.details.append(detail)
    return status
