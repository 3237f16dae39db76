"""Room names, in one place so the publisher and the handlers can never disagree."""

from __future__ import annotations


def user_room(user_id: str) -> str:
    """Every socket of a user joins this room on connect: all of the user's job updates."""
    return f"user:{user_id}"


def job_room(job_id: str) -> str:
    """Joined on ``subscribe``: one job's updates (only the owner may join)."""
    return f"job:{job_id}"
