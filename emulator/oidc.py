"""A local OIDC issuer for tasks with ``oidc_token``: RS256 ID tokens with Google's claim set.

The emulator cannot mint Google-signed tokens, so it signs with its own RSA key and publishes
the public half as a JWKS (served on the HTTP port next to a discovery document). A receiver
verifies exactly as it verifies Google's tokens, pointed at this JWKS instead of Google's.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME_SECONDS = 3600
# A token is reused while it has this much life left: signing costs ~1 ms, and Google's own
# tokens are cached by their users the same way.
_REUSE_MARGIN_SECONDS = 3000


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def numeric_id(email: str) -> str:
    """A stable 21-digit "unique ID" for a service account, like Google's ``sub``/``azp``."""
    digest = hashlib.sha256(email.encode()).digest()
    return str(10**20 + int.from_bytes(digest[:8], "big") % (9 * 10**20))


class OidcIssuer:
    """Implements the engine's ``TokenMinter``. ``issuer`` defaults to Google's, so receivers
    keep their issuer check; ``jwks()`` is what ``jwks_uri`` serves."""

    def __init__(
        self, *, issuer: str = GOOGLE_ISSUER, key: rsa.RSAPrivateKey | None = None
    ) -> None:
        self.issuer = issuer
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = self._key.public_key().public_numbers()
        self.kid = hashlib.sha256(f"{public.n}:{public.e}".encode()).hexdigest()[:40]
        self._jwk: dict[str, str] = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(public.n),
            "e": _b64(public.e),
        }
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    def mint(self, *, service_account_email: str, audience: str) -> str:
        now = time.time()
        key = (service_account_email, audience)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < TOKEN_LIFETIME_SECONDS - _REUSE_MARGIN_SECONDS:
            return cached[1]
        issued = int(now)
        unique_id = numeric_id(service_account_email)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "email": service_account_email,
            "email_verified": True,
            "sub": unique_id,
            "azp": unique_id,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, token)
        return token

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [dict(self._jwk)]}

    def discovery(self, base_url: str) -> dict[str, Any]:
        """The OpenID discovery document, pointing ``jwks_uri`` at this server."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base_url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
        }
