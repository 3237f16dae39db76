"""Cloud Tasks Queue messages (v2 and v2beta3) <-> the engine's queue dataclasses, including
the queue-level ``http_target`` and App Engine routing override.

Presence is kept where the API gives it: ``UriOverride``'s ``scheme``, ``host`` and ``port``
are proto3 ``optional`` and its path and query overrides are messages, so "clear the port"
(port 0) and "leave the port alone" (absent) stay apart; an echo shows what was set.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from google.cloud import tasks_v2

from emulator.apis import V2, Api
from emulator.conversions import (
    HTTP_METHOD_NAMES,
    HTTP_METHOD_NUMBERS,
    read_duration,
    retry_from_pb,
    retry_to_pb,
    routing_from_pb,
    routing_to_pb,
    set_duration,
    set_timestamp,
)
from emulator.model import (
    AppEngineRouting,
    OAuthToken,
    OidcToken,
    QueueHttpTarget,
    QueueRecord,
    QueueSpec,
    QueueStats,
    RateLimits,
    UriOverride,
)

QueuePb: Final[Any] = tasks_v2.Queue.pb()
_SCHEMES: Final = dict(tasks_v2.UriOverride.Scheme.__members__.items())
_SCHEME_NAMES: Final = {int(value): name for name, value in _SCHEMES.items()}
_MODES: Final = dict(tasks_v2.UriOverride.UriOverrideEnforceMode.__members__.items())
_MODE_NAMES: Final = {int(value): name for name, value in _MODES.items()}
_PULL: Final = 1  # v2beta3 Queue.Type.PULL
_PUSH: Final = 2


# ------------------------------------------------------------------ http_target


def http_target_from_pb(target: Any) -> QueueHttpTarget:
    uri: UriOverride | None = None
    if target.HasField("uri_override"):
        raw = target.uri_override
        uri = UriOverride(
            scheme=_SCHEME_NAMES.get(raw.scheme, "HTTPS") if raw.HasField("scheme") else None,
            host=raw.host if raw.HasField("host") else None,
            port=raw.port if raw.HasField("port") else None,
            path=raw.path_override.path if raw.HasField("path_override") else None,
            query=raw.query_override.query_params if raw.HasField("query_override") else None,
            enforce_mode=_MODE_NAMES.get(raw.uri_override_enforce_mode, "ALWAYS"),
        )
    method = HTTP_METHOD_NAMES.get(target.http_method) if target.http_method else None
    headers = {item.header.key: item.header.value for item in target.header_overrides}
    oidc = oauth = None
    if target.HasField("oidc_token"):
        oidc = OidcToken(target.oidc_token.service_account_email, target.oidc_token.audience)
    elif target.HasField("oauth_token"):
        oauth = OAuthToken(target.oauth_token.service_account_email, target.oauth_token.scope)
    return QueueHttpTarget(uri, method, headers, oidc, oauth)


def http_target_to_pb(out: Any, target: QueueHttpTarget) -> None:
    out.SetInParent()
    uri = target.uri_override
    if uri is not None:
        raw = out.uri_override
        raw.SetInParent()
        if uri.scheme is not None:
            raw.scheme = _SCHEMES[uri.scheme]
        if uri.host is not None:
            raw.host = uri.host
        if uri.port is not None:
            raw.port = uri.port
        if uri.path is not None:
            raw.path_override.path = uri.path
            raw.path_override.SetInParent()
        if uri.query is not None:
            raw.query_override.query_params = uri.query
            raw.query_override.SetInParent()
        raw.uri_override_enforce_mode = _MODES[uri.enforce_mode]
    if target.http_method is not None:
        out.http_method = HTTP_METHOD_NUMBERS[target.http_method]
    for key, value in target.header_overrides.items():
        item = out.header_overrides.add()
        item.header.key = key
        item.header.value = value
    if target.oidc_token is not None:
        out.oidc_token.service_account_email = target.oidc_token.service_account_email
        out.oidc_token.audience = target.oidc_token.audience
    elif target.oauth_token is not None:
        out.oauth_token.service_account_email = target.oauth_token.service_account_email
        out.oauth_token.scope = target.oauth_token.scope


# ------------------------------------------------------------------ queues


def _routing_override_field(queue: Any, api: Api) -> Any | None:
    """Where a queue message keeps its App Engine routing override, if it has one."""
    if api.beta:
        if not queue.HasField("app_engine_http_queue"):
            return None
        holder = queue.app_engine_http_queue
    else:
        holder = queue
    if not holder.HasField("app_engine_routing_override"):
        return None
    return holder.app_engine_routing_override


def queue_spec_from_pb(queue: Any, api: Api = V2) -> QueueSpec:
    """A Queue message as a spec. Unset (zero) fields stay zero: the engine applies the
    server defaults, as proto3 "unset" means (``max_doublings`` 0 included: Cloud Tasks
    cannot tell it from unset either). v2beta3's ``task_ttl`` and ``tombstone_ttl`` are None
    when unset; its ``max_burst_size`` is read by the service's validation only."""
    rate = queue.rate_limits
    spec = QueueSpec(
        name=queue.name,
        rate_limits=RateLimits(
            max_dispatches_per_second=rate.max_dispatches_per_second,
            max_concurrent_dispatches=rate.max_concurrent_dispatches,
        ),
    )
    if queue.HasField("retry_config"):
        spec.retry_config = retry_from_pb(queue.retry_config)
    if queue.HasField("http_target"):
        spec.http_target = http_target_from_pb(queue.http_target)
    routing = _routing_override_field(queue, api)
    if routing is not None:
        spec.app_engine_routing_override = routing_from_pb(routing)
    if api.beta:
        spec.pull = queue.type_ == _PULL
        if queue.HasField("task_ttl"):
            spec.task_ttl = read_duration(queue.task_ttl) or None
        if queue.HasField("tombstone_ttl"):
            spec.tombstone_ttl = read_duration(queue.tombstone_ttl) or None
    return spec


def queue_to_pb(
    record: QueueRecord,
    api: Api = V2,
    *,
    stats: QueueStats | None = None,
    tombstone_ttl: timedelta | None = None,
) -> Any:
    """The Queue message of ``api``. v2beta3 adds ``type``, ``task_ttl``, ``tombstone_ttl``
    (``tombstone_ttl`` is the engine's default when the queue has none of its own) and
    ``stats`` when asked for (v2 has no queue statistics)."""
    target = QueuePb() if api is V2 else api.Queue()
    target.name = record.name
    target.state = int(record.state)
    rate, retry = record.rate_limits, record.retry_config
    out_rate = target.rate_limits
    out_rate.max_dispatches_per_second = rate.max_dispatches_per_second
    out_rate.max_burst_size = rate.max_burst_size
    out_rate.max_concurrent_dispatches = rate.max_concurrent_dispatches
    retry_to_pb(target.retry_config, retry)
    if record.purge_time is not None:
        set_timestamp(target.purge_time, record.purge_time)
    if record.http_target is not None:
        http_target_to_pb(target.http_target, record.http_target)
    if record.app_engine_routing_override is not None:
        holder = target.app_engine_http_queue if api.beta else target
        routing_to_pb(
            holder.app_engine_routing_override,
            record.app_engine_routing_override,
            record.name.split("/", 2)[1],
        )
    if api.beta:
        target.type_ = _PULL if record.pull else _PUSH
        set_duration(target.task_ttl, record.task_ttl)
        ttl = record.tombstone_ttl or tombstone_ttl
        if ttl is not None:
            set_duration(target.tombstone_ttl, ttl)
        if stats is not None:
            out = target.stats
            out.SetInParent()
            out.tasks_count = stats.tasks_count
            if stats.oldest_estimated_arrival_time is not None:
                set_timestamp(
                    out.oldest_estimated_arrival_time, stats.oldest_estimated_arrival_time
                )
            out.executed_last_minute_count = stats.executed_last_minute_count
            out.concurrent_dispatches_count = stats.concurrent_dispatches_count
            out.effective_execution_rate = stats.effective_execution_rate
    return target


def blank_queue(name: str) -> QueueRecord:
    """What UpdateQueue merges into when the queue does not exist (an upsert)."""
    from emulator.model import RetryConfig

    return QueueRecord(name, RateLimits(), RetryConfig())


__all__ = [
    "AppEngineRouting",
    "QueuePb",
    "blank_queue",
    "http_target_from_pb",
    "http_target_to_pb",
    "queue_spec_from_pb",
    "queue_to_pb",
]
