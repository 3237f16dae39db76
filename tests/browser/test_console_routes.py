"""The console's HTTP side without a browser: its files, the event stream (filters, replay,
resumption, slow clients, shutdown), the cross-site write guard, and ``/metrics`` beside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from emulator.clock import VirtualClock
from emulator.console import CONSOLE_FEED, console_app
from emulator.console.feed import MAX_PENDING, EventFeed, EventFilter
from emulator.engine import Engine
from emulator.events import Event, EventKind, EventStream
from emulator.service import CloudTasksService
from tests.browser.console_api import ConsoleEmulator

PARENT = "projects/p/locations/l"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def engine() -> AsyncIterator[Engine]:
    """An in-process engine on a virtual clock: events happen only when the test acts."""
    async with Engine(clock=VirtualClock(START)) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def client(engine: Engine) -> AsyncIterator[TestClient[Any, Any]]:
    service = CloudTasksService(engine)
    service.note_parent(PARENT)
    async with TestClient(TestServer(console_app(service))) as http:
        yield http


async def make_queue(client: TestClient[Any, Any], queue_id: str, tasks: int = 0) -> str:
    """A queue and ``tasks`` named tasks (t0, t1...), through the REST face."""
    name = f"{PARENT}/queues/{queue_id}"
    created = await client.post(f"/v2/{PARENT}/queues", json={"name": name})
    assert created.status == 200, await created.text()
    for index in range(tasks):
        task = {"name": f"{name}/tasks/t{index}", "httpRequest": {"url": "http://127.0.0.1:9/"}}
        added = await client.post(f"/v2/{name}/tasks", json={"task": task})
        assert added.status == 200, await added.text()
    return name


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """The first ``count`` ``cloudtasks`` events of a stream (after its ``hello``)."""
    events: list[dict[str, Any]] = []
    name = ""
    while len(events) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == "cloudtasks":
            events.append(json.loads(line.removeprefix("data: ")))
    return events


async def test_the_page_and_its_files_are_served_with_a_strict_policy(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert 'src="console/static/js/main.js"' in html  # relative: works under any prefix
    script = await client.get("/console/static/js/main.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert script.headers["Cache-Control"] == "no-cache"
    style = await client.get("/console/static/console.css")
    assert style.content_type == "text/css"
    for missing in ("/console/static/nope.js", "/console/static/../pages.py"):
        assert (await client.get(missing)).status == 404
    projects = await (await client.get("/console/projects")).json()
    assert projects == {"projects": ["p"]}


async def test_the_stream_replays_matching_history_then_follows_live(
    client: TestClient[Any, Any], engine: Engine
) -> None:
    a = await make_queue(client, "a", tasks=2)
    await make_queue(client, "b", tasks=1)
    response = await client.get("/console/events", params={"queue": "a", "history": "10"})
    assert response.headers["Content-Type"] == "text/event-stream"
    replayed = await read_events(response, 3)
    assert [(e["kind"], e["task"]) for e in replayed] == [
        ("queue_created", None),
        ("task_created", "t0"),
        ("task_created", "t1"),
    ]
    assert replayed[1]["time"] == "2026-01-01T00:00:00.000Z"

    await engine.pause_queue(a)
    await engine.pause_queue(f"{PARENT}/queues/b")  # filtered out
    await engine.delete_task(f"{a}/tasks/t0")
    live = await read_events(response, 2)
    assert [(e["kind"], e["queue"]) for e in live] == [
        ("queue_paused", "a"),
        ("task_deleted", "a"),
    ]
    assert live[0]["id"] < live[1]["id"]
    response.close()


async def test_a_reconnection_resumes_after_the_last_event_id(
    client: TestClient[Any, Any], engine: Engine
) -> None:
    queue = await make_queue(client, "resume", tasks=3)
    first = await client.get("/console/events", params={"task": "t1", "history": "1"})
    (seen,) = await read_events(first, 1)
    first.close()
    await engine.delete_task(f"{queue}/tasks/t1")  # while disconnected

    epoch = client.app[CONSOLE_FEED].epoch
    resumed = {"Last-Event-ID": f"{epoch}-{seen['id']}"}
    again = await client.get("/console/events", params={"task": "t1"}, headers=resumed)
    (missed,) = await read_events(again, 1)
    assert (missed["kind"], missed["queue"]) == ("task_deleted", "resume")
    again.close()

    # An id from another feed (the emulator restarted meanwhile): the history, from the start.
    stale = {"Last-Event-ID": f"0000-{seen['id']}"}
    fresh = await client.get("/console/events", params={"task": "t1"}, headers=stale)
    assert [e["kind"] for e in await read_events(fresh, 2)] == ["task_created", "task_deleted"]
    fresh.close()


async def test_a_bad_history_is_refused_naming_the_parameter(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/console/events", params={"history": "lots"})
    assert response.status == 400
    assert "history" in (await response.json())["error"]["message"]


async def test_shutdown_ends_open_streams(client: TestClient[Any, Any]) -> None:
    await make_queue(client, "ending")
    response = await client.get("/console/events", params={"queue": "ending"})
    await read_events(response, 1)
    await client.app[CONSOLE_FEED].close()
    rest = await response.content.read()  # returns at EOF: the stream ended, it did not hang
    assert rest.strip() == b""


def test_a_slow_stream_drops_events_instead_of_holding_the_engine() -> None:
    stream = EventStream()
    feed = EventFeed(stream, lambda: START)
    with feed.listening(EventFilter(queue="q")) as listener:
        for _ in range(MAX_PENDING + 7):
            stream.emit(Event(START, EventKind.TASK_CREATED, "q", "t"))
        stream.emit(Event(START, EventKind.TASK_CREATED, "other", "t"))  # not this stream's
    assert len(listener.pending) == MAX_PENDING and listener.dropped == 7


async def test_cross_site_writes_are_refused_and_same_site_ones_pass(
    client: TestClient[Any, Any], engine: Engine
) -> None:
    queue = await make_queue(client, "guarded")
    evil = await client.post(f"/v2/{queue}:pause", json={}, headers={"Origin": "http://evil.test"})
    assert evil.status == 403
    assert engine.get_queue(queue).state.name == "RUNNING"
    own = f"http://{client.host}:{client.port}"
    assert (await client.post(f"/v2/{queue}:pause", json={}, headers={"Origin": own})).status == 200
    assert (await client.post(f"/v2/{queue}:resume", json={})).status == 200  # curl, clients
    assert (await client.get(f"/v2/{queue}", headers={"Origin": "http://evil.test"})).status == 200


async def test_metrics_are_served_beside_the_console(console_emulator: ConsoleEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(console_emulator.base_url + "/metrics") as response:
            assert response.status == 200
            assert "cloudtasks_emulator_queue_tasks" in await response.text()
        async with http.get(console_emulator.console_url) as response:
            assert "Cloud Tasks emulator console" in await response.text()
