"""The emulator console in a real Chromium, against a real ``python -m emulator``: every
action a person takes on the page, checked both on the page and through the REST API."""

from __future__ import annotations

import base64
import socket
from datetime import timedelta

from playwright.async_api import Page, expect

from tests.browser.chromium import BrowserLog
from tests.browser.conftest import PHONE
from tests.browser.console_api import ConsoleEmulator, short_id
from tests.browser.console_page import open_console, queue_row, task_row, timeline_entry
from tests.emulator_server.process import EmulatorProcess

LATER = timedelta(hours=1)


async def test_a_paused_queue_holds_a_new_task_until_run_now_dispatches_it(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    queue = await console_emulator.create_queue("pause")
    qid = short_id(queue)
    await open_console(page, console_emulator.console_url)
    row = queue_row(page, queue)
    await expect(row.locator(".badge")).to_have_text("Running")

    await page.get_by_role("button", name=f"Pause queue {qid}").click()
    await expect(row.locator(".badge")).to_have_text("Paused")
    assert (await console_emulator.queue(queue))["state"] == "PAUSED"

    task = await console_emulator.create_task(queue, path=f"/run/{qid}")
    await page.get_by_role("button", name=f"Show the tasks of queue {qid}").click()
    waiting = task_row(page, task["name"])
    await expect(waiting.locator('[data-label="Dispatches"]')).to_have_text("0")
    await expect(row.locator('[data-label="Tasks"]')).to_have_text("1")
    await expect(timeline_entry(page, task["name"], "task_created")).to_have_count(1)
    assert console_emulator.receiver.for_path(f"/run/{qid}") == []
    assert "dispatchCount" not in (await console_emulator.tasks(queue))[0]

    await page.get_by_role("button", name=f"Run now: task {short_id(task['name'])}").click()
    delivered = await console_emulator.receiver.wait_for_path(f"/run/{qid}")
    assert delivered[0].header("X-CloudTasks-TaskName") == short_id(task["name"])
    await expect(timeline_entry(page, task["name"], "attempt_succeeded")).to_have_count(1)
    await expect(waiting).to_have_count(0)  # done: a succeeded task leaves the queue
    await expect(page.locator("#tasks-empty")).to_be_visible()
    assert await console_emulator.status_of("GET", f"v2/{task['name']}") == 404


async def test_purge_asks_first_and_then_empties_the_queue(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    queue = await console_emulator.create_queue("purge", paused=True)
    qid = short_id(queue)
    for _ in range(3):
        await console_emulator.create_task(queue)
    await open_console(page, console_emulator.console_url, queue)
    await expect(page.locator("#tasks tbody tr")).to_have_count(3)

    await page.get_by_role("button", name=f"Purge queue {qid}").click()
    dialog = page.get_by_role("dialog", name=f"Purge {qid}?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("all 3 tasks")
    await page.keyboard.press("Escape")  # cancelled: nothing happens
    await expect(dialog).to_be_hidden()
    assert len(await console_emulator.tasks(queue)) == 3

    await page.get_by_role("button", name=f"Purge queue {qid}").click()
    await dialog.get_by_role("button", name="Purge queue").click()
    await expect(page.locator("#tasks tbody tr")).to_have_count(0)
    await expect(queue_row(page, queue).locator('[data-label="Tasks"]')).to_have_text("0")
    await expect(
        page.locator(f'#timeline li[data-queue="{qid}"][data-kind="queue_purged"]')
    ).to_have_count(1)
    assert await console_emulator.tasks(queue) == []


async def test_delete_asks_first_and_removes_only_that_task(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    queue = await console_emulator.create_queue("delete", paused=True)
    doomed = await console_emulator.create_task(queue, task_id="doomed")
    kept = await console_emulator.create_task(queue, task_id="kept")
    await open_console(page, console_emulator.console_url, queue)
    await expect(page.locator("#tasks tbody tr")).to_have_count(2)

    await page.get_by_role("button", name="Delete task doomed").click()
    dialog = page.get_by_role("dialog", name="Delete task doomed?")
    await dialog.get_by_role("button", name="Delete task").click()
    await expect(task_row(page, doomed["name"])).to_have_count(0)
    await expect(task_row(page, kept["name"])).to_have_count(1)
    assert await console_emulator.status_of("GET", f"v2/{doomed['name']}") == 404
    assert [t["name"] for t in await console_emulator.tasks(queue)] == [kept["name"]]


async def test_editing_a_queue_sends_update_queue_for_the_changed_fields_only(
    page: Page, console_emulator: ConsoleEmulator, browser_log: BrowserLog
) -> None:
    queue = await console_emulator.create_queue("edit")
    qid = short_id(queue)
    await open_console(page, console_emulator.console_url)
    dialog = page.get_by_role("dialog", name=f"Edit {qid}")
    rate = dialog.get_by_label("Max dispatches per second")

    await page.get_by_role("button", name=f"Edit rate and retry of queue {qid}").click()
    await expect(rate).to_be_focused()
    await expect(rate).to_have_value("50")
    # The API's own refusal is shown as it comes, and the dialog stays open to correct it.
    browser_log.expect(r"status of 400")
    await rate.fill("600")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.get_by_role("alert")).to_contain_text(
        "maxDispatchesPerSecond must be less than or equal to 500"
    )

    await rate.fill("3.5")
    await dialog.get_by_label("Max attempts").fill("7")
    async with page.expect_request(lambda r: r.method == "PATCH") as patch:
        await dialog.get_by_role("button", name="Save").click()
    sent = await patch.value
    assert "updateMask=rateLimits.maxDispatchesPerSecond%2CretryConfig.maxAttempts" in sent.url
    await expect(dialog).to_be_hidden()
    cells = queue_row(page, queue)
    await expect(cells.locator('[data-label="Rate limits"]')).to_contain_text("3.5/s")
    await expect(cells.locator('[data-label="Retry"]')).to_contain_text("7 attempts")

    stored = await console_emulator.queue(queue)
    assert stored["rateLimits"]["maxDispatchesPerSecond"] == 3.5
    assert stored["rateLimits"]["maxConcurrentDispatches"] == 10  # untouched
    assert stored["retryConfig"]["maxAttempts"] == 7
    assert stored["retryConfig"]["minBackoff"] == "0.100s"  # untouched


async def test_events_arrive_live_and_filter_by_queue_and_task(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    first = await console_emulator.create_queue("live")
    second = await console_emulator.create_queue("other")
    await open_console(page, console_emulator.console_url)

    one = await console_emulator.create_task(first, task_id="one")
    two = await console_emulator.create_task(second, task_id="two")
    for task in (one, two):
        for kind in ("task_created", "task_dispatched", "attempt_succeeded"):
            await expect(timeline_entry(page, task["name"], kind)).to_have_count(1)

    await page.get_by_label("Queue", exact=True).select_option(short_id(first))
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#events-note")).to_contain_text(f"queue {short_id(first)}")
    shown = page.locator("#timeline li")
    await expect(timeline_entry(page, one["name"], "attempt_succeeded")).to_have_count(1)
    assert set(await shown.evaluate_all("els => els.map(e => e.dataset.queue)")) == {
        short_id(first)
    }

    await page.get_by_label("Queue", exact=True).select_option("")
    await page.get_by_label("Task id").fill("two")
    await page.get_by_role("button", name="Filter").click()
    await expect(timeline_entry(page, two["name"], "task_created")).to_have_count(1)
    await expect(timeline_entry(page, one["name"], "task_created")).to_have_count(0)
    later = await console_emulator.create_task(second, path="/two-again")
    await console_emulator.receiver.wait_for_path("/two-again")
    assert set(await shown.evaluate_all("els => els.map(e => e.dataset.task)")) == {"two"}

    await page.get_by_role("button", name="Clear").click()
    await expect(timeline_entry(page, one["name"], "attempt_succeeded")).to_have_count(1)
    await expect(timeline_entry(page, later["name"], "attempt_succeeded")).to_have_count(1)


async def test_task_detail_shows_headers_and_body_in_the_full_view(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    queue = await console_emulator.create_queue("detail")
    body = b'{"prompt": "a red fox in the snow", "seed": 7}'
    task = await console_emulator.create_task(
        queue,
        delay=LATER,
        headers={"X-Trace-Id": "trace-42", "Content-Type": "application/json"},
        body=body,
    )
    tid = short_id(task["name"])
    await open_console(page, console_emulator.console_url, queue)

    opener = page.get_by_role("button", name=f"Details of task {tid}")
    await opener.click()
    dialog = page.get_by_role("dialog", name=f"Task {tid}")
    await expect(dialog).to_be_visible()
    headers = dialog.get_by_role("table")
    await expect(headers.get_by_role("row", name="X-Trace-Id trace-42")).to_be_visible()
    await expect(headers.get_by_role("row", name="Content-Type application/json")).to_be_visible()
    await expect(dialog.locator("#detail-payload")).to_contain_text(
        '"prompt": "a red fox in the snow"'
    )
    await expect(dialog).to_contain_text(f"POST {console_emulator.receiver.url('/ok')}")
    full = await console_emulator.call("GET", f"v2/{task['name']}", responseView="FULL")
    assert base64.b64decode(full["httpRequest"]["body"]) == body  # what the page decoded

    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(opener).to_be_focused()


async def test_a_failing_task_shows_its_last_status_next_retry_and_the_failure_count(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    queue = await console_emulator.create_queue("failing", min_backoff="60s")
    await open_console(page, console_emulator.console_url, queue)
    task = await console_emulator.create_task(queue, path="/fail/once")

    row = task_row(page, task["name"])
    await expect(row.locator('[data-label="Last status"]')).to_have_text("UNAVAILABLE")
    await expect(row.locator('[data-label="Last response"]')).to_contain_text("HTTP 503")
    await expect(row.locator('[data-label="Next retry"] time')).to_have_count(1)
    await expect(queue_row(page, queue).locator('[data-label="Failed/min"]')).to_have_text("1")
    stored = (await console_emulator.tasks(queue))[0]
    next_retry = await row.locator('[data-label="Next retry"] time').get_attribute("datetime")
    assert next_retry is not None and next_retry[:19] == stored["scheduleTime"][:19]
    await expect(timeline_entry(page, task["name"], "retry_scheduled")).to_have_count(1)


async def test_keyboard_only_and_at_phone_width(
    page: Page, console_emulator: ConsoleEmulator
) -> None:
    await page.set_viewport_size(PHONE)
    queue = await console_emulator.create_queue("keys")
    qid = short_id(queue)
    await open_console(page, console_emulator.console_url)

    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    pause = page.get_by_role("button", name=f"Pause queue {qid}")
    box = await pause.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    await pause.focus()
    await page.keyboard.press("Enter")
    resume = page.get_by_role("button", name=f"Resume queue {qid}")
    await expect(resume).to_be_focused()  # the same button, now the other action
    await page.keyboard.press("Tab")
    purge = page.get_by_role("button", name=f"Purge queue {qid}")
    await expect(purge).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(purge).to_be_focused()
    assert (await console_emulator.queue(queue))["state"] == "PAUSED"

    unnamed = await page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, a[href]')]
            .filter((el) => el.getClientRects().length)
            .filter((el) => !(el.getAttribute('aria-label') || el.labels?.[0]?.textContent
                               || el.textContent).trim())
            .map((el) => el.outerHTML)"""
    )
    assert unnamed == []


async def test_the_console_follows_an_emulator_restart_by_itself(
    page: Page, console_emulator: ConsoleEmulator, browser_log: BrowserLog
) -> None:
    with socket.socket() as probe:  # a port to come back on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = EmulatorProcess(args=["--http-port", str(port)]).start()
    try:
        async with ConsoleEmulator(before.http_url, console_emulator.receiver) as first:
            old = await first.create_queue("before")
            await open_console(page, first.console_url)
            await expect(queue_row(page, old)).to_have_count(1)
    finally:
        before.stop()
    browser_log.expect("ERR_CONNECTION_REFUSED")  # the page retrying while nothing listens
    await expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")

    after = EmulatorProcess(args=["--http-port", str(port)]).start()
    try:
        async with ConsoleEmulator(after.http_url, console_emulator.receiver) as second:
            new = await second.create_queue("after")
            await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            await expect(queue_row(page, new)).to_have_count(1)
            await expect(queue_row(page, old)).to_have_count(0)  # that process's memory died
            created = page.locator('#timeline li[data-kind="queue_created"]')
            await expect(created.filter(has_text=short_id(new))).to_have_count(1)
            await expect(created.filter(has_text=short_id(old))).to_have_count(0)
    finally:
        after.stop()
