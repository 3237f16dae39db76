"""One error type per failure, all under ``QueueError``. Backends translate their own errors
(the emulator's, gRPC's) into these, keeping Cloud Tasks' status code and message."""

from __future__ import annotations


class QueueError(Exception):
    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueNotFound(QueueError):
    code = "NOT_FOUND"


class TaskNotFound(QueueError):
    code = "NOT_FOUND"


class QueueAlreadyExists(QueueError):
    code = "ALREADY_EXISTS"


class QueueRecentlyDeleted(QueueError):
    """A queue name stays reserved for a while after DeleteQueue (FAILED_PRECONDITION)."""

    code = "FAILED_PRECONDITION"


class TaskAlreadyExists(QueueError):
    """The task name is taken by a live task or one that finished or was deleted recently."""

    code = "ALREADY_EXISTS"


class InvalidArgument(QueueError):
    code = "INVALID_ARGUMENT"


class BackendUnavailable(QueueError):
    """The queue service could not be reached (gRPC UNAVAILABLE / DEADLINE_EXCEEDED)."""

    code = "UNAVAILABLE"
