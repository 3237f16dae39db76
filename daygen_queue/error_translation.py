"""Google's errors (``google.api_core.exceptions``) as ``daygen_queue`` errors, in one place.

Every transport under ``CloudTasksQueue`` raises api_core exceptions classed by gRPC status
(the in-process one builds them with ``from_grpc_status``), so this mapping serves them all,
the way httpx maps its backend's exceptions once, at the edge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final, Literal

from google.api_core import exceptions as google_errors
from google.rpc import error_details_pb2

from daygen_queue.errors import (
    BackendUnavailable,
    InvalidArgument,
    QueueAlreadyExists,
    QueueError,
    QueueNotFound,
    QueueRecentlyDeleted,
    TaskAlreadyExists,
    TaskNotFound,
)

Subject = Literal["queue", "task"]

# Cloud Tasks' message for a missing queue, also on task operations.
_QUEUE_MISSING_PREFIX: Final = "Queue does not exist"
_UNAVAILABLE: Final = (
    google_errors.ServiceUnavailable | google_errors.DeadlineExceeded | google_errors.GatewayTimeout
)


def _resource_type(error: google_errors.GoogleAPICallError) -> str | None:
    for detail in error.details or ():
        if isinstance(detail, error_details_pb2.ResourceInfo) and detail.resource_type:
            return str(detail.resource_type)
    return None


def translate_error(error: google_errors.GoogleAPICallError, subject: Subject) -> QueueError:
    """Google's error as the ``daygen_queue`` error of the same meaning. ``subject`` is what
    the operation is about: a queue operation, or one on a task (of some queue).

    A NOT_FOUND on a task operation may mean the queue or the task is missing: a ResourceInfo
    detail says which (the emulator attaches one); without it, Cloud Tasks' queue message
    tells.
    """
    message = error.message or str(error)
    if isinstance(error, google_errors.NotFound):
        kind = _resource_type(error)
        if kind is not None:
            is_task = kind.endswith("/Task")
        else:
            is_task = subject == "task" and not message.startswith(_QUEUE_MISSING_PREFIX)
        return TaskNotFound(message) if is_task else QueueNotFound(message)
    if isinstance(error, google_errors.AlreadyExists | google_errors.Conflict):
        return TaskAlreadyExists(message) if subject == "task" else QueueAlreadyExists(message)
    if isinstance(error, google_errors.FailedPrecondition):
        return QueueRecentlyDeleted(message)
    if isinstance(error, google_errors.InvalidArgument | google_errors.BadRequest):
        return InvalidArgument(message)
    if isinstance(error, _UNAVAILABLE):
        return BackendUnavailable(message)
    failure = QueueError(message)
    failure.code = getattr(error.grpc_status_code, "name", None) or "UNKNOWN"
    return failure


@contextlib.contextmanager
def translated(subject: Subject) -> Iterator[None]:
    """Raise the ``daygen_queue`` error for any Google error escaping the block; a retry
    policy that gave up is ``BackendUnavailable``."""
    try:
        yield
    except google_errors.RetryError as error:
        raise BackendUnavailable(str(error)) from None
    except google_errors.GoogleAPICallError as error:
        raise translate_error(error, subject) from None
