"""The one parser of user-supplied http(s) URLs: request validation and every fetch use it.

A URL that passes here has an ``http`` or ``https`` scheme, no credentials, a port in
1-65535 and a host that is either an IP literal (canonical dotted-quad IPv4 or bracketed
IPv6) or a DNS name whose IDNA form fits DNS (labels of 1-63 letters, digits, ``-`` or ``_``,
253 characters in all). So a URL that cannot be fetched is refused when the job is created,
with a message naming what is wrong, instead of failing after the job was accepted and
charged. Forms a resolver would read as an address in disguise (``0x7f.1``, ``2130706433``,
``127.1``) are refused outright: a real host never needs them.
"""

from __future__ import annotations

import ipaddress
import re

from yarl import URL

__all__ = ["MAX_URL_LENGTH", "InvalidURL", "host_key", "parse_http_url"]

MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidURL(ValueError):
    """A URL that cannot be fetched; the message is fit to show the user."""


def parse_http_url(value: object) -> URL:
    """``value`` as a :class:`yarl.URL` if it is a fetchable http(s) URL, else
    :class:`InvalidURL` saying why (never an exception text from a library)."""
    if not isinstance(value, str):
        raise InvalidURL("must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidURL(f"must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(value):
        raise InvalidURL("must not contain spaces, control characters or backslashes")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidURL("must be an http:// or https:// URL")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise InvalidURL("must not contain credentials (user:password@)")
    try:
        url = URL(value)
    except (ValueError, UnicodeError) as exc:
        raise InvalidURL(_yarl_problem(exc, authority)) from None
    if not url.raw_host:
        raise InvalidURL("has no host")
    port = url.explicit_port
    if port is not None and not 1 <= port <= 65535:
        raise InvalidURL("port must be between 1 and 65535")
    _check_host(url.raw_host)
    return url


def host_key(url: URL) -> tuple[str, int]:
    """``(host, port)`` of a parsed URL as allow-lists compare them: the host lowercased in
    its IDNA (ASCII) form, the port explicit or the scheme's default."""
    host = (url.raw_host or "").lower().rstrip(".")
    port = url.explicit_port or _DEFAULT_PORTS.get(url.scheme, 0)
    return host, port


def _check_host(host: str) -> None:
    if ":" in host:  # yarl only lets a bracketed IPv6 literal through here
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidURL("host is not a valid IPv6 address") from None
        if "%" in host:
            raise InvalidURL("host must not carry an IPv6 zone (%...)")
        return
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise InvalidURL("has no host")
    if len(name) > MAX_HOST_LENGTH:
        raise InvalidURL(f"host must be at most {MAX_HOST_LENGTH} characters")
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise InvalidURL("host is not a valid IPv4 address (use the a.b.c.d form)") from None
        return
    for label in labels:
        if not label:
            raise InvalidURL("host has an empty label (two dots in a row)")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidURL(f"host labels must be at most {MAX_LABEL_LENGTH} characters")
        if not _LABEL.fullmatch(label):
            raise InvalidURL(
                "host labels may hold only letters, digits, '-' and '_', not at either end"
            )


def _yarl_problem(exc: Exception, authority: str) -> str:
    text = str(exc).lower()
    if "port" in text:
        return "port must be between 1 and 65535"
    if isinstance(exc, UnicodeError) or "idna" in text or "codec" in text:
        return "host is not a valid internationalised domain name"
    if authority.startswith("["):
        return "host is not a valid IPv6 address"
    return "is not a valid URL"
