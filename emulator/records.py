"""The engine's records built from what a client sent, and an attempt's outcome written into
its task: pure functions of plain dataclasses, apart from the engine's state machine."""

from __future__ import annotations

import copy
from datetime import datetime

from emulator import rules, targets
from emulator.dispatch import DispatchResult
from emulator.model import (
    Attempt,
    HttpTarget,
    NewTaskSpec,
    QueueRecord,
    QueueSpec,
    RetryConfig,
    TaskRecord,
)
from emulator.validation import apply_retry_defaults, validate_retry_config


def new_task(name: str, queue: str, spec: NewTaskSpec, now: datetime) -> TaskRecord:
    """The stored task: an App Engine task's headers as Cloud Tasks stores them, the
    schedule time at least now, whole-second ``create_time``, the default deadline."""
    target = spec.http_request
    if target.app_engine is not None:
        target = HttpTarget(
            target.url,
            target.http_method,
            targets.stored_app_engine_headers(target.headers, target.body),
            target.body,
            app_engine=target.app_engine,
        )
    if spec.schedule_time is None or spec.schedule_time < now:
        schedule_time = now
    else:
        schedule_time = spec.schedule_time
    return TaskRecord(
        name=name,
        queue=queue,
        # Kept as given, not copied: the caller hands the target over (the service builds
        # a fresh one per request) and nothing in the engine changes it.
        http_request=target,
        schedule_time=schedule_time,
        create_time=rules.truncate_to_second(now),
        dispatch_deadline=spec.dispatch_deadline or rules.DEFAULT_DISPATCH_DEADLINE,
        named=spec.name is not None,
        retry_config=task_retry(spec.retry_config),
    )


def record_outcome(
    task: TaskRecord, attempt: Attempt, result: DispatchResult, now: datetime
) -> None:
    """The attempt's response fields and the task's counters, from the dispatch result."""
    status = result.status
    attempt.response_time = now
    attempt.http_status = status
    if status is not None:
        attempt.response_code = rules.rpc_code_for_http_status(status)
        attempt.response_message = f"HTTP {status}"
        task.response_count += 1
        if status < 500:
            task.execution_count += 1
    elif result.error == "DEADLINE_EXCEEDED":
        attempt.response_code = rules.RPC_DEADLINE_EXCEEDED
        attempt.response_message = "DEADLINE_EXCEEDED"
    else:
        attempt.response_code = rules.RPC_UNAVAILABLE
        attempt.response_message = result.error


def copy_spec(spec: QueueSpec) -> QueueSpec:
    """The engine keeps its own copy: defaults are applied in place."""
    return copy.deepcopy(spec)


def apply_spec(record: QueueRecord, spec: QueueSpec) -> None:
    """The settable fields beyond rate and retry, from a validated spec."""
    record.http_target = spec.http_target
    record.app_engine_routing_override = spec.app_engine_routing_override
    record.task_ttl = spec.task_ttl or rules.DEFAULT_TASK_TTL
    record.tombstone_ttl = spec.tombstone_ttl
    record.pull = spec.pull


def task_retry(retry: RetryConfig | None) -> RetryConfig | None:
    """A task's own policy, with Cloud Tasks' defaults for its zero fields (the whole
    message replaces the queue's: no field is inherited from it)."""
    if retry is None:
        return None
    own = copy.copy(retry)
    apply_retry_defaults(own)
    validate_retry_config(own)
    return own
