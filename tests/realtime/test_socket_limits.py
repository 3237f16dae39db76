"""Nothing held for free: an engine.io session that never sends the Socket.IO CONNECT (with its
token) is closed after ``SOCKETIO_AUTH_TIMEOUT_SECONDS``; connections are capped per user and
per instance, the next one refused with a clear ``connect_error``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.realtime.clients import RecordingClient
from tests.realtime.conftest import Service, StartService

RECORD_SEPARATOR = "\x1e"  # between engine.io packets in one polling payload


class RawEngineIo:
    """An engine.io v4 session over HTTP long-polling, packet by packet: what a client that
    never speaks Socket.IO (or speaks it late) looks like to the server."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.url = f"{base_url}/socket.io/?EIO=4&transport=polling"
        self.sid = ""

    async def open(self) -> None:
        async with self.http.get(self.url) as response:
            assert response.status == 200
            body = await response.text()
        assert body.startswith("0"), body  # the OPEN packet
        self.sid = json.loads(body[1:])["sid"]

    async def send(self, packet: str) -> None:
        async with self.http.post(f"{self.url}&sid={self.sid}", data=packet) as response:
            assert response.status == 200, await response.text()

    async def poll(self) -> list[str] | None:
        """The next packets (a long poll); None once the server forgot the session."""
        async with self.http.get(f"{self.url}&sid={self.sid}") as response:
            if response.status == 400:
                return None
            return (await response.text()).split(RECORD_SEPARATOR)

    async def closed_by_server(self) -> bool:
        """Polls until the server closes the session (CLOSE packet, or the session is gone);
        the client's own timeout bounds the wait."""
        while True:
            packets = await self.poll()
            if packets is None or "1" in packets:
                return True
            assert all(p == "2" for p in packets), packets  # only pings while we wait


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def clients() -> AsyncIterator[list[RecordingClient]]:
    made: list[RecordingClient] = []
    yield made
    for client in made:
        await client.close()


async def test_a_session_that_never_connects_is_closed(
    start_service: StartService, http: aiohttp.ClientSession
) -> None:
    service = await start_service(socketio_auth_timeout_seconds=0.3)
    # A session that does authenticate, opened first: its timer would fire first.
    authenticated = RawEngineIo(http, service.base_url)
    await authenticated.open()
    await authenticated.send("40" + json.dumps({"token": service.token("alice")}))
    answer = await authenticated.poll()
    assert answer is not None and answer[0].startswith("40{"), answer  # CONNECT accepted

    idle = RawEngineIo(http, service.base_url)
    await idle.open()
    assert await idle.closed_by_server()

    # The authenticated session outlived its own (cancelled) timer: it still answers.
    await authenticated.send('421["subscribe","no-such-job"]')
    answer = await authenticated.poll()
    assert answer == ['431[{"ok":false,"error":"not found"}]'], answer


async def test_connections_are_capped_per_user(
    start_service: StartService, clients: list[RecordingClient]
) -> None:
    service = await start_service(socketio_max_connections_per_user=2)
    for _ in range(2):
        clients.append(RecordingClient())
        await clients[-1].connect(service.base_url, service.token("alice"))
    clients.append(RecordingClient())
    data = await clients[-1].refusal(service.base_url, service.token("alice"))
    assert data == {
        "message": "too many connections",
        "data": {"reason": "at most 2 connections per user"},
    }
    # Another user is not affected; a closed connection frees its place.
    clients.append(RecordingClient())
    await clients[-1].connect(service.base_url, service.token("bob"))
    await clients[0].close()
    assert await connects_once_freed(service, "alice", clients)


async def connects_once_freed(service: Service, user: str, clients: list[RecordingClient]) -> bool:
    """The server learns of a close a moment after the client: a few refusals may come first,
    each a full round trip (bounded)."""
    for _ in range(50):
        client = RecordingClient()
        clients.append(client)
        try:
            await client.connect(service.base_url, service.token(user))
        except Exception:
            continue
        return True
    return False


async def test_connections_are_capped_per_instance(
    start_service: StartService, clients: list[RecordingClient]
) -> None:
    service = await start_service(socketio_max_connections=2)
    for user in ("alice", "bob"):
        clients.append(RecordingClient())
        await clients[-1].connect(service.base_url, service.token(user))
    clients.append(RecordingClient())
    data = await clients[-1].refusal(service.base_url, service.token("carol"))
    assert data == {
        "message": "too many connections",
        "data": {"reason": "this server holds its limit of 2"},
    }
