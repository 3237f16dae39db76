"""The console the jobs service mounts at ``/_emulator/`` for its in-process emulator, in a
real Chromium: a job's task waits in a queue paused from the console, and the console's
"Run now" makes the job complete."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Page, expect

from app.auth import issue_dev_token
from app.main import EMULATOR_CONSOLE_PATH, create_app
from app.settings import Settings
from tests.browser.console_page import task_row, timeline_entry

IMAGE_QUEUE = "image-generation-queue"


@dataclass
class RunningApp:
    base_url: str
    settings: Settings
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {issue_dev_token(self.settings, 'alice')}"}
        async with self.http.request(
            method, self.base_url + path, headers=headers, **kwargs
        ) as response:
            return response.status, await response.json(content_type=None)


@pytest_asyncio.fixture(loop_scope="session")
async def running_app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """``python -m app``'s assembly on a real port: SQLite, the in-process emulator on the
    real clock delivering over HTTP to the app itself, the local providers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        app_env="development",
        api_base_url=base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        storage_dir=tmp_path / "media",
        jwt_secret="browser-test-secret-0123456789abcdef0123",
        internal_api_key="browser-test-internal-key",
        reconcile_interval_seconds=0,
        local_providers_only=True,
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    async with aiohttp.ClientSession() as http:
        yield RunningApp(base_url, settings, http)
    await runner.cleanup()


async def test_a_job_waits_in_a_queue_paused_from_the_console_and_run_now_completes_it(
    page: Page, running_app: RunningApp
) -> None:
    await page.goto(running_app.base_url + EMULATOR_CONSOLE_PATH.rstrip("/"))  # redirected
    assert page.url == running_app.base_url + EMULATOR_CONSOLE_PATH
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.locator("#queues tbody tr")).to_have_count(4)  # one per job type
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

    await page.get_by_role("button", name=f"Run task {job['jobId']} now").click()
    await expect(timeline_entry(page, task, "attempt_succeeded")).to_have_count(1)
    status, done = await running_app.call("GET", f"/api/jobs/{job['jobId']}")
    assert done["status"] == "COMPLETED" and done["resultUrl"], done
    await expect(row.locator(".badge")).to_have_text("Paused")  # run now ignores the pause
