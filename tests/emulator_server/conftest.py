"""Fixtures for the emulator server: the gRPC face in process (fast, one per test) and
``python -m emulator`` as a real subprocess (one per session)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as beta_transports

from emulator.engine import Engine
from emulator.grpc_server import build_server
from emulator.oidc import OidcIssuer
from emulator.service import CloudTasksService

os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("METADATA_SERVER_DETECTION", "none")

PARENT = "projects/test-project/locations/local"


@dataclass
class GrpcStack:
    engine: Engine
    service: CloudTasksService
    address: str
    client: tasks_v2.CloudTasksAsyncClient
    beta: tasks_v2beta3.CloudTasksAsyncClient
    issuer: OidcIssuer

    def queue(self, queue_id: str) -> str:
        return f"{PARENT}/queues/{queue_id}"


@contextlib.asynccontextmanager
async def grpc_stack(
    *, engine_options: dict[str, Any] | None = None, **service_options: Any
) -> AsyncIterator[GrpcStack]:
    """Engine + gRPC server on a free port + the official async clients, in this loop;
    ``service_options`` go to ``CloudTasksService``, ``engine_options`` to ``Engine``."""
    issuer = OidcIssuer()
    engine = Engine(token_minter=issuer, **(engine_options or {}))
    await engine.start()
    service = CloudTasksService(engine, **service_options)
    server, port = build_server(service, "127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(
        address, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
    )
    client = tasks_v2.CloudTasksAsyncClient(
        transport=transports.CloudTasksGrpcAsyncIOTransport(channel=channel)
    )
    beta = tasks_v2beta3.CloudTasksAsyncClient(
        transport=beta_transports.CloudTasksGrpcAsyncIOTransport(channel=channel)
    )
    try:
        yield GrpcStack(engine, service, address, client, beta, issuer)
    finally:
        await channel.close()
        await server.stop(None)
        await engine.close()


@pytest.fixture
async def stack() -> AsyncIterator[GrpcStack]:
    async with grpc_stack() as ready:
        yield ready
