"""Real HTTP delivery: what goes on the wire, and what counts as a failed attempt."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from daygen_queue import HttpRequest, NewTask, QueueConfig, RetryConfig, VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend
from emulator import EventKind
from tests.support.receiver import Receiver


@pytest.fixture
async def backend(virtual_clock: VirtualClock) -> AsyncIterator[EmulatorBackend]:
    backend = EmulatorBackend(clock=virtual_clock)  # the default dispatcher is real HTTP
    await backend.create_queue(QueueConfig(name="q", retry_config=RetryConfig(max_attempts=2)))
    yield backend
    await backend.close()


async def test_body_and_caller_headers_arrive_and_no_content_type_is_invented(
    backend: EmulatorBackend, receiver: Receiver
) -> None:
    await backend.create_task(
        "q", NewTask(http_request=HttpRequest(url=receiver.url("/raw"), body=b"\x00\x01raw"))
    )
    await backend.create_task(
        "q",
        NewTask(
            http_request=HttpRequest(
                url=receiver.url("/json"),
                headers={
                    "content-type": "application/json",
                    "User-Agent": "spoof",
                    "X-CloudTasks-TaskRetryCount": "99",
                },
                body=b"{}",
            )
        ),
    )

    await backend.run_until_idle()

    [raw] = receiver.for_path("/raw")
    [json_request] = receiver.for_path("/json")
    assert raw.body == b"\x00\x01raw"
    assert raw.header("Content-Type") is None
    assert json_request.header("Content-Type") == "application/json"
    assert json_request.header("User-Agent") == "Google-Cloud-Tasks"
    assert json_request.header("X-CloudTasks-TaskRetryCount") == "0"


async def test_http_methods_other_than_post(backend: EmulatorBackend, receiver: Receiver) -> None:
    await backend.create_task(
        "q", NewTask(http_request=HttpRequest(url=receiver.url("/get"), http_method="GET"))
    )
    await backend.create_task(
        "q",
        NewTask(http_request=HttpRequest(url=receiver.url("/put"), http_method="PUT", body=b"p")),
    )

    await backend.run_until_idle()

    assert [r.method for r in receiver.for_path("/get")] == ["GET"]
    assert [(r.method, r.body) for r in receiver.for_path("/put")] == [("PUT", b"p")]


async def test_error_status_is_a_failed_attempt(
    backend: EmulatorBackend, receiver: Receiver
) -> None:
    receiver.responder = lambda request: 500
    await backend.create_task(
        "q", NewTask(http_request=HttpRequest(url=receiver.url("/err")), name="err")
    )

    await backend.run_until_idle()

    failures = backend.events.of_kind(EventKind.ATTEMPT_FAILED)
    assert [e.status for e in failures] == [500, 500]
    assert [e.task for e in backend.events.of_kind(EventKind.TASK_EXHAUSTED)] == ["err"]


async def test_refused_connection_is_a_failed_attempt(backend: EmulatorBackend) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await backend.create_task(
        "q", NewTask(http_request=HttpRequest(url=f"http://127.0.0.1:{port}/x"), name="nobody")
    )

    await backend.run_until_idle()

    failures = backend.events.of_kind(EventKind.ATTEMPT_FAILED)
    assert len(failures) == 2
    assert all(e.status is None and e.detail.startswith("connection error") for e in failures)
