"""The route table the OpenAPI document is built from: one :class:`Operation` per endpoint.

Request bodies are the very pydantic models that validate requests (``JOB_TYPES``' request
classes), so a field added to a model appears in the document by itself; a new endpoint
appears by adding an :class:`Operation` here (or to :data:`OPERATIONS` from its own module).
Answers are described by the types that build them (``JobView``) or by the small models
below, written for this document because the handlers answer plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.types import JOB_TYPES
from app.jobs.views import JobView

__all__ = ["OPERATIONS", "Operation", "Parameter", "Response"]

Auth = Literal["bearer", "internal", "none"]


class FieldProblem(BaseModel):
    field: str = Field(
        description="The field as the client spelled it: `options.width`, `prompts[3]`."
    )
    message: str
    type: str = Field(description="The kind of problem (`missing`, `value_error`, `int_type`...).")


class ErrorBody(BaseModel):
    """Every error: a stable ``error`` code and a ``message`` for people; 422s add ``fields``."""

    model_config = ConfigDict(title="Error")
    error: str = Field(description="A stable code: `validation_error`, `unauthorized`...")
    message: str
    fields: list[FieldProblem] | None = None
    status: str | None = Field(None, description="On a 409 from cancel: the job's final status.")


class JobPage(BaseModel):
    jobs: list[JobView]
    nextCursor: str | None = Field(
        description="The id of the last job of this page, to pass as `cursor`; null at the end."
    )


class Me(BaseModel):
    id: str
    credits: int


class Health(BaseModel):
    status: Literal["ok"]


class WebhookSecret(BaseModel):
    key: str = Field(
        description="`whsec_...`: verify deliveries with the standardwebhooks package."
    )


@dataclass(frozen=True, slots=True)
class Response:
    description: str
    model: Any = None  # a pydantic model or a type TypeAdapter can describe; None: no body
    headers: dict[str, str] = field(default_factory=dict)  # name -> description


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    where: Literal["query", "path", "header"]
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str  # OpenAPI form: /api/jobs/{jobId}
    summary: str
    responses: dict[int, Response]
    tag: str = "jobs"
    description: str = ""
    body: Any = None
    parameters: tuple[Parameter, ...] = ()
    auth: Auth = "bearer"


_ERROR = ErrorBody
_AUTH = {401: Response("Missing, malformed, wrongly signed or expired token.", _ERROR)}
_JOB_ID = Parameter("jobId", "path", "A job id, as a create answered it.", {"type": "string"}, True)
_IDEMPOTENCY = Parameter(
    "Idempotency-Key",
    "header",
    "Up to 255 characters, remembered 24 h per user: the same key with the same body answers "
    "the same job again (`Idempotent-Replayed: true`) and charges nothing.",
    {"type": "string", "minLength": 1, "maxLength": 255},
)
_CREATE_ANSWERS: dict[int, Response] = {
    202: Response(
        "The job, PENDING (or, on a replay, as it is now).",
        JobView,
        {"Idempotent-Replayed": "`true` when an Idempotency-Key replay answered."},
    ),
    400: Response("The body is not JSON, or does not decode (Content-Encoding).", _ERROR),
    **_AUTH,
    402: Response("Not enough credits; nothing was charged.", _ERROR),
    409: Response("A request with this Idempotency-Key is still in flight.", _ERROR),
    413: Response("The body is larger than MAX_BODY_BYTES.", _ERROR),
    422: Response("A field is invalid (each one named in `fields`); nothing was charged.", _ERROR),
}


def _create(name: str) -> Operation:
    job_type = JOB_TYPES[name]
    return Operation(
        "post",
        f"/api/jobs/{name}",
        f"Create a {name.replace('-', ' ')} job",
        _CREATE_ANSWERS,
        description=(job_type.request.__doc__ or "").strip(),
        body=job_type.request,
        parameters=(_IDEMPOTENCY,),
    )


OPERATIONS: list[Operation] = [
    *(_create(name) for name in JOB_TYPES),
    Operation(
        "get",
        "/api/jobs",
        "List your jobs, newest first",
        {
            200: Response("A page of jobs.", JobPage),
            **_AUTH,
            422: Response("`limit` or `cursor` is invalid.", _ERROR),
        },
        parameters=(
            Parameter(
                "limit",
                "query",
                "Jobs per page (ASCII digits).",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            ),
            Parameter(
                "cursor",
                "query",
                "The id of the last job of the previous page (its `nextCursor`); absent or "
                "empty: the first page. Another user's or an unknown id answers 422.",
                {"type": "string"},
            ),
        ),
    ),
    Operation(
        "get",
        "/api/jobs/{jobId}",
        "A job",
        {
            200: Response("The job.", JobView),
            **_AUTH,
            404: Response("No such job of yours.", _ERROR),
        },
        parameters=(_JOB_ID,),
    ),
    Operation(
        "post",
        "/api/jobs/{jobId}/cancel",
        "Cancel a job",
        {
            200: Response("The job, CANCELLED; credits for work not done are refunded.", JobView),
            **_AUTH,
            404: Response("No such job of yours.", _ERROR),
            409: Response("The job already finished; `status` names how.", _ERROR),
        },
        parameters=(_JOB_ID,),
    ),
    Operation(
        "get", "/api/me", "You and your credits", {200: Response("The caller.", Me), **_AUTH}
    ),
    Operation(
        "get",
        "/api/webhooks/secret",
        "Your webhook signing secret",
        {200: Response("The current secret.", WebhookSecret), **_AUTH},
        tag="webhooks",
    ),
    Operation(
        "post",
        "/api/webhooks/secret/rotate",
        "Rotate your webhook signing secret",
        {
            200: Response("The new secret (the old one keeps signing for 24 h).", WebhookSecret),
            **_AUTH,
        },
        tag="webhooks",
    ),
    Operation(
        "get", "/healthz", "Liveness", {200: Response("Up.", Health)}, tag="service", auth="none"
    ),
]
