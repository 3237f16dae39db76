"""Finding things on the console page, the way the tests (and a person) see it: rows by
queue and task id, timeline entries by task and kind."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

from tests.browser.console_api import short_id


async def open_console(page: Page, url: str, queue: str | None = None) -> None:
    """The console at ``url``, loaded, listing its queues, its event stream live (and
    ``queue``'s tasks open)."""
    await page.goto(url + ("" if queue is None else f"#queue={queue}"))
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def queue_row(page: Page, queue: str) -> Locator:
    return page.locator(f'#queues tr[data-queue="{short_id(queue)}"]')


def task_row(page: Page, task: str) -> Locator:
    return page.locator(f'#tasks tr[data-task="{short_id(task)}"]')


def timeline_entry(page: Page, task: str, kind: str) -> Locator:
    return page.locator(f'#timeline li[data-task="{short_id(task)}"][data-kind="{kind}"]')
