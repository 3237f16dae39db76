from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from daygen_queue import VirtualClock
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
