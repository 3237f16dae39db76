"""Credits: reserved with a conditional UPDATE, refunded on failure.

``credits >= :amount`` in the WHERE clause is what keeps a balance from going negative under
concurrent requests: the database serialises the updates of a row, and an update that would
overdraw matches nothing (the CHECK constraint on ``users.credits`` backs it up).

Creations are committed in groups (``app.jobs.group_commit``), so ``reserve_many`` settles a
whole group with one SELECT (locking the rows, in id order) and the conditional UPDATE run
once per user (one ``executemany``), accepting each request in arrival order while its user's
balance covers it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from app.models import User, UTCDateTime


class InsufficientCredits(Exception):
    def __init__(self, cost: int) -> None:
        super().__init__(f"this job costs {cost} credits")
        self.cost = cost


class ConcurrentBalanceChange(Exception):
    """A balance changed between the locked read and the update (cannot happen while the rows
    are locked; raised rather than ever overdrawing)."""


# The conditional UPDATE, one row per user; a fixed statement so its compilation is cached.
_DEBIT = (
    update(User)
    .where(User.id == bindparam("user"), User.credits >= bindparam("amount"))
    .values(
        credits=User.credits - bindparam("amount"),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


def settle(balances: dict[str, int], demands: Sequence[tuple[str, int]]) -> list[bool]:
    """Which demands (user, cost), in order, the balances cover. Pure: the rule in one place."""
    left = dict(balances)
    accepted = []
    for user_id, cost in demands:
        ok = left.get(user_id, -1) >= cost
        if ok:
            left[user_id] -= cost
        accepted.append(ok)
    return accepted


def reserve_many(conn: Connection, demands: Sequence[tuple[str, int]], now: datetime) -> list[bool]:
    """Take each demand's cost from its user, inside the caller's transaction, when the
    balance covers it; returns which were taken."""
    users = sorted({user_id for user_id, _ in demands})
    rows = conn.execute(
        select(User.id, User.credits).where(User.id.in_(users)).order_by(User.id).with_for_update()
    )
    accepted = settle({row.id: row.credits for row in rows}, demands)
    totals: dict[str, int] = defaultdict(int)
    for (user_id, cost), ok in zip(demands, accepted, strict=True):
        if ok:
            totals[user_id] += cost
    if totals:
        params = [{"user": user, "amount": amount, "now": now} for user, amount in totals.items()]
        if conn.dialect.supports_sane_multi_rowcount:
            matched = conn.execute(_DEBIT, params).rowcount
        else:
            matched = sum(conn.execute(_DEBIT, one).rowcount for one in params)
        if matched != len(totals):
            raise ConcurrentBalanceChange("a balance changed while reserving credits")
    return accepted


def refund(conn: Connection, user_id: str, amount: int, now: datetime) -> None:
    """Give ``amount`` credits back, inside the transaction that marks the job failed (so a
    job is refunded at most once: only the transition's winner gets here)."""
    conn.execute(
        update(User).where(User.id == user_id).values(credits=User.credits + amount, updated_at=now)
    )
