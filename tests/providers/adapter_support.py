"""Fixtures for adapter tests: each fake provider on 127.0.0.1 sharing the test's virtual
clock, and the adapter pointed at it through one ``OutboundHttp``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from app.outbound import OutboundHttp
from app.providers.bfl import BflProvider
from app.providers.replicate import DEFAULT_UPSCALE_VERSION, ReplicateProvider
from app.providers.runway import RunwayProvider
from daygen_queue import VirtualClock
from tests.providers.fakes.bfl import FakeBfl
from tests.providers.fakes.replicate import FakeReplicate
from tests.providers.fakes.runway import FakeRunway

BFL_KEY = "bfl_secret_key_do_not_leak_0123"
RUNWAY_SECRET = "key_runway_secret_do_not_leak_4567"
REPLICATE_TOKEN = "r8_replicate_token_do_not_leak_89"
SECRETS = (BFL_KEY, RUNWAY_SECRET, REPLICATE_TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[OutboundHttp]:
    outbound = OutboundHttp()
    yield outbound
    await outbound.close()


@pytest.fixture
async def fake_bfl(virtual_clock: VirtualClock) -> AsyncIterator[FakeBfl]:
    fake = FakeBfl(api_key=BFL_KEY, clock=virtual_clock)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def bfl(fake_bfl: FakeBfl, http: OutboundHttp, virtual_clock: VirtualClock) -> BflProvider:
    return BflProvider(
        api_key=SecretStr(BFL_KEY), base_url=fake_bfl.url, outbound=http, clock=virtual_clock
    )


@pytest.fixture
async def fake_runway(virtual_clock: VirtualClock) -> AsyncIterator[FakeRunway]:
    fake = FakeRunway(api_secret=RUNWAY_SECRET, clock=virtual_clock)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def runway(
    fake_runway: FakeRunway, http: OutboundHttp, virtual_clock: VirtualClock
) -> RunwayProvider:
    return RunwayProvider(
        api_secret=SecretStr(RUNWAY_SECRET),
        base_url=fake_runway.url,
        outbound=http,
        clock=virtual_clock,
    )


@pytest.fixture
async def fake_replicate(virtual_clock: VirtualClock) -> AsyncIterator[FakeReplicate]:
    fake = FakeReplicate(
        api_token=REPLICATE_TOKEN, clock=virtual_clock, known_versions=(DEFAULT_UPSCALE_VERSION,)
    )
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def replicate(
    fake_replicate: FakeReplicate, http: OutboundHttp, virtual_clock: VirtualClock
) -> ReplicateProvider:
    return ReplicateProvider(
        api_token=SecretStr(REPLICATE_TOKEN),
        base_url=fake_replicate.url,
        outbound=http,
        clock=virtual_clock,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
