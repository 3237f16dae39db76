"""The console the jobs service mounts at ``/_emulator/`` for its in-process emulator, in a
real Chromium: a job's task waits in a queue paused from the console, and the console's
"Run now" makes the job complete."""

from __future__ import annotations

from playwright.async_api import Page, expect

from app.main import EMULATOR_CONSOLE_PATH
from tests.browser.app_server import RunningApp
from tests.browser.console_page import task_row, timeline_entry

IMAGE_QUEUE = "image-generation-queue"


async def test_a_job_waits_in_a_queue_paused_from_the_console_and_run_now_completes_it(
    page: Page, running_app: RunningApp
) -> None:
    await page.goto(running_app.base_url + EMULATOR_CONSOLE_PATH.rstrip("/"))  # redirected
    assert page.url == running_app.base_url + EMULATOR_CONSOLE_PATH
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    # One per job type and priority, and the webhook queue.
    await expect(page.locator("#queues tbody tr")).to_have_count(13)
    row = page.locator(f'#queues tr[data-queue="{IMAGE_QUEUE}"]')
    await page.get_by_role("button", name=f"Pause queue {IMAGE_QUEUE}").click()
    await expect(row.locator(".badge")).to_have_text("Paused")

    status, job = await running_app.call(
        "POST",
        "/api/jobs/image-generation",
        json={"prompt": "a lighthouse at dusk", "model": "local", "width": 64, "height": 64},
    )
    assert status == 202, job
    await page.get_by_role("button", name=f"Show the tasks of queue {IMAGE_QUEUE}").click()
    task = f"{IMAGE_QUEUE}/tasks/{job['jobId']}"
    await expect(task_row(page, task).locator('[data-label="Dispatches"]')).to_have_text("0")
    assert (await running_app.call("GET", f"/api/jobs/{job['jobId']}"))[1]["status"] == "PENDING"

    await page.get_by_role("button", name=f"Run now: task {job['jobId']}").click()
    await expect(timeline_entry(page, task, "attempt_succeeded")).to_have_count(1)
    status, done = await running_app.call("GET", f"/api/jobs/{job['jobId']}")
    assert done["status"] == "COMPLETED" and done["resultUrl"], done
    await expect(row.locator(".badge")).to_have_text("Paused")  # run now ignores the pause
