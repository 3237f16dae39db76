"""``Outcome``: what a task delivery answers the queue, for job tasks and poll tasks alike.

The status is what Cloud Tasks acts on (2xx done, anything else retried with backoff, honouring
``Retry-After`` in ``headers``); the JSON body says why, for logs and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "ack"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def ack(result: str, **details: Any) -> Outcome:
    """A 200: the task is done with, for the reason ``result``."""
    return Outcome(200, {"result": result, **details})
