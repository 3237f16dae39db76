"""What goes on the wire for one attempt when the plain case does not apply: an HTTP task on a
queue with an ``http_target`` (the queue's URI, method, header and token overrides, applied
at dispatch time, so they also reach tasks queued before the queue changed), an HTTP task
asking for an OAuth token, and App Engine tasks (sent to the configured App Engine host with
the ``X-AppEngine-*`` headers and the routing Cloud Tasks computes).

Combination rules the documentation leaves open (the README's choices table lists them):

- ``ALWAYS``: every component the override names replaces the task's (a port of 0 and an
  empty path or query clear theirs); the method, when set, replaces the task's; each header
  override replaces the task header of that name; a queue token replaces the task's token and
  any ``Authorization`` header.
- ``IF_NOT_EXISTS``: a task "has routing of its own" when it has a URL. Only a task without
  one (BufferTask tasks, CreateTask with an empty URL) takes the queue's URI and method;
  header overrides fill only the names the task lacks; the queue token is used only when the
  task has neither a token nor an ``Authorization`` header.
- A method without a body (GET, HEAD, DELETE, OPTIONS) drops the task's body, as the
  ``HttpTarget.http_method`` documentation says for GET.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit, urlunsplit

from emulator import rules
from emulator.headers import USER_AGENT, attempt_headers
from emulator.model import (
    AppEngineRouting,
    HttpTarget,
    OAuthToken,
    OidcToken,
    QueueHttpTarget,
    QueueRecord,
    TaskRecord,
    UriOverride,
)

APP_ENGINE_USER_AGENT = "AppEngine-Google; (+http://code.google.com/appengine)"
APP_ENGINE_CONTENT_TYPE = "application/octet-stream"
# Headers a caller cannot set on an App Engine task (dropped when the task is created).
_APP_ENGINE_RESERVED_PREFIXES = ("x-google-", "x-appengine-")

MintOidc = Callable[[OidcToken, str], str]  # (token, default audience) -> JWT
MintAccess = Callable[[OAuthToken], str]  # token -> opaque access token


class WireRequest(NamedTuple):
    url: str
    method: str
    headers: dict[str, str]
    body: bytes


# ------------------------------------------------------------------ App Engine


def app_engine_domain(project: str) -> str:
    """The app's domain name for a project (``<app-id>.appspot.com`` in Google's words)."""
    return f"{project}.appspot.com"


def routing_host(project: str, routing: AppEngineRouting) -> str:
    """``AppEngineRouting.host`` as Cloud Tasks documents it:
    ``[instance.][version.][service.]<app domain>``, each part only when set."""
    parts = [part for part in (routing.instance, routing.version, routing.service) if part]
    return ".".join([*parts, app_engine_domain(project)])


def effective_routing(queue: QueueRecord, task: TaskRecord) -> AppEngineRouting:
    """The queue's ``app_engine_routing_override`` when it has one, whatever the task says."""
    if queue.app_engine_routing_override is not None:
        return queue.app_engine_routing_override
    return task.http_request.app_engine or AppEngineRouting()


def stored_app_engine_headers(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The headers Cloud Tasks stores on an App Engine task: the caller's (less the reserved
    ones), its ``User-Agent`` with Google's appended, a ``Content-Type`` of
    ``application/octet-stream`` when there is a body without one, and the computed
    ``Content-Length``."""
    stored: dict[str, str] = {}
    agent = ""
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("host", "content-length") or lowered.startswith(
            _APP_ENGINE_RESERVED_PREFIXES
        ):
            continue
        if lowered == "user-agent":
            agent = value
            continue
        stored[name] = value
    stored["User-Agent"] = f"{agent} {APP_ENGINE_USER_AGENT}" if agent else APP_ENGINE_USER_AGENT
    if body:
        if not any(name.lower() == "content-type" for name in stored):
            stored["Content-Type"] = APP_ENGINE_CONTENT_TYPE
        stored["Content-Length"] = str(len(body))
    return stored


def app_engine_request(
    queue: QueueRecord, task: TaskRecord, project: str, app_engine_host: str
) -> WireRequest:
    """An App Engine task's attempt: to ``app_engine_host`` + the relative URI, with ``Host``
    the routing's host and the ``X-AppEngine-*`` headers (ExecutionCount counts every
    response, 503 included, and RetryReason is "App Error", as recorded from Cloud Tasks)."""
    target = task.http_request
    headers = {
        name: value for name, value in target.headers.items() if name.lower() != "content-length"
    }
    headers["Host"] = routing_host(project, effective_routing(queue, task))
    headers["X-AppEngine-QueueName"] = queue.short_id
    headers["X-AppEngine-TaskName"] = task.short_id
    headers["X-AppEngine-TaskRetryCount"] = str(task.dispatch_count)
    headers["X-AppEngine-TaskExecutionCount"] = str(task.response_count)
    headers["X-AppEngine-TaskETA"] = rules.format_eta(task.schedule_time)
    if task.dispatch_count > 0:
        previous = task.previous_http_status
        if previous is not None:
            headers["X-AppEngine-TaskPreviousResponse"] = str(previous)
        headers["X-AppEngine-TaskRetryReason"] = "App Error"
    url = app_engine_host.rstrip("/") + (target.url or "/")
    return WireRequest(url, target.http_method, headers, target.body)


# ------------------------------------------------------------------ HTTP tasks


def _with_override(url: str, override: UriOverride) -> str:
    """``url`` with every component the override names replaced."""
    parts: SplitResult = urlsplit(url) if url else SplitResult("https", "", "", "", "")
    if override.scheme is None:
        scheme = parts.scheme or "https"
    else:  # HTTP, HTTPS or SCHEME_UNSPECIFIED, which "defaults to HTTPS"
        scheme = "http" if override.scheme == "HTTP" else "https"
    host = override.host if override.host is not None else (parts.hostname or "")
    # A port of 0 clears the task's port; an absent one keeps it.
    port = parts.port if override.port is None else (override.port or None)
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None:  # credentials in the task URL are kept
        credentials = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{credentials}@{netloc}"
    path = override.path if override.path is not None else parts.path
    query = override.query if override.query is not None else parts.query
    return urlunsplit((scheme, netloc, path, query, parts.fragment))


def _authorization_free(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "authorization"}


def http_request(
    queue: QueueRecord,
    task: TaskRecord,
    mint_oidc: MintOidc | None,
    mint_access: MintAccess,
) -> WireRequest:
    """An HTTP task's attempt with the queue's ``http_target`` (if any) and tokens applied."""
    target = task.http_request
    url, method, body = target.url, target.http_method, target.body
    headers = dict(target.headers)
    oidc, oauth = target.oidc_token, target.oauth_token
    queue_target: QueueHttpTarget | None = queue.http_target
    if queue_target is not None:
        always = queue_target.uri_override is None or (
            queue_target.uri_override.enforce_mode != "IF_NOT_EXISTS"
        )
        routed_by_queue = always or not url
        if queue_target.uri_override is not None and routed_by_queue:
            url = _with_override(url, queue_target.uri_override)
        if queue_target.http_method is not None and routed_by_queue:
            method = queue_target.http_method
        for name, value in queue_target.header_overrides.items():
            lowered = name.lower()
            present = [key for key in headers if key.lower() == lowered]
            if present and not always:
                continue
            for key in present:
                del headers[key]
            headers[name] = value
        queue_token = queue_target.oidc_token or queue_target.oauth_token
        if queue_token is not None:
            has_own = (
                oidc is not None
                or oauth is not None
                or any(key.lower() == "authorization" for key in target.headers)
            )
            if always or not has_own:
                oidc, oauth = queue_target.oidc_token, queue_target.oauth_token
    if method not in rules.BODY_METHODS:
        body = b""
    if oidc is not None or oauth is not None:
        headers = _authorization_free(headers)
    wire_headers = attempt_headers(queue.short_id, task, headers)
    if oidc is not None and mint_oidc is not None:
        wire_headers["Authorization"] = "Bearer " + mint_oidc(oidc, url)
    elif oauth is not None:
        wire_headers["Authorization"] = "Bearer " + mint_access(oauth)
    return WireRequest(url, method, wire_headers, body)


def needs_targets(queue: QueueRecord, target: HttpTarget) -> bool:
    """False in the plain case (an HTTP task with at most an OIDC token, on a queue without
    an ``http_target``), which the engine dispatches on its own fast path."""
    return (
        queue.http_target is not None
        or target.app_engine is not None
        or target.oauth_token is not None
    )


__all__ = [
    "APP_ENGINE_USER_AGENT",
    "USER_AGENT",
    "WireRequest",
    "app_engine_request",
    "effective_routing",
    "http_request",
    "needs_targets",
    "routing_host",
    "stored_app_engine_headers",
]
