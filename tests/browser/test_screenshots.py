"""The README's picture of the console, taken by the test run: the jobs service's four queues
(``queues.toml``) with work in them, one paused, one task failing and waiting for its retry.

Every run takes it and checks it; ``make screenshots`` (``UPDATE_SCREENSHOTS=1``) writes it to
``docs/screenshots/console.png`` to be committed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect

from tests.browser.chromium import png_size, screenshot_path
from tests.browser.conftest import DESKTOP
from tests.browser.console_api import ConsoleEmulator
from tests.browser.console_page import open_console, task_row, timeline_entry
from tests.emulator_server.process import REPO, running_emulator
from tests.support.receiver import Receiver

PARENT = "projects/local-project/locations/local"


@pytest_asyncio.fixture(loop_scope="session")
async def app_queues_emulator(
    console_emulator: ConsoleEmulator,
) -> AsyncIterator[ConsoleEmulator]:
    """An emulator of its own, holding exactly the service's queues (the shared one holds
    every other test's), delivering to the shared receiver."""
    receiver: Receiver = console_emulator.receiver
    with running_emulator("--queues", str(REPO / "queues.toml")) as server:
        async with ConsoleEmulator(server.http_url, receiver) as emulator:
            yield emulator


async def test_the_console_screenshot(
    page: Page, app_queues_emulator: ConsoleEmulator, tmp_path: Path
) -> None:
    emulator = app_queues_emulator
    image = f"{PARENT}/queues/image-generation-queue"
    batch = f"{PARENT}/queues/batch-generation-queue"
    # A retry far enough away that the failing task is still there for the picture.
    await emulator.call(
        "PATCH",
        f"v2/{image}",
        {"name": image, "retryConfig": {"minBackoff": "30s"}},
        updateMask="retryConfig.minBackoff",
    )
    await emulator.call("POST", f"v2/{batch}:pause", {})
    body = b'{"prompt": "a red fox in the snow", "width": 1024, "height": 1024}'
    headers = {"Content-Type": "application/json"}
    for _ in range(3):
        await emulator.create_task(image, task_id=str(uuid.uuid4()), headers=headers, body=body)
    for delay in (timedelta(minutes=5), timedelta(minutes=20)):
        await emulator.create_task(
            image, task_id=str(uuid.uuid4()), delay=delay, headers=headers, body=body
        )
    failing = await emulator.create_task(image, task_id=str(uuid.uuid4()), path="/fail/provider")
    for chunk in range(3):
        await emulator.create_task(batch, task_id=f"{uuid.uuid4()}-chunk-{chunk}")

    await open_console(page, emulator.console_url, image)
    await expect(
        task_row(page, failing["name"]).locator('[data-label="Last status"]')
    ).to_have_text("UNAVAILABLE")
    await expect(page.locator("#tasks tbody tr")).to_have_count(3)
    await expect(timeline_entry(page, failing["name"], "retry_scheduled")).to_have_count(1)
    await expect(
        page.locator('#queues tr[data-queue="batch-generation-queue"] .badge')
    ).to_have_text("Paused")

    path = screenshot_path("console", tmp_path)
    await page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == DESKTOP["width"] and height >= DESKTOP["height"] // 2
