"""Live updates in the playground: a batch's progress moving chunk by chunk, a job held in a
queue paused from the emulator console and run from there, the SSE fallback when Socket.IO
cannot connect, and a production deployment's pasted token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Route, expect

from app.auth import issue_dev_token
from app.main import EMULATOR_CONSOLE_PATH
from tests.browser.app_server import RunningApp, serving_app
from tests.browser.chromium import BrowserLog
from tests.browser.console_page import open_console, task_row, timeline_entry
from tests.browser.playground_page import (
    expect_status,
    job_card,
    open_playground,
    show_form,
    submit,
)

QUEUES = "projects/local-project/locations/local/queues"  # the in-process emulator's


async def emulator(app: RunningApp, path: str) -> Any:
    """A Cloud Tasks REST call to the app's in-process emulator (what the console calls)."""
    url = f"{app.base_url}{EMULATOR_CONSOLE_PATH}v2/{path}"
    async with app.http.post(url, json={}) as answer:
        body = await answer.json()
        assert answer.status == 200, body
        return body


async def emulator_status(app: RunningApp, path: str) -> int:
    async with app.http.get(f"{app.base_url}{EMULATOR_CONSOLE_PATH}v2/{path}") as answer:
        return answer.status


async def test_cancel_a_pending_job_refunds_it_and_removes_its_task(
    page: Page, running_app: RunningApp
) -> None:
    await emulator(running_app, f"{QUEUES}/video-generation-queue:pause")
    await open_playground(page, running_app)
    credits = page.locator("#credits")
    form = await show_form(page, "video-generation")
    await form.get_by_label("Prompt").fill("a kite over the dunes")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Duration (seconds)").fill("1")
    job = await submit(page, form, "video-generation")
    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Pending")
    await expect(credits).to_have_attribute("data-credits", "95")
    task = f"{QUEUES}/video-generation-queue/tasks/{job['jobId']}"
    assert await emulator_status(running_app, task) == 200

    cancel = card.get_by_role("button", name=f"Cancel video job {job['jobId']}")
    await cancel.click()
    await expect_status(card, "Cancelled")
    await expect(cancel).to_have_count(0)  # nothing left to cancel
    await expect(credits).to_have_attribute("data-credits", "100")
    await expect(page.get_by_role("status")).to_contain_text("Video job cancelled")
    assert await emulator_status(running_app, task) == 404
    status, shown = await running_app.call("GET", f"/api/jobs/{job['jobId']}")
    assert shown["status"] == "CANCELLED", (status, shown)


async def test_a_batch_shows_its_progress_live_chunk_by_chunk(
    page: Page, running_app: RunningApp
) -> None:
    await emulator(running_app, f"{QUEUES}/batch-generation-queue:pause")
    await open_playground(page, running_app)
    form = await show_form(page, "batch-generation")
    await form.get_by_label("Prompts, one per line").fill("one\ntwo\nthree\nfour")
    await form.get_by_label("Images per task").fill("1")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Width (px)").fill("64")
    await form.get_by_label("Height (px)").fill("64")
    job = await submit(page, form, "batch-generation")
    card = job_card(page, job["jobId"])
    bar = card.get_by_role("progressbar", name="Progress of batch job")
    await expect(card.locator(".badge")).to_have_text("Pending")
    await expect(bar).to_have_js_property("value", 0)

    for chunk, percent in ((0, 25), (2, 50), (1, 75)):
        await emulator(
            running_app, f"{QUEUES}/batch-generation-queue/tasks/{job['jobId']}-chunk-{chunk}:run"
        )
        await expect(card.locator(".percent")).to_have_text(f"{percent}%")
        await expect(bar).to_have_js_property("value", percent)
        await expect(card.locator(".badge")).to_have_text("Processing")
    await emulator(running_app, f"{QUEUES}/batch-generation-queue/tasks/{job['jobId']}-chunk-3:run")
    await expect_status(card, "Completed")
    images = card.get_by_role("list", name="4 results of this batch").locator("img")
    await expect(images).to_have_count(4)
    for index in range(4):
        await expect(images.nth(index)).to_have_js_property("naturalWidth", 64)


async def test_a_job_waits_in_a_queue_paused_from_the_console_and_runs_from_there(
    page: Page, context: BrowserContext, running_app: RunningApp, browser_log: BrowserLog
) -> None:
    console = await context.new_page()
    browser_log.attach(console)
    await open_console(console, running_app.base_url + EMULATOR_CONSOLE_PATH)
    await console.get_by_role("button", name="Pause queue image-generation-queue").click()
    await expect(
        console.locator('#queues tr[data-queue="image-generation-queue"] .badge')
    ).to_have_text("Paused")

    await open_playground(page, running_app)
    form = await show_form(page, "image-generation")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Width (px)").fill("96")
    await form.get_by_label("Height (px)").fill("64")
    job = await submit(page, form, "image-generation")
    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Pending")

    await console.get_by_role(
        "button", name="Show the tasks of queue image-generation-queue"
    ).click()
    task = f"image-generation-queue/tasks/{job['jobId']}"
    await expect(task_row(console, task).locator('[data-label="Dispatches"]')).to_have_text("0")
    await expect(card.locator(".badge")).to_have_text("Pending")  # still waiting
    await console.get_by_role("button", name=f"Run now: task {job['jobId']}").click()
    await expect(timeline_entry(console, task, "attempt_succeeded")).to_have_count(1)

    await expect_status(card, "Completed")
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 96)
    await console.close()


async def finished_state(app: RunningApp, job_id: str) -> Any:
    """The job's last state, read from its SSE stream (which ends when the job is finished)."""
    headers = {"Authorization": f"Bearer {issue_dev_token(app.settings, 'alice')}"}
    last = None
    async with app.http.get(f"{app.base_url}/api/jobs/{job_id}/events", headers=headers) as events:
        async for line in events.content:
            if line.startswith(b"data: "):
                last = json.loads(line.removeprefix(b"data: "))
    return last


async def test_a_job_that_finishes_before_the_socket_connects_is_shown_finished(
    page: Page, running_app: RunningApp
) -> None:
    """The list is read, then the job completes, then the socket connects: the update went to
    nobody and the connect snapshot holds unfinished jobs only, so the page reads it again."""
    await emulator(running_app, f"{QUEUES}/image-generation-queue:pause")
    status, job = await running_app.call(
        "POST", "/api/jobs/image-generation", json={"prompt": "late", "model": "local"}
    )
    assert status == 202, job
    released = asyncio.Event()

    async def hold(route: Route) -> None:
        await released.wait()
        await route.continue_()

    await page.route("**/socket.io/?*", hold)
    await page.goto(running_app.base_url + "/")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.get_by_role("button", name="Sign in").click()
    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Pending")  # listed, socket held

    await emulator(running_app, f"{QUEUES}/image-generation-queue/tasks/{job['jobId']}:run")
    assert (await finished_state(running_app, job["jobId"]))["status"] == "COMPLETED"
    await expect(card.locator(".badge")).to_have_text("Pending")  # nothing told the page
    released.set()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect_status(card, "Completed")
    # What the completion makes the page load (the result, the credits) is loaded before the
    # app stops at the end of the test.
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 1024)
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "99")
    await page.goto("about:blank")  # its connections end before its server stops


async def test_without_socket_io_the_page_follows_its_jobs_over_sse(
    page: Page, running_app: RunningApp, browser_log: BrowserLog
) -> None:
    browser_log.expect(r"socket\.io")  # the refused connections, logged by Chromium

    async def refuse(route: Route) -> None:
        await route.abort()

    await page.route("**/socket.io/?*", refuse)
    await open_playground(page, running_app)
    await expect(page.locator("#connection-text")).to_have_text("Live (server-sent events)")
    await emulator(running_app, f"{QUEUES}/image-generation-queue:pause")
    form = await show_form(page, "image-generation")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Width (px)").fill("80")
    await form.get_by_label("Height (px)").fill("80")
    async with page.expect_request(lambda r: r.url.endswith("/events")) as followed:
        job = await submit(page, form, "image-generation")
    assert (await followed.value).url.endswith(f"/api/jobs/{job['jobId']}/events")
    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Pending")
    await emulator(running_app, f"{QUEUES}/image-generation-queue/tasks/{job['jobId']}:run")
    await expect_status(card, "Completed")
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 80)


async def test_in_production_a_pasted_token_signs_in(
    page: Page, tmp_path: Path, browser_log: BrowserLog
) -> None:
    browser_log.expect(r"status of 401")  # the bad token, refused by /api/me
    async with serving_app(tmp_path, app_env="production") as app:
        await page.goto(app.base_url + "/")
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        await expect(page.get_by_label("Sign in as")).to_be_hidden()
        await expect(page.get_by_role("link", name="Emulator console")).to_be_hidden()
        token = page.get_by_label("Token")
        await expect(token).to_be_focused()
        await token.fill("not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#token-error")).to_contain_text("invalid token")
        await expect(token).to_have_attribute("aria-invalid", "true")

        await token.fill("Bearer " + issue_dev_token(app.settings, "dana"))
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("body")).to_have_attribute("data-user", "dana")
        await expect(page.locator("#credits")).to_have_attribute("data-credits", "100")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        await page.reload()  # the token lives in this tab's session storage
        await expect(page.locator("body")).to_have_attribute("data-user", "dana")
        await page.get_by_role("button", name="Sign out").click()
        await expect(token).to_be_visible()
        await page.goto("about:blank")  # its connections end before its server stops


async def test_jobs_are_listed_newest_first_a_page_at_a_time(
    page: Page, running_app: RunningApp
) -> None:
    await emulator(running_app, f"{QUEUES}/image-generation-queue:pause")  # they stay PENDING
    ids = []
    for index in range(14):
        status, job = await running_app.call(
            "POST",
            "/api/jobs/image-generation",
            json={"prompt": f"number {index}", "model": "local"},
        )
        assert status == 202, job
        ids.append(job["jobId"])
    await open_playground(page, running_app)
    cards = page.locator("#job-list > li")
    await expect(cards).to_have_count(12)  # the first page
    assert await cards.evaluate_all("cards => cards.map(c => c.dataset.jobId)") == ids[::-1][:12]
    await page.get_by_role("button", name="Load older jobs").click()
    await expect(cards).to_have_count(14)
    await expect(page.get_by_role("button", name="Load older jobs")).to_be_hidden()
    assert await cards.evaluate_all("cards => cards.map(c => c.dataset.jobId)") == ids[::-1]

    status, newest = await running_app.call(
        "POST", "/api/jobs/image-generation", json={"prompt": "made elsewhere", "model": "local"}
    )
    await expect(cards.first).to_have_attribute("data-job-id", newest["jobId"])  # live, on top
    await expect(page.locator("#credits")).to_have_attribute("data-credits", str(100 - 15))
