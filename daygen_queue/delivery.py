"""The receiving side of a Cloud Tasks HTTP delivery: what the ``X-CloudTasks-*`` headers say.

Header names are case-insensitive; Cloud Tasks documents ``X-CloudTasks-QueueName`` etc.
They carry information, not identity: authenticate the request separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


class InvalidDelivery(ValueError):
    """The request does not carry the headers every Cloud Tasks delivery has."""


_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class TaskDelivery:
    queue_name: str
    task_name: str
    retry_count: int  # earlier dispatches of this task, 5xx and timeouts included
    execution_count: int  # earlier attempts that got a non-5xx response
    eta: datetime | None
    previous_response: int | None  # HTTP status of the previous attempt, on retries
    retry_reason: str | None  # present (and empty for HTTP targets) on retries

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1."""
        return self.retry_count + 1

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TaskDelivery:
        lowered = {name.lower(): value for name, value in headers.items()}

        def required(name: str) -> str:
            value = lowered.get(name.lower())
            if value is None:
                raise InvalidDelivery(f"missing header {name}")
            return value

        def integer(name: str, default: int | None = None) -> int:
            raw = lowered.get(name.lower())
            if raw is None:
                if default is None:
                    raise InvalidDelivery(f"missing header {name}")
                return default
            if raw.startswith("-") and raw[1:].isascii() and raw[1:].isdigit():
                raise InvalidDelivery(f"header {name} is negative")
            # ASCII digits only (int() also reads ' 3', '٣'); Cloud Tasks' counts are int32.
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > _INT32_MAX:
                raise InvalidDelivery(
                    f"header {name} is not an integer from 0 to {_INT32_MAX}: {raw[:40]!r}"
                )
            return int(raw)

        eta_raw = lowered.get("x-cloudtasks-tasketa")
        eta = None
        if eta_raw:
            try:
                eta = datetime.fromtimestamp(float(eta_raw), tz=UTC)
            except (ValueError, OverflowError):
                raise InvalidDelivery(
                    f"header X-CloudTasks-TaskETA is not a time: {eta_raw!r}"
                ) from None
        previous = lowered.get("x-cloudtasks-taskpreviousresponse")
        return cls(
            queue_name=required("X-CloudTasks-QueueName"),
            task_name=required("X-CloudTasks-TaskName"),
            retry_count=integer("X-CloudTasks-TaskRetryCount"),
            execution_count=integer("X-CloudTasks-TaskExecutionCount", default=0),
            eta=eta,
            previous_response=(
                int(previous)
                if previous and previous.isascii() and previous.isdigit() and len(previous) <= 3
                else None
            ),
            retry_reason=lowered.get("x-cloudtasks-taskretryreason"),
        )
