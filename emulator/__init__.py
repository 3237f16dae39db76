"""A local Google Cloud Tasks: the engine, its gRPC/REST faces and its console.

This package knows nothing about daygen: it models Cloud Tasks' own resources so that any
Cloud Tasks client, ours or Google's, can be pointed at it.

Importing the package is cheap: the names below are loaded on first use (PEP 562), so that
``emulator.clock`` or ``emulator.queues_file`` (which the production CLI imports) do not pull
in the engine, aiohttp and the generated protobuf modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.clock import Clock, RealClock, SteppableClock
    from emulator.dispatch import (
        CallableDispatcher,
        Dispatcher,
        DispatchRequest,
        DispatchResult,
        HttpDispatcher,
    )
    from emulator.engine import Engine, TokenMinter
    from emulator.errors import (
        AlreadyExists,
        EmulatorError,
        FailedPrecondition,
        InvalidArgument,
        NotFound,
    )
    from emulator.events import Event, EventKind, EventStream
    from emulator.model import (
        Attempt,
        HttpTarget,
        NewTaskSpec,
        OidcToken,
        QueueRecord,
        QueueSpec,
        QueueState,
        QueueStats,
        RateLimits,
        RetryConfig,
        TaskRecord,
    )
    from emulator.store import MemoryStore, Store, StoredState

# Public name -> the module that defines it.
_HOMES: dict[str, str] = {
    "Clock": "emulator.clock",
    "RealClock": "emulator.clock",
    "SteppableClock": "emulator.clock",
    "CallableDispatcher": "emulator.dispatch",
    "Dispatcher": "emulator.dispatch",
    "DispatchRequest": "emulator.dispatch",
    "DispatchResult": "emulator.dispatch",
    "HttpDispatcher": "emulator.dispatch",
    "Engine": "emulator.engine",
    "TokenMinter": "emulator.engine",
    "AlreadyExists": "emulator.errors",
    "EmulatorError": "emulator.errors",
    "FailedPrecondition": "emulator.errors",
    "InvalidArgument": "emulator.errors",
    "NotFound": "emulator.errors",
    "Event": "emulator.events",
    "EventKind": "emulator.events",
    "EventStream": "emulator.events",
    "Attempt": "emulator.model",
    "HttpTarget": "emulator.model",
    "NewTaskSpec": "emulator.model",
    "OidcToken": "emulator.model",
    "QueueRecord": "emulator.model",
    "QueueSpec": "emulator.model",
    "QueueState": "emulator.model",
    "QueueStats": "emulator.model",
    "RateLimits": "emulator.model",
    "RetryConfig": "emulator.model",
    "TaskRecord": "emulator.model",
    "MemoryStore": "emulator.store",
    "Store": "emulator.store",
    "StoredState": "emulator.store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'emulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "AlreadyExists",
    "Attempt",
    "CallableDispatcher",
    "Clock",
    "DispatchRequest",
    "DispatchResult",
    "Dispatcher",
    "EmulatorError",
    "Engine",
    "Event",
    "EventKind",
    "EventStream",
    "FailedPrecondition",
    "HttpDispatcher",
    "HttpTarget",
    "InvalidArgument",
    "MemoryStore",
    "NewTaskSpec",
    "NotFound",
    "OidcToken",
    "QueueRecord",
    "QueueSpec",
    "QueueState",
    "QueueStats",
    "RateLimits",
    "RealClock",
    "RetryConfig",
    "SteppableClock",
    "Store",
    "StoredState",
    "TaskRecord",
    "TokenMinter",
]
