"""HTTP for the remote provider adapters: one request helper, error mapping, and the host
allow-list that keeps each key on its own provider's hosts.

* A key is attached only to a URL whose host the adapter's :class:`HostPolicy` allows (the
  configured base URL's host plus the provider's documented domains). A URL returned by a
  provider (BFL's ``polling_url``, Replicate's ``urls.get``) on any other host is never sent
  the key; adapters fall back to the configured host instead.
* Result files are downloaded with no credential at all (they are pre-signed links).
* A provider's raw error text is logged (with the key scrubbed, should a provider echo it);
  what is raised is a :class:`~app.providers.base.ProviderError` with a short safe message.
* Nothing here retries: a submit must not be repeated blindly (no provider takes an
  idempotency key), and polls are repeated by the poll task on the queue.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import SecretStr
from yarl import URL

from app.outbound import OutboundHttp
from app.providers.base import (
    ErrorCode,
    PermanentProviderError,
    ProviderError,
    ProviderOutput,
    ProviderTask,
    RetryableProviderError,
)
from app.providers.guard import FetchGuard

__all__ = ["HostPolicy", "PollSchedule", "ProviderHttp", "ProviderResponse", "parse_retry_after"]

log = logging.getLogger("app.providers.http")

_LOGGED_BODY = 500  # characters of a provider's error body kept in the log
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Hosts a provider's key may be sent to: exact names, and domains (``bfl.ai`` allows
    ``api.eu.bfl.ai``, never ``evilbfl.ai``)."""

    hosts: frozenset[str]
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, base_url: str, *, domains: Iterable[str] = ()) -> HostPolicy:
        base = URL(base_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"a provider base URL must be absolute http(s), not {base_url!r}")
        return cls(frozenset({_authority(base)}), frozenset(d.lower() for d in domains))

    def allows(self, url: str | URL) -> bool:
        target = URL(url) if isinstance(url, str) else url
        if target.scheme not in ("http", "https") or not target.host:
            return False
        if _authority(target) in self.hosts:
            return True
        host = target.host.lower()
        return (
            target.scheme == "https"
            and target.port in (None, 443)
            and any(host == d or host.endswith("." + d) for d in self.domains)
        )


def _authority(url: URL) -> str:
    host = (url.host or "").lower()
    default = {"http": 80, "https": 443}.get(url.scheme)
    return host if url.port in (None, default) else f"{host}:{url.port}"


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """How long to wait before the next poll: ``first`` seconds, growing by ``growth`` seconds
    per second already waited, never more than ``longest`` (a long render is polled less)."""

    first: float
    longest: float
    growth: float

    def after(self, elapsed: float) -> float:
        return min(self.longest, self.first + self.growth * max(0.0, elapsed))


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else time.time()
    return max(0.0, when.timestamp() - reference)


class ProviderHttp:
    """Requests to one provider, with its key attached only where its policy allows."""

    def __init__(
        self,
        provider: str,
        outbound: OutboundHttp,
        *,
        base_url: str,
        auth_headers: Mapping[str, SecretStr],
        policy: HostPolicy,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_download_bytes: int = 512 * 1024 * 1024,
        guard: FetchGuard | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = URL(base_url.rstrip("/"))
        self.policy = policy
        self._outbound = outbound
        self._auth = dict(auth_headers)
        self._headers = dict(headers or {})
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_download_bytes = max_download_bytes
        self.guard = guard
        """When set, result downloads go through it (``FETCH_ALLOW_HOSTS``, private-address
        refusal, every redirect checked); result links are chosen by the provider."""

    def url(self, path: str) -> URL:
        """``path`` under the configured base URL."""
        return URL(str(self.base_url) + path)

    def allows(self, url: str | URL) -> bool:
        return self.policy.allows(url)

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        submit: bool = False,
    ) -> ProviderResponse:
        """One authenticated request to an allowed host. Transport failures become retryable
        ``UNAVAILABLE`` errors (``submission_unknown`` for a ``submit`` that may have been
        sent); HTTP statuses are returned for the adapter to judge."""
        target = URL(url) if isinstance(url, str) else url
        if not self.policy.allows(target):
            # Never reached with a provider-supplied URL: adapters check first. A guard.
            raise PermanentProviderError(
                f"{self.provider}: refusing to send credentials to an unexpected host",
                code=ErrorCode.FORBIDDEN_HOST,
            )
        sent = {**self._headers, **(headers or {})}
        sent.update({name: secret.get_secret_value() for name, secret in self._auth.items()})
        limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._outbound.session.request(
                method, target, json=json_body, headers=sent, timeout=limit, allow_redirects=False
            ) as response:
                raw = await response.read()
                return ProviderResponse(response.status, response.headers, _parse(raw))
        except aiohttp.ClientConnectorError as error:
            raise self.unavailable(f"cannot connect: {error.os_error}", submit=False) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self.unavailable(f"{type(error).__name__}: {error}", submit=submit) from None

    def unavailable(self, detail: str, *, submit: bool) -> RetryableProviderError:
        log.warning("%s unreachable: %s", self.provider, self.scrub(detail))
        return RetryableProviderError(
            f"{self.provider} is unavailable right now",
            code=ErrorCode.UNAVAILABLE,
            submission_unknown=submit,
        )

    def http_error(
        self, response: ProviderResponse, *, action: str, submit: bool = False
    ) -> ProviderError:
        """The error for a non-2xx answer the adapter has no special meaning for."""
        status = response.status
        self.log_failure(f"{action}: HTTP {status}", response.body)
        if status in (408, 409, 425, 429):
            return RetryableProviderError(
                f"{self.provider} is busy; trying again later",
                code=ErrorCode.RATE_LIMITED,
                retry_after=parse_retry_after(response.headers),
            )
        if status == 402:
            return out_of_credits(self.provider)
        if status in (401, 403):
            return PermanentProviderError(
                f"{self.provider} refused our credentials; the operator has been told",
                code=ErrorCode.UNAUTHORIZED,
            )
        if status == 404:
            return PermanentProviderError(
                f"{self.provider} does not know this task any more",
                code=ErrorCode.TASK_NOT_FOUND,
            )
        if status in (400, 413, 422):
            fields = _invalid_fields(response.body)
            detail = f" ({', '.join(fields)})" if fields else ""
            return PermanentProviderError(
                f"{self.provider} refused the request as invalid{detail}",
                code=ErrorCode.INVALID_REQUEST,
            )
        return RetryableProviderError(
            f"{self.provider} is unavailable right now",
            code=ErrorCode.UNAVAILABLE,
            submission_unknown=submit and status >= 500,
        )

    def waited(
        self, task: ProviderTask, now: datetime, deadline: float, status: Any, body: Any, what: str
    ) -> float:
        """Seconds ``task`` has run at the provider. Past ``deadline`` it has failed for good:
        the provider's last answer is logged, and a DEADLINE error names ``what``."""
        elapsed = elapsed_seconds(task.submitted_at, now)
        if elapsed > deadline:
            self.log_failure(f"task {task.task_id} still {status!r} after {elapsed:.0f}s", body)
            raise PermanentProviderError(f"{what} did not finish in time", code=ErrorCode.DEADLINE)
        return elapsed

    def log_failure(self, what: str, body: Any) -> None:
        """The provider's own words, for operators (the key scrubbed out, should it be echoed)."""
        text = body if isinstance(body, str) else json.dumps(body, default=str)
        log.warning("%s %s: %s", self.provider, what, self.scrub(text)[:_LOGGED_BODY])

    def scrub(self, text: str) -> str:
        for secret in self._auth.values():
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "[redacted]")
        return text

    async def download(self, url: str) -> ProviderOutput:
        """GET a result file with no credential; a dead link is ``RESULT_EXPIRED``
        (retryable: polling again yields a fresh link where the provider has one)."""
        limit = self.max_download_bytes
        timeout = aiohttp.ClientTimeout(total=300)
        session = self._outbound.session
        opened = (
            session.get(url, timeout=timeout, allow_redirects=True)
            if self.guard is None
            else self.guard.request(session, "GET", url, timeout=timeout, what="result URL")
        )
        try:
            async with opened as response:
                if response.status in (403, 404, 410):
                    log.warning("%s result link answered HTTP %s", self.provider, response.status)
                    raise RetryableProviderError(
                        f"the {self.provider} result link expired before it was fetched",
                        code=ErrorCode.RESULT_EXPIRED,
                    )
                if response.status != 200:
                    raise self.unavailable(f"result download: HTTP {response.status}", submit=False)
                if response.content_length is not None and response.content_length > limit:
                    raise PermanentProviderError(f"the {self.provider} result is too large")
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > limit:
                        raise PermanentProviderError(f"the {self.provider} result is too large")
                content_type = response.headers.get("Content-Type", "application/octet-stream")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self.unavailable(f"result download: {error!r}", submit=False) from None
        if not body:
            raise self.unavailable("result download: empty body", submit=False)
        return ProviderOutput(bytes(body), content_type.split(";", 1)[0].strip())


def out_of_credits(provider: str) -> PermanentProviderError:
    return PermanentProviderError(
        f"{provider}: provider out of credits; the job was refunded",
        code=ErrorCode.OUT_OF_CREDITS,
    )


def elapsed_seconds(since: datetime, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds())


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _invalid_fields(body: Any) -> list[str]:
    """Field names from a FastAPI-style ``{"detail": [{"loc": [...]}]}`` (BFL, Replicate)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    fields: list[str] = []
    if isinstance(detail, list):
        for item in detail:
            loc = item.get("loc") if isinstance(item, dict) else None
            if isinstance(loc, list) and loc:
                name = ".".join(str(p) for p in loc if p != "body")
                if name and name not in fields:
                    fields.append(name)
    return fields[:5]
