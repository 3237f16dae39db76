"""Who is calling: user JWTs (HS256 or RS256 via JWKS) and Cloud Tasks' OIDC tokens.

The algorithm is pinned by configuration, never read from the token, so ``alg: none`` and
algorithm-confusion tokens are refused; ``exp`` is required. The user id is ``sub``.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from app.settings import Settings

USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@|-]{1,128}$")
# A verified token is remembered (until its exp, at most this long): a client sends the same
# token with every request, and verifying it is a large part of a cheap request's cost.
VERIFIED_TOKEN_TTL_SECONDS = 300.0
_VERIFIED_TOKENS_LIMIT = 10_000


class AuthError(Exception):
    """The credentials are missing or invalid; the message says which (safe to show)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    expires_at: datetime


class UserAuthenticator:
    """Verifies user bearer tokens."""

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks: jwt.PyJWKClient | None = None
        self._secret: str | None = None
        self._verified: dict[str, tuple[float, Principal]] = {}
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)
            self._algorithms = ["RS256"]
        else:
            assert settings.jwt_secret is not None  # settings fill a dev default
            self._secret = settings.jwt_secret.get_secret_value()
            self._algorithms = ["HS256"]

    async def verify(self, token: str) -> Principal:
        """The caller behind ``token``, or ``AuthError``."""
        now = time.time()
        known = self._verified.get(token)
        if known is not None and known[0] > now:
            return known[1]
        principal = await self._verify(token)
        if len(self._verified) >= _VERIFIED_TOKENS_LIMIT:
            self._verified.clear()
        until = min(principal.expires_at.timestamp(), now + VERIFIED_TOKEN_TTL_SECONDS)
        self._verified[token] = (until, principal)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            key: Any
            if self._jwks is not None:
                # PyJWKClient fetches over blocking urllib (and caches): keep it off the loop.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing_key.key
            else:
                key = self._secret
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise AuthError(f"invalid token: {token_problem(exc)}") from None
        except (OverflowError, ValueError, TypeError):  # e.g. "exp": 1e400
            raise AuthError("invalid token: 'exp' must be a whole number of seconds") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not USER_ID_PATTERN.match(subject):
            raise AuthError("invalid token: 'sub' must be a user id of 1-128 safe characters")
        # An 'exp' past year 9999 is valid JWT but not a datetime: it is remembered as 9999.
        expires = min(int(claims["exp"]), MAX_EXP)
        return Principal(subject, datetime.fromtimestamp(expires, UTC))


MAX_EXP = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())


def token_problem(exc: Exception) -> str:
    """What is wrong with a token, for people: PyJWT's messages describe its own parsing
    (``Not enough segments``, ``'utf-8' codec can't decode``), not what the sender did."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the '{exc.claim}' claim is required"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the signature does not match (wrong secret or key, or an altered token)"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the signing algorithm is not the one this service accepts"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the 'aud' claim is not this service's audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the 'iss' claim is not the expected issuer"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet ('nbf' or 'iat' in the future)"
    if isinstance(exc, jwt.PyJWKClientError):
        return "no signing key of the issuer matches the token's 'kid'"
    if isinstance(exc, jwt.DecodeError) and "claim" in str(exc):
        return str(exc)  # PyJWT's claim messages are written for people
    if isinstance(exc, jwt.DecodeError):
        return "not a JWT (three base64url parts separated by dots, with a JSON header and payload)"
    return "the token's claims are malformed"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer ...`` header, or ``AuthError``."""
    if not authorization:
        raise AuthError("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def issue_dev_token(
    settings: Settings,
    user_id: str,
    *,
    ttl: timedelta = timedelta(days=1),
    now: datetime | None = None,
) -> str:
    """An HS256 token for ``user_id`` signed with ``JWT_SECRET`` (``python -m app token``)."""
    if settings.jwt_secret is None:
        raise ValueError("JWT_SECRET is not set: tokens come from the JWKS issuer")
    if not USER_ID_PATTERN.match(user_id):
        raise ValueError("user id must be 1-128 characters of A-Z a-z 0-9 . _ : @ | -")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": issued + ttl}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


class InternalAuthenticator:
    """Verifies that a task delivery comes from our queue: the internal key (constant-time
    compare) or, when ``OIDC_AUDIENCE`` is set, a Cloud Tasks OIDC token."""

    def __init__(self, settings: Settings) -> None:
        key = settings.internal_api_key
        self._key = key.get_secret_value().encode() if key is not None else None
        self._audience = settings.oidc_audience
        self._issuer = settings.oidc_issuer
        self._email = settings.oidc_service_account_email
        self._jwks = (
            jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True) if self._audience else None
        )

    async def check(self, api_key: str | None, authorization: str | None) -> int | None:
        """None when the delivery is authentic, else the HTTP status to answer (401: no
        credentials; 403: wrong ones)."""
        if api_key is not None:
            if self._key is not None and hmac.compare_digest(api_key.encode(), self._key):
                return None
            return 403
        if authorization is None:
            return 401
        if self._jwks is None:
            return 403
        try:
            token = bearer_token(authorization)
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "aud", "iss"]},
            )
        except (AuthError, jwt.InvalidTokenError, jwt.PyJWKClientError):
            return 403
        if self._email is not None and claims.get("email") != self._email:
            return 403
        return None

    async def refusal(self, headers: Mapping[str, str]) -> web.Response | None:
        """The answer to a task delivery that is not the queue's (401 or 403, JSON), or
        ``None`` when ``X-Internal-Api-Key`` or the ``Authorization`` token is good."""
        denied = await self.check(headers.get("X-Internal-Api-Key"), headers.get("Authorization"))
        if denied is None:
            return None
        message = "missing credentials" if denied == 401 else "invalid credentials"
        return web.json_response({"error": "unauthorized", "message": message}, status=denied)
