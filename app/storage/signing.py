"""V4 signed URLs for Cloud Storage objects, signed by a key file or by IAM ``signBlob``.

The URL itself is built by ``google-cloud-storage`` (``Blob.generate_signed_url``, version
``v4``): only the signature is ours to provide, through a ``google.auth.crypt.Signer``:

* :class:`KeyFileIdentity`: a service-account JSON key (``STORAGE_SIGNING_KEY_FILE``, or
  Application Default Credentials that are such a key); signing is local RSA, ~1 ms.
* :class:`IamSignBlobIdentity`: Cloud Run and other metadata-server runtimes have no private
  key; ``google.auth.iam.Signer`` asks the IAM Credentials API to sign
  (``POST https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:signBlob``).
  The runtime account needs ``roles/iam.serviceAccountTokenCreator`` on itself. That call is
  blocking HTTP, so it runs in a worker thread.
* :class:`EphemeralIdentity`: under ``STORAGE_EMULATOR_HOST`` with nothing configured, a key
  generated at start-up: the emulators check neither signatures nor expiry, so any key will do.

Signed URLs are remembered per object for half their lifetime (:class:`UrlSigner`), so a job
viewed often costs one signature (one ``signBlob`` round trip on Cloud Run) per half-TTL.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import google.auth
import google.auth.credentials
from google.auth import crypt, iam
from google.auth.transport import Request as AuthRequest
from google.oauth2 import service_account

__all__ = [
    "EphemeralIdentity",
    "IamSignBlobIdentity",
    "KeyFileIdentity",
    "SigningIdentity",
    "UrlSigner",
    "emulator_endpoint",
]

log = logging.getLogger(__name__)

# google-auth and google-cloud-storage ship without complete annotations: call them as Any.
_ServiceAccount: Any = service_account.Credentials
_IamSigner: Any = iam.Signer
_RSASigner: Any = crypt.RSASigner
_Anonymous: Any = google.auth.credentials.AnonymousCredentials

GOOGLE_STORAGE_ENDPOINT = "https://storage.googleapis.com"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
MAX_V4_TTL = timedelta(days=7)  # Cloud Storage refuses longer V4 lifetimes
_CACHE_SIZE = 10_000


def emulator_endpoint(host: str) -> str:
    """``STORAGE_EMULATOR_HOST`` as a base URL: Google's clients accept it with or without
    ``http://``."""
    host = host.strip().rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


class SigningIdentity(Protocol):
    """Who signs, and with what."""

    blocking: bool
    """Signing does network I/O (run it in a thread)."""

    def signer(self) -> tuple[crypt.Signer, str]:
        """(the signer, the service account's email). May block the first time."""
        ...


class KeyFileIdentity:
    """A service-account key: its private key signs, locally."""

    blocking = False

    def __init__(self, credentials: service_account.Credentials) -> None:
        self._credentials = credentials

    @classmethod
    def from_file(cls, path: Path | str) -> KeyFileIdentity:
        return cls(_ServiceAccount.from_service_account_file(str(path)))

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> KeyFileIdentity:
        return cls(_ServiceAccount.from_service_account_info(info))

    def signer(self) -> tuple[crypt.Signer, str]:
        return self._credentials.signer, self._credentials.signer_email


class IamSignBlobIdentity:
    """IAM ``signBlob`` on behalf of ``email`` (default: the runtime's own account).

    ``credentials`` and ``request`` default to Application Default Credentials and the
    ``requests`` transport; tests pass their own transport.
    """

    blocking = True

    def __init__(
        self,
        email: str | None = None,
        *,
        credentials: google.auth.credentials.Credentials | None = None,
        request: AuthRequest | None = None,
    ) -> None:
        self._email = email
        self._credentials = credentials
        self._request = request
        self._signer: crypt.Signer | None = None

    def signer(self) -> tuple[crypt.Signer, str]:
        if self._signer is None or self._email is None:
            request = self._request or _requests_transport()
            credentials = self._credentials
            if credentials is None:
                credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            if isinstance(credentials, google.auth.credentials.Signing) and self._email in (
                None,
                credentials.signer_email,
            ):
                # Application Default Credentials that are a key file: sign locally.
                self._email = credentials.signer_email
                self._signer = credentials.signer
                return credentials.signer, credentials.signer_email
            if self._email is None:
                self._email = _runtime_email(credentials, request)
            self._signer = _IamSigner(request, credentials, self._email)
        return self._signer, self._email


class EphemeralIdentity:
    """A throw-away RSA key, for emulators (which verify no signature)."""

    blocking = False
    email = "daygen-dev@emulator.invalid"

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = _RSASigner.from_string(pem)

    def signer(self) -> tuple[crypt.Signer, str]:
        return self._signer, self.email


class UrlSigner:
    """V4 signed GET URLs valid for ``ttl``, remembered per object for half of it.

    ``endpoint`` is ``https://storage.googleapis.com`` or the emulator's base URL. ``now``
    (seconds) only decides when a remembered URL is too old to hand out again; the URL's own
    ``X-Goog-Date`` is the wall clock, as Cloud Storage will judge it.
    """

    def __init__(
        self,
        identity: SigningIdentity,
        *,
        ttl: timedelta,
        endpoint: str = GOOGLE_STORAGE_ENDPOINT,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not timedelta(seconds=1) <= ttl <= MAX_V4_TTL:
            raise ValueError(f"a V4 signed URL lives 1 s to 7 days, not {ttl}")
        self.identity = identity
        self.ttl = ttl
        self.endpoint = endpoint.rstrip("/")
        self._now = now
        self._client: Any = None
        self._cache: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    async def sign(self, bucket: str, object_name: str) -> str:
        """A signed URL of ``gs://bucket/object_name`` (remembered or fresh)."""
        cache_key = (bucket, object_name)
        hit = self._cache.get(cache_key)
        now = self._now()
        if hit is not None and now - hit[0] < self.ttl.total_seconds() / 2:
            self._cache.move_to_end(cache_key)
            return hit[1]
        if self.identity.blocking:
            url = await asyncio.to_thread(self._sign, bucket, object_name)
        else:
            url = self._sign(bucket, object_name)
        self._cache[cache_key] = (now, url)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return url

    def _sign(self, bucket: str, object_name: str) -> str:
        gcs: Any = importlib.import_module("google.cloud.storage")  # heavy: only to sign

        signer, email = self.identity.signer()
        if self._client is None:
            self._client = gcs.Client(project="daygen-signing", credentials=_Anonymous())
        blob = gcs.Bucket(self._client, bucket).blob(object_name)
        url: str = blob.generate_signed_url(
            version="v4",
            expiration=self.ttl,
            method="GET",
            api_access_endpoint=self.endpoint,
            credentials=_SignerCredentials(signer, email),
        )
        return url


class _SignerCredentials(google.auth.credentials.Signing):
    """What ``generate_signed_url`` signs with: any ``crypt.Signer`` and its account."""

    def __init__(self, signer: crypt.Signer, email: str) -> None:
        self._signer = signer
        self._email = email

    def sign_bytes(self, message: bytes) -> bytes:
        signer: Any = self._signer
        signature: bytes = signer.sign(message)
        return signature

    @property
    def signer_email(self) -> str:
        return self._email

    @property
    def signer(self) -> crypt.Signer:
        return self._signer


def _requests_transport() -> AuthRequest:
    from google.auth.transport.requests import Request

    return Request()


def _runtime_email(credentials: google.auth.credentials.Credentials, request: AuthRequest) -> str:
    """The account the runtime runs as (the metadata server says once credentials refresh)."""
    email = getattr(credentials, "service_account_email", None)
    if not email or email == "default":
        refreshable: Any = credentials
        refreshable.refresh(request)
        email = getattr(credentials, "service_account_email", None)
    if not email or email == "default":
        raise RuntimeError(
            "cannot tell which service account signs Cloud Storage URLs; set "
            "STORAGE_SIGNING_SERVICE_ACCOUNT or STORAGE_SIGNING_KEY_FILE"
        )
    return str(email)
