"""Job priorities (``high`` | ``normal`` | ``low``) on a queue service that has none.

Cloud Tasks dispatches the tasks of one queue in no particular order, so a priority cannot be a
field of a task. Each job type gets one queue per priority instead, and the type's provider
budget (dispatches per second and concurrent dispatches) is split between them in fixed shares
that add up to the budget: the provider never sees more than it allows, and a ``high`` job
never waits behind a ``normal`` backlog, because the ``high`` queue has capacity of its own.

The trade-off is that a share is reserved, not lent: with nothing waiting in ``high``, the
``normal`` queue still dispatches at its own share only (Cloud Tasks queues do not borrow from
each other). ``normal`` keeps the type's historical queue name (``image-generation-queue``), so
clients of the seed and existing tasks are untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

Priority = Literal["high", "normal", "low"]
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
DEFAULT_PRIORITY: Final[Priority] = "normal"

SHARES: Final[dict[Priority, float]] = {"high": 0.25, "normal": 0.60, "low": 0.15}
"""Each priority's fraction of a job type's rate and concurrency budget (they add up to 1)."""


def queue_name(job_type: str, priority: str = DEFAULT_PRIORITY) -> str:
    """The queue that carries ``job_type``'s jobs of ``priority``: ``image-generation-queue``
    for ``normal`` (the seed's name), ``image-generation-high-queue`` and
    ``image-generation-low-queue`` for the others."""
    if priority == DEFAULT_PRIORITY:
        return f"{job_type}-queue"
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    return f"{job_type}-{priority}-queue"


@dataclass(frozen=True, slots=True)
class Share:
    """One priority's part of a budget."""

    priority: Priority
    max_dispatches_per_second: float
    max_concurrent_dispatches: int


def split_budget(max_dispatches_per_second: float, max_concurrent_dispatches: int) -> list[Share]:
    """The budget in shares, highest priority first. Concurrency is rounded down, with at least
    one dispatch for every priority (so the sum exceeds the budget only when the budget is below
    one dispatch per priority); ``normal`` takes what rounding leaves. Rates keep three decimals
    (Cloud Tasks takes any positive rate)."""
    concurrency = {
        priority: max(1, math.floor(max_concurrent_dispatches * share))
        for priority, share in SHARES.items()
    }
    rest = max_concurrent_dispatches - sum(concurrency.values())
    if rest > 0:
        concurrency[DEFAULT_PRIORITY] += rest
    return [
        Share(
            priority,
            max(0.001, math.floor(max_dispatches_per_second * SHARES[priority] * 1000) / 1000),
            concurrency[priority],
        )
        for priority in PRIORITIES
    ]
