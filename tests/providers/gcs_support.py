"""Fixtures for Cloud Storage tests: one fake-gcs-server per session, a bucket per test, and a
locally generated service-account key (no network: its token URI is never called)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.outbound import OutboundHttp
from app.storage import GcsStorage, MediaPrefixes
from app.storage.signing import KeyFileIdentity, UrlSigner
from tests.providers.fakes.gcs import FakeGcsServer

SIGNER_EMAIL = "signer@test-project.iam.gserviceaccount.com"
APP_BASE = "https://api.daygen.test"


@dataclass
class ServiceAccountKey:
    private_key: rsa.RSAPrivateKey
    info: dict[str, Any]

    def write(self, folder: Path) -> Path:
        path = folder / "signer.json"
        path.write_text(json.dumps(self.info))
        return path


def make_service_account_key(email: str = SIGNER_EMAIL) -> ServiceAccountKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "https://oauth2.invalid/token",
    }
    return ServiceAccountKey(key, info)


def signed_query(url: str) -> dict[str, str]:
    """The query of a signed URL, one value per parameter."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcsServer]:
    server = FakeGcsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sa_key() -> ServiceAccountKey:
    return make_service_account_key()


@pytest.fixture
def bucket(gcs_server: FakeGcsServer) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    gcs_server.create_bucket(name)
    return name


@pytest.fixture
async def outbound() -> AsyncIterator[OutboundHttp]:
    http = OutboundHttp()
    yield http
    await http.close()


@pytest.fixture
def gcs(
    gcs_server: FakeGcsServer, bucket: str, sa_key: ServiceAccountKey, outbound: OutboundHttp
) -> GcsStorage:
    signer = UrlSigner(
        KeyFileIdentity.from_info(sa_key.info), ttl=timedelta(minutes=15), endpoint=gcs_server.url
    )
    return GcsStorage(
        bucket,
        "results/",
        http=outbound,
        media=MediaPrefixes(APP_BASE),
        signer=signer,
        emulator_host=gcs_server.url.removeprefix("http://"),
    )
