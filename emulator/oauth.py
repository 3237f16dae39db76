"""OAuth access tokens for tasks with ``oauth_token``: opaque bearer tokens the emulator mints.

They are **not** Google tokens and no Google API accepts them: Cloud Tasks sends an OAuth2
access token of the service account, which only Google can issue. What the emulator keeps is
the shape of the exchange: ``Authorization: Bearer <token>`` on the delivery, one token per
service account and scope reused while it is valid (an hour, like Google's), and a
``tokeninfo`` lookup on the HTTP port (``/oauth2/v3/tokeninfo?access_token=...``, Google's
path) so a receiver can check which account and scope a token stands for.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from emulator.model import OAuthToken
from emulator.oidc import numeric_id

DEFAULT_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_LIFETIME_SECONDS: Final = 3600
# Google's access tokens start with "ya29."; these say plainly that they are not Google's.
TOKEN_PREFIX: Final = "ya29.emulator-"
_REUSE_MARGIN_SECONDS: Final = 300


class AccessTokens:
    """Mints and remembers opaque access tokens, by service account and scope."""

    def __init__(self) -> None:
        self._by_grant: dict[tuple[str, str], tuple[float, str]] = {}
        self._grants: dict[str, tuple[str, str, float]] = {}  # token -> (email, scope, expiry)

    def mint(self, token: OAuthToken) -> str:
        scope = token.scope or DEFAULT_SCOPE
        key = (token.service_account_email, scope)
        now = time.time()
        cached = self._by_grant.get(key)
        if cached is not None and cached[0] - now > _REUSE_MARGIN_SECONDS:
            return cached[1]
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expiry = now + TOKEN_LIFETIME_SECONDS
        if len(self._grants) > 10_000:  # a long run: forget the expired ones
            self._grants = {k: v for k, v in self._grants.items() if v[2] > now}
        self._by_grant[key] = (expiry, value)
        self._grants[value] = (token.service_account_email, scope, expiry)
        return value

    def info(self, value: str) -> dict[str, Any] | None:
        """Google's tokeninfo answer for a token this emulator minted and that is still valid,
        else None."""
        grant = self._grants.get(value)
        if grant is None:
            return None
        email, scope, expiry = grant
        remaining = int(expiry - time.time())
        if remaining <= 0:
            return None
        unique_id = numeric_id(email)
        return {
            "azp": unique_id,
            "aud": unique_id,
            "sub": unique_id,
            "scope": scope,
            "exp": str(int(expiry)),
            "expires_in": str(remaining),
            "email": email,
            "email_verified": "true",
            "access_type": "online",
        }
