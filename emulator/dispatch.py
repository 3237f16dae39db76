"""How a task attempt reaches its target: the ``Dispatcher`` protocol and its two
implementations, real HTTP (what Cloud Tasks does) and an in-memory handler call.

The in-memory one is a first-class dispatcher, not a test fake: it still receives the full
request with every ``X-CloudTasks-*`` header and the real body bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import NamedTuple, Protocol

import aiohttp
from yarl import URL


class DispatchRequest(NamedTuple):
    """One attempt as it goes on the wire (immutable; a tuple because one is built per
    attempt on the dispatch hot path)."""

    url: str
    method: str
    headers: Mapping[str, str]
    body: bytes
    deadline: timedelta


_NO_AUTO_CONTENT_TYPE = ("Content-Type",)
# Parsed URLs kept for reuse (tasks of a queue mostly share a handful of URLs); dropped all at
# once when this many are held.
_URL_CACHE_SIZE = 1024
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class DispatchResult(NamedTuple):
    """``status`` is None when no HTTP response came back (``error`` says why)."""

    status: int | None
    headers: Mapping[str, str] = _NO_HEADERS
    error: str = ""


class Dispatcher(Protocol):
    async def dispatch(self, request: DispatchRequest) -> DispatchResult:
        """Deliver one attempt. Raising counts as a connection error; the engine enforces
        the dispatch deadline itself by cancelling this call."""
        ...

    async def close(self) -> None: ...


class HttpDispatcher:
    """Real HTTP over one shared aiohttp session, as Cloud Tasks' HTTP targets.

    Built for the dispatch hot path: the session is made once per loop, each distinct URL is
    parsed once, a deadline's ``ClientTimeout`` is made once, and the response headers are
    handed over as aiohttp's read-only view instead of being copied."""

    def __init__(self, *, connection_limit: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._connection_limit = connection_limit
        self._timeouts: dict[timedelta, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so that the session belongs to the running loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connection_limit, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # Cloud Tasks adds no Content-Type of its own to HTTP targets (one in the
                # task's headers is still sent: this only stops aiohttp inventing one).
                skip_auto_headers=_NO_AUTO_CONTENT_TYPE,
            )
        return self._session

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                parsed = URL(url)
            except ValueError as error:  # what aiohttp itself raises for a string it cannot parse
                raise aiohttp.InvalidUrlClientError(url) from error
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[url] = parsed
        return parsed

    async def dispatch(self, request: DispatchRequest) -> DispatchResult:
        session = self._session
        if session is None or session.closed:
            session = self._get_session()
        timeout = self._timeouts.get(request.deadline)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=request.deadline.total_seconds())
            self._timeouts[request.deadline] = timeout
        try:
            async with session.request(
                request.method,
                self._url(request.url),
                headers=request.headers,
                data=request.body or None,
                timeout=timeout,
            ) as response:
                await response.read()
                return DispatchResult(status=response.status, headers=response.headers)
        except TimeoutError:
            return DispatchResult(status=None, error="DEADLINE_EXCEEDED")
        except aiohttp.ClientError as exc:
            return DispatchResult(status=None, error=f"connection error: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


Handler = Callable[[DispatchRequest], Awaitable["DispatchResult | int"]]


class CallableDispatcher:
    """Delivers to an async function in the same process; it answers a status or a result."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def dispatch(self, request: DispatchRequest) -> DispatchResult:
        outcome = await self._handler(request)
        if isinstance(outcome, int):
            return DispatchResult(status=outcome)
        return outcome

    async def close(self) -> None:
        return None
