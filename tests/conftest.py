from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from daygen_queue import VirtualClock
from tests.emulator_server.process import EmulatorProcess, running_emulator
from tests.support.receiver import Receiver

# The official Google clients must never probe the metadata server from a test.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("METADATA_SERVER_DETECTION", "none")


@pytest.fixture
def virtual_clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorProcess]:
    """One ``python -m emulator`` subprocess for the whole run, shared by every test that
    talks to a standalone emulator (tests use unique queue names or projects: a shared server
    keeps deleted names reserved)."""
    with running_emulator() as server:
        yield server
