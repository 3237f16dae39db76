"""Fetching a job's source image (for upscale and image-to-video) without becoming an SSRF hole.

A source URL is chosen by the user, and the worker fetching it sits inside our network, so a
naive ``GET`` would let anyone read cloud metadata (``169.254.169.254``), admin ports on
``localhost`` or other internal services. The rules here:

* Our own ``/media/`` URLs are read straight from storage: no HTTP, no address checks, and a
  generated image can be upscaled or animated even when the service cannot reach itself.
* Only ``http``/``https``, no credentials in the URL.
* The host is resolved once, every address is checked (private, loopback, link-local,
  multicast, reserved, unspecified, shared, and IPv6 forms embedding such IPv4 addresses), and
  the connection goes to the address that was checked (the URL is rewritten to the IP, with
  the original ``Host`` header and TLS server name). A second DNS answer cannot sneak in
  (DNS rebinding).
* Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each hop checked again.
* The body is streamed and abandoned past ``max_bytes``; the whole fetch has one deadline.

Every failure is a :class:`~app.providers.base.ProviderError` with a message fit for the job's
``error`` field: permanent for bad or forbidden URLs and 4xx answers, retryable for timeouts,
5xx and dropped connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import aiohttp
from yarl import URL

from app.providers.base import PermanentProviderError, ProviderError, RetryableProviderError
from app.storage import InvalidStorageKey, MediaURLResolver, Storage, StorageNotFound

__all__ = ["MAX_REDIRECTS", "fetch_source_image", "is_forbidden_address"]

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_CHUNK = 64 * 1024
_MAX_ADDRESSES_TRIED = 3
_USER_AGENT = "daygen-queue/0.1 (source image fetch)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_forbidden_address(ip: IPAddress) -> bool:
    """Whether a source fetch may not connect to ``ip`` (anything but a public unicast address).

    IPv6 addresses that embed an IPv4 one (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64) are
    judged by the embedded address too, so ``::ffff:127.0.0.1`` is loopback.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the socket really talks IPv4 to this address
            return is_forbidden_address(ip.ipv4_mapped)
        embedded: list[ipaddress.IPv4Address] = []
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(is_forbidden_address(v4) for v4 in embedded):
            return True
        if ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def fetch_source_image(
    url: str,
    *,
    storage: Storage,
    allow_private: bool = False,
    max_bytes: int = 20 * 1024 * 1024,
    timeout: float = 15.0,  # part of the contract; enforced with asyncio.timeout
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """The bytes behind a job's source image URL, fetched safely (see the module docstring).

    ``allow_private`` lifts the address checks (development, tests against a local server);
    the scheme, size, redirect and time limits still apply. A ``session`` passed in is used
    as is and not closed; it should not use an HTTP proxy (``trust_env``), which would resolve
    hosts itself. Raises :class:`~app.providers.base.PermanentProviderError` or
    :class:`~app.providers.base.RetryableProviderError`.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(
                url,
                storage=storage,
                allow_private=allow_private,
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
    allow_private: bool,
    max_bytes: int,
    session: aiohttp.ClientSession | None,
) -> bytes:
    own_session = session is None
    if session is None:
        session = aiohttp.ClientSession(
            trust_env=False, connector=aiohttp.TCPConnector(limit=_MAX_ADDRESSES_TRIED)
        )
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            key = _own_key(storage, current)
            if key is not None:
                return await _load_own(storage, key, max_bytes)
            target = _parse(current)
            addresses = await _resolve(target, allow_private)
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


def _parse(url: str) -> URL:
    try:
        target = URL(url)
    except (ValueError, TypeError) as exc:
        raise PermanentProviderError(f"source image URL is invalid: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise PermanentProviderError(
            f"source image URL must use http or https, not {target.scheme or 'no scheme'!r}"
        )
    if not target.host:
        raise PermanentProviderError(f"source image URL has no host: {_redact(url)}")
    if target.user is not None or target.password is not None:
        raise PermanentProviderError("source image URL must not contain credentials")
    return target


async def _resolve(target: URL, allow_private: bool) -> list[IPAddress]:
    """Every address of the target host, refusing the lot if any of them is forbidden."""
    host = target.host
    assert host is not None  # checked by _parse
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await _lookup(host, target.port)
    if not allow_private:
        for ip in addresses:
            if is_forbidden_address(ip):
                raise PermanentProviderError(
                    f"source image address is private or reserved ({host} -> {ip});"
                    " refusing to fetch it"
                )
    return addresses


async def _lookup(host: str, port: int | None) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise RetryableProviderError(
                f"source image host {host!r} could not be resolved right now: {exc.strerror}"
            ) from None
        raise PermanentProviderError(
            f"source image unreachable: host {host!r} cannot be resolved ({exc.strerror})"
        ) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise PermanentProviderError(f"source image unreachable: host {host!r} has no address")
    return addresses


async def _get(
    session: aiohttp.ClientSession, target: URL, addresses: list[IPAddress], max_bytes: int
) -> bytes | str:
    """GET ``target`` through the checked addresses: the body, or the next URL of a redirect."""
    last_error: Exception | None = None
    for ip in addresses[:_MAX_ADDRESSES_TRIED]:
        pinned = target.with_host(str(ip))
        kwargs: dict[str, Any] = {
            "headers": {
                "Host": target.host_port_subcomponent or str(target.host),
                "Accept": "image/*, */*;q=0.5",
                "User-Agent": _USER_AGENT,
            },
            "allow_redirects": False,
        }
        if target.scheme == "https":
            kwargs["server_hostname"] = target.host
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
