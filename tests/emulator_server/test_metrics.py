"""``/metrics`` on the HTTP port counts what the event stream says and reads live gauges."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from google.cloud import tasks_v2

from emulator import Event, EventKind
from emulator.rest import build_app
from tests.emulator_server.conftest import PARENT, GrpcStack
from tests.support.receiver import Receiver


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus' text format."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            series, _, value = line.rpartition(" ")
            found = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return None


async def test_metrics_follow_deliveries_and_queue_state(
    stack: GrpcStack, receiver: Receiver
) -> None:
    succeeded = 0
    all_succeeded = asyncio.Event()

    def count(event: Event) -> None:
        nonlocal succeeded
        if event.kind is EventKind.ATTEMPT_SUCCEEDED:
            succeeded += 1
            if succeeded == 3:
                all_succeeded.set()

    stack.engine.events.subscribe(count)
    async with TestClient(TestServer(build_app(stack.service, stack.issuer))) as http:
        queue = stack.queue("metered")
        await stack.client.create_queue(parent=PARENT, queue={"name": queue})
        for index in range(3):
            await stack.client.create_task(
                parent=queue,
                task=tasks_v2.Task(
                    http_request=tasks_v2.HttpRequest(url=receiver.url(f"/m{index}"))
                ),
            )
        await asyncio.wait_for(all_succeeded.wait(), 10)
        await stack.client.pause_queue(name=queue)
        await stack.client.create_task(
            parent=queue,
            task=tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=receiver.url("/held"))),
        )

        response = await http.get("/metrics")
        text = await response.text()

    assert response.headers["Content-Type"].startswith("text/plain")
    events = "cloudtasks_emulator_events_total"
    assert sample(text, events, kind="task_created", queue="metered") == 4
    assert sample(text, events, kind="attempt_succeeded", queue="metered") == 3
    assert sample(text, events, kind="queue_paused", queue="metered") == 1
    # One label for a queue everywhere, counters and gauges alike: its QUEUE_ID.
    assert sample(text, "cloudtasks_emulator_queue_tasks", queue="metered") == 1
    assert sample(text, "cloudtasks_emulator_queue_paused", queue="metered") == 1
    assert sample(text, "cloudtasks_emulator_queue_dispatches_in_flight", queue="metered") == 0
    assert f'queue="{queue}"' not in text  # never the full resource name
