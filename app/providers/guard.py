"""``FetchGuard``: the one SSRF policy for every request the service makes to a URL a user or
a provider chose (source images, webhooks, provider results).

A guard is built from settings (:meth:`FetchGuard.from_settings`) and answers three
questions: is this URL acceptable at all (:meth:`check_url`, synchronous, usable at request
validation), which addresses may a request to it connect to (:meth:`addresses`: every address
of the host, all of them checked), and, for callers that just want a response,
:meth:`request` does both and follows redirects by hand, checking each hop and connecting to
the checked address (so a second DNS answer cannot sneak in).

``FETCH_ALLOW_HOSTS`` lists hosts (``host`` for any port, ``host:port`` for one) exempted
from the private-address refusal: a test's fake on ``127.0.0.1:8081``, or an internal
service of a private deployment. Everything else (scheme, credentials, URL syntax, limits)
still applies to them. ``SOURCE_FETCH_ALLOW_PRIVATE`` lifts the address refusal for every
host (development only).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from app.providers.base import PermanentProviderError, RetryableProviderError
from app.providers.urls import InvalidURL, host_key, parse_http_url

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = [
    "FetchGuard",
    "FetchRefused",
    "IPAddress",
    "is_forbidden_address",
    "parse_allow_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_ADDRESSES_TRIED = 3


class FetchRefused(PermanentProviderError):
    """A URL the guard will not connect to (bad syntax, or a private address not allowed)."""


def is_forbidden_address(ip: IPAddress) -> bool:
    """Whether a request may not connect to ``ip`` (anything but a public unicast address).

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


def parse_allow_host(entry: str) -> tuple[str, int | None]:
    """One ``FETCH_ALLOW_HOSTS`` entry as ``(host, port or None)``: ``example.internal``,
    ``127.0.0.1:8081``, ``[::1]:9000`` or ``::1``; the host in lowercase IDNA form."""
    text = entry.strip()
    if not text:
        raise ValueError("an empty entry")
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address
    try:
        url = parse_http_url(f"http://{text}/")
    except InvalidURL as exc:
        raise ValueError(f"{entry!r} is not host or host:port ({exc})") from None
    if url.path != "/" or url.query_string or url.fragment:
        raise ValueError(f"{entry!r} is not host or host:port")
    host, _ = host_key(url)
    return host, url.explicit_port


@dataclass(frozen=True, slots=True)
class FetchGuard:
    """Which hosts a request may reach; see the module docstring."""

    allow_hosts: frozenset[tuple[str, int | None]] = frozenset()
    """Hosts exempt from the private-address refusal (port ``None``: any port)."""
    allow_private: bool = False
    """Lift the private-address refusal for every host (development only)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchGuard:
        return cls.of(settings.fetch_allow_hosts, allow_private=settings.source_fetch_allow_private)

    @classmethod
    def of(cls, allow_hosts: Iterable[str] = (), *, allow_private: bool = False) -> FetchGuard:
        return cls(frozenset(parse_allow_host(e) for e in allow_hosts), allow_private)

    def exempts(self, url: URL) -> bool:
        """Whether requests to ``url`` skip the private-address refusal."""
        if self.allow_private:
            return True
        host, port = host_key(url)
        return (host, None) in self.allow_hosts or (host, port) in self.allow_hosts

    def check_url(self, url: str | URL, *, what: str = "URL") -> URL:
        """The parsed URL if it may be requested as far as can be told without DNS (syntax,
        and a literal private address not exempted); :class:`FetchRefused` otherwise."""
        try:
            target = parse_http_url(str(url))
        except InvalidURL as exc:
            raise FetchRefused(f"{what} {exc}") from None
        literal = _literal_ip(target)
        if literal is not None and not self.exempts(target) and is_forbidden_address(literal):
            raise FetchRefused(
                f"{what} points at a private or reserved address ({literal}); refusing it"
            )
        return target

    async def addresses(self, url: URL, *, what: str = "URL") -> list[IPAddress]:
        """Every address of ``url``'s host, checked: all of them must be public unless the
        host is exempt (one bad answer refuses the lot: the client could pick it)."""
        host = url.raw_host or ""
        literal = _literal_ip(url)
        addresses = [literal] if literal is not None else await _lookup(host, url.port, what)
        if not self.exempts(url):
            for ip in addresses:
                if is_forbidden_address(ip):
                    raise FetchRefused(
                        f"{what} address is private or reserved ({url.host} -> {ip});"
                        " refusing to connect"
                    )
        return addresses

    @asynccontextmanager
    async def request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        max_redirects: int = 5,
        timeout: aiohttp.ClientTimeout | None = None,
        what: str = "URL",
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response to ``method url``, every hop checked and pinned to a checked address.

        Redirects are followed (up to ``max_redirects``; ``0`` hands a 3xx back as it is);
        a 303, and a 301/302 of a POST, continue as a body-less GET, as browsers do. The
        ``session`` must not use a proxy (``trust_env=False``). Connection failures raise
        ``aiohttp.ClientError`` as aiohttp does; refusals raise :class:`FetchRefused`.
        """
        current = url
        for hop in range(max_redirects + 1):
            target = self.check_url(current, what=what)
            ips = await self.addresses(target, what=what)
            response = await _send(session, method, target, ips, headers, data, timeout)
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or hop == max_redirects or not location:
                try:
                    yield response
                finally:
                    response.release()
                return
            response.release()
            try:
                current = str(target.join(URL(location)))
            except ValueError:
                raise FetchRefused(f"{what} redirected to an invalid Location") from None
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, data = "GET", None
        raise AssertionError("unreachable")  # pragma: no cover


def _literal_ip(url: URL) -> IPAddress | None:
    try:
        return ipaddress.ip_address(url.raw_host or "")
    except ValueError:
        return None


def pinned_request_args(target: URL, ip: IPAddress) -> tuple[URL, dict[str, Any]]:
    """The URL to connect to ``ip`` instead of ``target``'s host, and the request arguments
    that keep the original ``Host`` header and TLS server name."""
    kwargs: dict[str, Any] = {"allow_redirects": False}
    if target.scheme == "https":
        kwargs["server_hostname"] = target.raw_host
    return target.with_host(str(ip)), kwargs


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    target: URL,
    ips: list[IPAddress],
    headers: Mapping[str, str] | None,
    data: bytes | None,
    timeout: aiohttp.ClientTimeout | None,
) -> aiohttp.ClientResponse:
    last: aiohttp.ClientConnectorError | None = None
    sent = dict(headers or {})
    sent["Host"] = target.host_port_subcomponent or str(target.raw_host)
    for ip in ips[:MAX_ADDRESSES_TRIED]:
        pinned, kwargs = pinned_request_args(target, ip)
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            return await session.request(method, pinned, headers=sent, data=data, **kwargs)
        except aiohttp.ClientConnectorError as exc:
            last = exc  # the host's next address
    assert last is not None
    raise last


async def _lookup(host: str, port: int | None, what: str) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise RetryableProviderError(
                f"{what} host {host!r} could not be resolved right now: {exc.strerror}"
            ) from None
        raise PermanentProviderError(
            f"{what} unreachable: host {host!r} cannot be resolved ({exc.strerror})"
        ) from None
    except UnicodeError:
        raise FetchRefused(f"{what} host is not a valid domain name") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise PermanentProviderError(f"{what} unreachable: host {host!r} has no address")
    return addresses
