"""The fields every create body shares for when and in what order a job runs: ``priority``,
``runAt`` and ``dependsOn``, and the ``job:<jobId>`` source references.

``PlanningFields`` is a mixin of ``JobRequest``; what needs the clock or the database (the
30-day horizon, ownership of the parents) is checked later, by ``app.jobs.scheduling`` and
``app.jobs.dependencies``, still before anything is charged.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from app.jobs.priorities import DEFAULT_PRIORITY, Priority
from app.models import MAX_JOB_ID_LENGTH

JOB_REF_PREFIX: Final = "job:"
MAX_PARENTS: Final = 20
PLANNING_FIELDS: Final = frozenset({"priority", "run_at", "depends_on"})
"""Attribute names of the mixin: kept in their own columns, not in the job's ``params``."""

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def job_ref(value: str) -> str | None:
    """The job id a ``job:<jobId>`` source names, or None for any other string."""
    if value.startswith(JOB_REF_PREFIX):
        return value[len(JOB_REF_PREFIX) :]
    return None


_JOB_ID = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_JOB_ID_LENGTH}}}$")


def checked_job_ref(value: str) -> str | None:
    """Like ``job_ref``, but a ``job:`` string that names no possible job id is an error."""
    ref = job_ref(value)
    if ref is not None and not _JOB_ID.match(ref):
        raise ValueError("job:<jobId> must name a job id")
    return ref


def _rfc3339(value: object) -> object:
    """An RFC 3339 timestamp with its offset (``2026-12-04T09:00:00Z``), nothing else: no
    epoch numbers, no naive local times."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-12-04T09:00:00Z")
    if not _RFC3339.match(value):
        raise ValueError(
            "must be an RFC 3339 timestamp with a time zone, e.g. 2026-12-04T09:00:00Z"
        )
    fraction = re.search(r"\.(\d+)", value)
    if fraction is not None and len(fraction[1]) > 6:  # Python keeps microseconds
        value = value.replace(fraction[0], "." + fraction[1][:6])
    try:
        return datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError("is not a valid date and time") from None


JobId = Annotated[str, Field(min_length=1, max_length=MAX_JOB_ID_LENGTH)]


class PlanningFields(BaseModel):
    priority: Priority = DEFAULT_PRIORITY
    run_at: Annotated[datetime | None, BeforeValidator(_rfc3339)] = Field(None, alias="runAt")
    depends_on: list[JobId] = Field(default_factory=list, alias="dependsOn", max_length=MAX_PARENTS)

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_is_a_string(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError("must be one of 'high', 'normal', 'low'")
        return value

    @field_validator("depends_on")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a job more than once")
        return value

    @model_validator(mode="after")
    def _sources_are_parents(self) -> Self:
        """A ``job:<jobId>`` source makes that job a parent (listed or not in ``dependsOn``)."""
        for ref in self.job_refs():
            if ref not in self.depends_on:
                if len(self.depends_on) >= MAX_PARENTS:
                    raise ValueError(f"dependsOn: at most {MAX_PARENTS} parent jobs")
                self.depends_on.append(ref)
        return self

    def job_refs(self) -> list[str]:
        """The parent ids named by ``job:<jobId>`` sources (``imageUrl``, ``imageUrls``)."""
        refs: list[str] = []
        for value in _sources(self):
            ref = job_ref(value)
            if ref is not None and ref not in refs:
                refs.append(ref)
        return refs


def _sources(request: BaseModel) -> list[str]:
    values: list[str] = []
    single: Any = getattr(request, "image_url", None)
    if isinstance(single, str):
        values.append(single)
    several: Any = getattr(request, "image_urls", None)
    if isinstance(several, list):
        values.extend(item for item in several if isinstance(item, str))
    return values


class PlanningError(ValueError):
    """A create body that names a field the database or the clock refuses (a parent that is
    not the caller's, a ``runAt`` past the horizon): answered 422 naming ``field``, before
    anything is charged."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def parent_fields(request: PlanningFields) -> dict[str, str]:
    """Each parent id -> the body field that named it first (``dependsOn[1]``, ``imageUrl``,
    ``imageUrls[0]``), for the 422 that refuses it."""
    fields: dict[str, str] = {}
    image_url: Any = getattr(request, "image_url", None)
    if isinstance(image_url, str) and (ref := job_ref(image_url)) is not None:
        fields.setdefault(ref, "imageUrl")
    image_urls: Any = getattr(request, "image_urls", None)
    for index, value in enumerate(image_urls if isinstance(image_urls, list) else []):
        if isinstance(value, str) and (ref := job_ref(value)) is not None:
            fields.setdefault(ref, f"imageUrls[{index}]")
    for index, parent in enumerate(request.depends_on):
        fields.setdefault(parent, f"dependsOn[{index}]")
    return fields
