"""``load_queue_configs``: a queues file (the emulator's ``--queues`` TOML) as ``QueueConfig``s.

Read by the emulator's own parser, ``emulator.queues_file``: one format and one parser for the
emulator's start-up and for ``daygen-queue apply`` on any backend. With
``backends/emulator.py``, this is the only place ``daygen_queue`` imports ``emulator``, and
only when called: ``emulator``'s package ``__init__`` loads its engine, which a
``daygen-queue list`` against Google has no use for.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from daygen_queue.config import QueueConfig, RateLimits, RetryConfig


def load_queue_configs(path: str | Path) -> list[QueueConfig]:
    """Raises ``ValueError`` naming the file, queue and bad key (pydantic's
    ``ValidationError``, also a ``ValueError``, for a value out of Cloud Tasks' limits)."""
    from emulator.queues_file import load_queues

    return [
        QueueConfig(
            name=entry.name,
            rate_limits=RateLimits(**asdict(entry.rate_limits)),
            retry_config=RetryConfig(**asdict(entry.retry_config)),
        )
        for entry in load_queues(path)
    ]
