"""The playground's optional fields, where the API has them: a job scheduled an hour ahead
(shown as such, cancelled before it starts, refunded, its task gone from the queue) and a
webhook URL (called when the job completes; a bad one refused on its own field)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Page, expect

from app.main import EMULATOR_CONSOLE_PATH
from tests.browser.app_server import RunningApp, serving_app
from tests.browser.chromium import BrowserLog
from tests.browser.playground_page import (
    expect_status,
    job_card,
    open_playground,
    show_form,
    submit,
)
from tests.support.receiver import Receiver

QUEUES = "projects/local-project/locations/local/queues"
# A datetime-local value for a moment an hour from now, in the browser's own time zone.
IN_AN_HOUR = """() => {
  const at = new Date(Date.now() + 3600 * 1000);
  at.setMilliseconds(0);
  const pad = (n) => String(n).padStart(2, "0");
  return [
    `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T`
      + `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`,
    at.toISOString(),
  ];
}"""


async def test_a_scheduled_job_shows_its_time_and_cancels_before_it_runs(
    page: Page, running_app: RunningApp
) -> None:
    await open_playground(page, running_app)
    form = await show_form(page, "image-generation")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_text("Schedule, priority, dependencies, webhook").click()
    local, utc = await page.evaluate(IN_AN_HOUR)
    await form.get_by_label("Run at").fill(local)
    job = await submit(page, form, "image-generation")
    assert job["runAt"] == utc, job  # the browser's hour, in UTC
    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Pending")
    await expect(card.locator(".job-run-at")).to_contain_text("Scheduled for")
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "99")  # reserved
    rest = f"{running_app.base_url}{EMULATOR_CONSOLE_PATH}v2/{QUEUES}"
    task = f"{rest}/image-generation-queue/tasks/{job['jobId']}"
    async with running_app.http.get(task) as queued:
        scheduled = (await queued.json())["scheduleTime"]
    at = datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
    assert abs(at - datetime.fromisoformat(utc.replace("Z", "+00:00"))) < timedelta(seconds=1)
    assert at > datetime.now(UTC) + timedelta(minutes=50)

    await card.get_by_role("button", name=f"Cancel image job {job['jobId']}").click()
    await expect_status(card, "Cancelled")
    await expect(card.locator(".job-run-at")).to_have_count(0)
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "100")
    async with running_app.http.get(task) as gone:
        assert gone.status == 404


@pytest_asyncio.fixture(loop_scope="session")
async def hooks() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_a_webhook_url_from_the_form_is_called_and_a_bad_one_refused_on_its_field(
    page: Page, tmp_path: Path, hooks: Receiver, browser_log: BrowserLog
) -> None:
    browser_log.expect(r"status of 422")
    allowed = hooks.base_url.removeprefix("http://")
    async with serving_app(tmp_path, fetch_allow_hosts=[allowed]) as app:
        await open_playground(page, app)
        form = await show_form(page, "image-generation")
        await form.get_by_label("Model").select_option("local")
        more = form.locator("details.more")
        hook = form.get_by_label("Webhook URL")
        await more.locator("summary").click()
        await hook.fill("ftp://example.com/hook")
        await more.locator("summary").click()  # closed again: the error must open it
        refusal = await submit(page, form, "image-generation", expected=422)
        assert [item["field"] for item in refusal["fields"]] == ["webhookUrl"], refusal
        await expect(more).to_have_attribute("open", "")
        await expect(hook).to_have_attribute("aria-invalid", "true")
        await expect(form.locator('.field[data-path="webhookUrl"] .field-error')).to_have_text(
            refusal["fields"][0]["message"]
        )

        await hook.fill(hooks.url("/hooks/playground"))
        await form.get_by_role("checkbox", name="job.completed").check()
        job = await submit(page, form, "image-generation")
        await expect_status(job_card(page, job["jobId"]), "Completed")
        [delivery] = await hooks.wait_for_path("/hooks/playground", timeout=30)
        event = json.loads(delivery.body)
        assert event["type"] == "job.completed"
        assert event["data"]["jobId"] == job["jobId"]
        assert delivery.header("webhook-signature") is not None
        await page.goto("about:blank")  # its connections end before its server stops
