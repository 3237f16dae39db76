"""Tasks and queues as the service reports them, mirroring Cloud Tasks' resource model."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daygen_queue.config import QueueConfig, RetryConfig

HttpMethod = Literal["POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
TASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,500}$"


class QueueState(enum.StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class OidcToken(BaseModel):
    """Ask the queue to send ``Authorization: Bearer <OIDC token>`` for this service account;
    the audience defaults to the task URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_account_email: str = Field(min_length=3)
    audience: str = ""


class HttpRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(max_length=2083)
    http_method: HttpMethod = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""
    oidc_token: OidcToken | None = None

    @field_validator("url")
    @classmethod
    def _http_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with 'http://' or 'https://'")
        return value

    @model_validator(mode="after")
    def _body_only_with_payload_methods(self) -> Self:
        if self.body and self.http_method not in ("POST", "PUT", "PATCH"):
            raise ValueError("a body is only allowed with POST, PUT or PATCH")
        return self


class NewTask(BaseModel):
    """What ``create_task`` takes. A ``name`` turns on dedup: the same name is refused
    (``TaskAlreadyExists``) while the task lives and for a while after it finished.
    ``retry_config``, when set, replaces the queue's retry policy for this task (stop rule
    and backoff; Cloud Tasks' ``Task.retry_config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    http_request: HttpRequest
    name: str | None = Field(None, pattern=TASK_ID_PATTERN)
    schedule_time: datetime | None = None
    dispatch_deadline: timedelta | None = None
    retry_config: RetryConfig | None = None

    @field_validator("schedule_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must be timezone-aware")
        return value

    @field_validator("dispatch_deadline")
    @classmethod
    def _deadline_range(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(seconds=15) <= value <= timedelta(minutes=30):
            raise ValueError("must be between 15 seconds and 30 minutes")
        return value


class Attempt(BaseModel):
    """One dispatch. ``response_code`` is the google.rpc code of its outcome (0 = OK)."""

    model_config = ConfigDict(frozen=True)

    schedule_time: datetime | None = None
    dispatch_time: datetime | None = None
    response_time: datetime | None = None
    response_code: int | None = None
    response_message: str = ""


class Task(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    queue: str
    http_request: HttpRequest
    schedule_time: datetime
    create_time: datetime
    dispatch_deadline: timedelta
    dispatch_count: int = 0
    response_count: int = 0
    first_attempt: Attempt | None = None
    last_attempt: Attempt | None = None
    retry_config: RetryConfig | None = None  # the task's own policy, when it has one


class QueueStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    tasks_count: int = 0
    oldest_estimated_arrival_time: datetime | None = None
    executed_last_minute_count: int = 0
    concurrent_dispatches_count: int = 0
    effective_execution_rate: float = 0.0


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)

    config: QueueConfig
    state: QueueState = QueueState.RUNNING
    purge_time: datetime | None = None
    stats: QueueStats | None = None

    @property
    def name(self) -> str:
        return self.config.name
