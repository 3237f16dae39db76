"""Fetching a job's source image (for upscale and image-to-video) without becoming an SSRF hole.

A source URL is chosen by the user, and the worker fetching it sits inside our network, so a
naive ``GET`` would let anyone read cloud metadata (``169.254.169.254``), admin ports on
``localhost`` or other internal services. The rules here:

* Our own ``/media/`` URLs are read straight from storage: no HTTP, no address checks, and a
  generated image can be upscaled or animated even when the service cannot reach itself.
* Only ``http``/``https``, no credentials in the URL, parsed by the same parser that
  validates job requests (``app.providers.urls``).
* The address policy is the app's one :class:`~app.providers.guard.FetchGuard`
  (``FETCH_ALLOW_HOSTS`` exempts chosen hosts). The host is resolved once, every address is
  checked (private, loopback, link-local, multicast, reserved, unspecified, shared, and IPv6
  forms embedding such IPv4 addresses), and the connection goes to the address that was
  checked (the URL is rewritten to the IP, with the original ``Host`` header and TLS server
  name). A second DNS answer cannot sneak in (DNS rebinding).
* Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each hop checked again.
* The body is streamed and abandoned past ``max_bytes``; the whole fetch has one deadline.

Every failure is a :class:`~app.providers.base.ProviderError` with a message fit for the job's
``error`` field: permanent for bad or forbidden URLs and 4xx answers, retryable for timeouts,
5xx and dropped connections.
"""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from app.providers.base import PermanentProviderError, ProviderError, RetryableProviderError
from app.providers.guard import (
    MAX_ADDRESSES_TRIED,
    FetchGuard,
    IPAddress,
    is_forbidden_address,
    pinned_request_args,
)
from app.storage import InvalidStorageKey, MediaURLResolver, Storage, StorageNotFound

__all__ = ["MAX_REDIRECTS", "FetchGuard", "fetch_source_image", "is_forbidden_address"]

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_CHUNK = 64 * 1024
_USER_AGENT = "daygen-queue/0.1 (source image fetch)"


async def fetch_source_image(
    url: str,
    *,
    storage: Storage,
    allow_private: bool = False,
    max_bytes: int = 20 * 1024 * 1024,
    timeout: float = 15.0,  # part of the contract; enforced with asyncio.timeout
    session: aiohttp.ClientSession | None = None,
    guard: FetchGuard | None = None,
) -> bytes:
    """The bytes behind a job's source image URL, fetched safely (see the module docstring).

    ``guard`` (``FetchGuard.from_settings``) decides which hosts may be on private
    addresses (``FETCH_ALLOW_HOSTS``); ``allow_private`` lifts the address checks for every
    host (development, tests against a local server). The scheme, syntax, size, redirect and
    time limits always apply. A ``session`` passed in is used
    as is and not closed; it should not use an HTTP proxy (``trust_env``), which would resolve
    hosts itself. Raises :class:`~app.providers.base.PermanentProviderError` or
    :class:`~app.providers.base.RetryableProviderError`.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(
                url,
                storage=storage,
                guard=_guard(guard, allow_private),
                max_bytes=max_bytes,
                session=session,
            )
    except TimeoutError:
        raise RetryableProviderError(
            f"source image fetch timed out after {timeout:g}s: {_redact(url)}"
        ) from None


async def _fetch(
    url: str,
    *,
    storage: Storage,
    guard: FetchGuard,
    max_bytes: int,
    session: aiohttp.ClientSession | None,
) -> bytes:
    own_session = session is None
    if session is None:
        session = aiohttp.ClientSession(
            trust_env=False, connector=aiohttp.TCPConnector(limit=MAX_ADDRESSES_TRIED)
        )
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target = _parse(current)  # first: storage's own URL matching assumes a valid URL
            key = _own_key(storage, current)
            if key is not None:
                return await _load_own(storage, key, max_bytes)
            addresses = await guard.addresses(target, what="source image")
            location = await _get(session, target, addresses, max_bytes)
            if isinstance(location, bytes):
                return location
            current = location
        raise PermanentProviderError(
            f"source image unreachable: more than {MAX_REDIRECTS} redirects from {_redact(url)}"
        )
    finally:
        if own_session:
            await session.close()


def _own_key(storage: Storage, url: str) -> str | None:
    if isinstance(storage, MediaURLResolver):
        return storage.key_for_url(url)
    return None


async def _load_own(storage: Storage, key: str, max_bytes: int) -> bytes:
    try:
        data = await storage.load(key)
    except (StorageNotFound, KeyError, InvalidStorageKey):
        raise PermanentProviderError(f"source image not found in storage: {key}") from None
    if len(data) > max_bytes:
        raise PermanentProviderError(f"source image is larger than the limit of {max_bytes} bytes")
    return data


def _guard(guard: FetchGuard | None, allow_private: bool) -> FetchGuard:
    if guard is None:
        return FetchGuard(allow_private=allow_private)
    if allow_private and not guard.allow_private:
        return FetchGuard(guard.allow_hosts, allow_private=True)
    return guard


def _parse(url: str) -> URL:
    """The URL parsed by the one parser (``app.providers.urls``): a redirect's target is held
    to the same rules as the URL the job was created with."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        raise PermanentProviderError(
            f"source image URL must use http or https, not {scheme or 'no scheme'!r}"
        )
    return FetchGuard(allow_private=True).check_url(url, what="source image URL")


async def _get(
    session: aiohttp.ClientSession, target: URL, addresses: list[IPAddress], max_bytes: int
) -> bytes | str:
    """GET ``target`` through the checked addresses: the body, or the next URL of a redirect."""
    last_error: Exception | None = None
    for ip in addresses[:MAX_ADDRESSES_TRIED]:
        pinned, kwargs = pinned_request_args(target, ip)
        kwargs["headers"] = {
            "Host": target.host_port_subcomponent or str(target.host),
            "Accept": "image/*, */*;q=0.5",
            "User-Agent": _USER_AGENT,
        }
        try:
            async with session.get(pinned, **kwargs) as resp:
                return await _read(resp, target, max_bytes)
        except ProviderError:
            raise
        except aiohttp.ClientSSLError as exc:
            raise PermanentProviderError(
                f"source image unreachable: TLS error with {target.host}: {exc}"
            ) from None
        except aiohttp.ServerTimeoutError as exc:
            raise RetryableProviderError(
                f"source image fetch from {target.host} timed out: {exc}"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            last_error = exc  # try the host's next address
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise RetryableProviderError(
                f"source image download from {target.host} was interrupted: {exc}"
            ) from None
        except aiohttp.ClientError as exc:
            raise PermanentProviderError(
                f"source image unreachable: {_redact(str(target))}: {exc}"
            ) from None
    reason = getattr(last_error, "os_error", None) or last_error
    raise PermanentProviderError(
        f"source image unreachable: cannot connect to {target.host_port_subcomponent}: {reason}"
    )


async def _read(resp: aiohttp.ClientResponse, target: URL, max_bytes: int) -> bytes | str:
    status = resp.status
    if status in _REDIRECTS:
        location = resp.headers.get("Location")
        if not location:
            raise PermanentProviderError(
                f"source image unreachable: HTTP {status} redirect without a Location"
            )
        try:
            return str(target.join(URL(location)))
        except ValueError:
            raise PermanentProviderError(
                f"source image unreachable: invalid redirect Location {location!r}"
            ) from None
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise RetryableProviderError(
            f"source image server answered HTTP {status} for {_redact(str(target))}"
        )
    if not 200 <= status < 300:
        raise PermanentProviderError(
            f"source image unreachable: HTTP {status} for {_redact(str(target))}"
        )
    too_big = f"source image is larger than the limit of {max_bytes} bytes"
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise PermanentProviderError(too_big)
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise PermanentProviderError(too_big)
    if not body:
        raise PermanentProviderError(f"source image is empty: {_redact(str(target))}")
    return bytes(body)


def _redact(url: str) -> str:
    """The URL without query, fragment or credentials (signed URLs carry secrets there)."""
    try:
        u = URL(url)
        return str(u.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<invalid URL>"
