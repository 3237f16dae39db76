"""``webhookUrl`` and ``webhookEvents``, on every create body (a mixin of ``JobRequest``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator

from app.providers.urls import InvalidURL, parse_http_url

WebhookEvent = Literal[
    "job.processing", "job.progress", "job.completed", "job.failed", "job.cancelled"
]
DEFAULT_EVENTS: tuple[WebhookEvent, ...] = ("job.completed", "job.failed", "job.cancelled")


def _webhook_url(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_http_url(value)
        except InvalidURL as error:
            raise ValueError(str(error)) from None
    return value


class WebhookFields(BaseModel):
    """Where to call back (``webhookUrl``: its syntax checked here, its address against the
    SSRF rules when the job is created and at each delivery) and on which events
    (``webhookEvents``; default completed, failed and cancelled)."""

    webhook_url: Annotated[str | None, AfterValidator(_webhook_url)] = Field(
        None, alias="webhookUrl"
    )
    webhook_events: list[WebhookEvent] | None = Field(
        None, alias="webhookEvents", min_length=1, max_length=5
    )

    @field_validator("webhook_events")
    @classmethod
    def _events(
        cls, value: list[WebhookEvent] | None, info: ValidationInfo
    ) -> list[WebhookEvent] | None:
        if value is None:
            return value
        if len(set(value)) != len(value):
            raise ValueError("lists an event twice")
        if info.data.get("webhook_url") is None:
            raise ValueError("needs a webhookUrl")
        return value

    def subscribed(self) -> tuple[WebhookEvent, ...]:
        return tuple(self.webhook_events) if self.webhook_events else DEFAULT_EVENTS
