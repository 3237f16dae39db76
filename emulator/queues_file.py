"""``--queues FILE``: queues with their full rate and retry config, in TOML.

```toml
[defaults.rate_limits]            # optional; applies to every queue below
max_dispatches_per_second = 10
max_concurrent_dispatches = 100

[defaults.retry_config]
max_attempts = 3
max_retry_duration = "1h"         # durations: "1h", "60s", "1.5s", "100ms", or seconds
min_backoff = "1s"
max_backoff = "60s"
max_doublings = 16

[queues.image-generation-queue]   # a queue with just the defaults

[queues.batch-generation-queue.rate_limits]
max_concurrent_dispatches = 10    # overrides one field of the defaults
```

Field names are Cloud Tasks' own (``gcloud tasks queues describe`` shows the same ones). A
field not given anywhere takes Cloud Tasks' default. Unknown keys are an error, so a typo
cannot silently leave a queue on defaults. The same parser feeds the emulator's start-up
and ``daygen-queue apply``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulator.model import QueueSpec, RateLimits, RetryConfig

_RATE_FIELDS = {"max_dispatches_per_second": float, "max_concurrent_dispatches": int}
_RETRY_INT_FIELDS = {"max_attempts", "max_doublings"}
_RETRY_DURATION_FIELDS = {"max_retry_duration", "min_backoff", "max_backoff"}
_DURATION_RE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class QueuesFileError(ValueError):
    """The file is not valid; the message names the file, queue and key."""


@dataclass(slots=True)
class QueueEntry:
    """One queue of the file, by its short id."""

    name: str
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retry_config: RetryConfig = field(default_factory=RetryConfig)

    def spec(self, parent: str) -> QueueSpec:
        return QueueSpec(
            f"{parent}/queues/{self.name}", replace(self.rate_limits), replace(self.retry_config)
        )


def parse_duration(value: object, where: str) -> timedelta:
    if isinstance(value, bool):
        raise QueuesFileError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is not None:
            return timedelta(seconds=float(match["number"]) * _UNITS[match["unit"]])
    raise QueuesFileError(f'{where}: expected a duration like "60s" or "1h", got {value!r}')


def _apply(table: dict[str, Any], rate: RateLimits, retry: RetryConfig, where: str) -> None:
    for key, value in table.items():
        if key == "rate_limits":
            if not isinstance(value, dict):
                raise QueuesFileError(f"{where}.rate_limits must be a table")
            for name, item in value.items():
                kind = _RATE_FIELDS.get(name)
                if kind is None or isinstance(item, bool) or not isinstance(item, int | float):
                    raise QueuesFileError(f"{where}.rate_limits.{name}: unknown key or bad value")
                setattr(rate, name, kind(item))
        elif key == "retry_config":
            if not isinstance(value, dict):
                raise QueuesFileError(f"{where}.retry_config must be a table")
            for name, item in value.items():
                spot = f"{where}.retry_config.{name}"
                if name in _RETRY_INT_FIELDS:
                    if isinstance(item, bool) or not isinstance(item, int):
                        raise QueuesFileError(f"{spot}: expected an integer, got {item!r}")
                    setattr(retry, name, item)
                elif name in _RETRY_DURATION_FIELDS:
                    setattr(retry, name, parse_duration(item, spot))
                else:
                    raise QueuesFileError(f"{spot}: unknown key")
        else:
            raise QueuesFileError(
                f"{where}.{key}: unknown key (expected rate_limits or retry_config)"
            )


def parse_queues(data: dict[str, Any], source: str = "<queues>") -> list[QueueEntry]:
    unknown = set(data) - {"defaults", "queues"}
    if unknown:
        raise QueuesFileError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    defaults = data.get("defaults", {})
    queues = data.get("queues", {})
    if not isinstance(defaults, dict) or not isinstance(queues, dict):
        raise QueuesFileError(f"{source}: 'defaults' and 'queues' must be tables")
    base_rate, base_retry = RateLimits(), RetryConfig()
    _apply(defaults, base_rate, base_retry, f"{source}: defaults")
    entries: list[QueueEntry] = []
    for name, table in queues.items():
        if not isinstance(table, dict):
            raise QueuesFileError(f"{source}: queues.{name} must be a table")
        entry = QueueEntry(name, replace(base_rate), replace(base_retry))
        _apply(table, entry.rate_limits, entry.retry_config, f"{source}: queues.{name}")
        entries.append(entry)
    return entries


def load_queues(path: str | Path) -> list[QueueEntry]:
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise QueuesFileError(f"{source}: {error}") from None
    return parse_queues(data, str(source))


def load_queue_specs(path: str | Path, parent: str) -> list[QueueSpec]:
    """The file's queues as full specs under ``parent`` (``projects/P/locations/L``)."""
    return [entry.spec(parent) for entry in load_queues(path)]
