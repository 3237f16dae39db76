"""A local Google Cloud Tasks: the engine, its gRPC/REST faces and its dashboard.

This package knows nothing about daygen: it models Cloud Tasks' own resources so that any
Cloud Tasks client, ours or Google's, can be pointed at it.
"""

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

__all__ = [
    "AlreadyExists",
    "Attempt",
    "CallableDispatcher",
    "Clock",
    "DispatchRequest",
    "DispatchResult",
    "Dispatcher",
    "Engine",
    "EmulatorError",
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
