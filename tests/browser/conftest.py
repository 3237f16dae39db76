"""Fixtures for tests in a real headless Chromium (see ``chromium.py``).

- ``browser``: one Chromium for the whole run (launching costs a second or two);
- ``page``: a fresh browser context (its own cookies and storage) and page per test, at a
  desktop viewport, whose console errors fail the test (``browser_log.expect(...)`` for one a
  test provokes on purpose);
- ``console_emulator``: one ``python -m emulator`` subprocess for the browser tests, with a
  REST helper and a receiver for its deliveries (200, or 503 for paths under ``/fail``);
- ``running_app``: the jobs service (``app_server.py``) on a real port for one test.

Every test here runs in the session's event loop (the browser's connection lives there), set
by ``pytest_collection_modifyitems`` below for whatever module is added to this folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.browser.app_server import RunningApp, serving_app
from tests.browser.chromium import LAUNCH_ARGS, BrowserLog, chromium_executable
from tests.browser.console_api import ConsoleEmulator
from tests.emulator_server.process import running_emulator
from tests.support.receiver import Receiver

HERE = Path(__file__).parent
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Actions wait and assertions retry until this (a loaded 2-core machine is slow, not wrong).
ACTION_TIMEOUT_MS = 10_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if HERE not in Path(str(item.path)).parents:
            continue
        item.add_marker(pytest.mark.browser)
        if pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = None
    try:
        executable = chromium_executable()
    except FileNotFoundError as missing:
        problem = str(missing)
    if executable is None:
        pytest.fail(problem, pytrace=False)  # never a skip: CI must not pass without it
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(LAUNCH_ARGS)
        )
        yield launched
        await launched.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    fresh = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    fresh.set_default_timeout(ACTION_TIMEOUT_MS)
    yield fresh
    await fresh.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext, browser_log: BrowserLog) -> AsyncIterator[Page]:
    opened = await context.new_page()
    browser_log.attach(opened)
    yield opened
    unexpected = browser_log.unexpected()
    assert not unexpected, "errors in the browser console:\n" + "\n".join(unexpected)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def console_emulator() -> AsyncIterator[ConsoleEmulator]:
    receiver = Receiver(responder=lambda request: 503 if request.path.startswith("/fail") else 200)
    await receiver.start()
    with running_emulator() as server:
        async with ConsoleEmulator(server.http_url, receiver) as emulator:
            yield emulator
    await receiver.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def running_app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with serving_app(tmp_path) as app:
        yield app
