"""The playground as the tests (and a person) see it: signing in, the form of a job type, a
job's card by its id, and a create made through a form (its job id read from the API's own
answer)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.browser.app_server import RunningApp

# A job's work (Pillow rendering, encoding) shares 2 cores with every other engineer's suite:
# waiting for it to finish gets longer than a page action's 10 s.
JOB_TIMEOUT_MS = 30_000

TAB_NAMES = {
    "image-generation": "Image",
    "video-generation": "Video",
    "image-upscale": "Upscale",
    "batch-generation": "Batch",
}


async def open_playground(page: Page, app: RunningApp, user: str = "alice") -> None:
    """The playground, signed in as ``user`` through the development box, its live updates
    connected."""
    await page.goto(app.base_url + "/")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.get_by_label("Sign in as").fill(user)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("body")).to_have_attribute("data-user", user)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def job_form(page: Page, job_type: str) -> Locator:
    return page.locator(f'form.job-form[data-type="{job_type}"]')


async def show_form(page: Page, job_type: str) -> Locator:
    await page.get_by_role("tab", name=TAB_NAMES[job_type]).click()
    form = job_form(page, job_type)
    await expect(form).to_be_visible()
    return form


def field(form: Locator, path: str) -> Locator:
    """The (first) control of the field the API calls ``path`` (``options.width``)."""
    return form.locator(f'.field[data-path="{path}"]').locator("input, textarea, select").first


def field_error(form: Locator, path: str) -> Locator:
    return form.locator(f'.field[data-path="{path}"] .field-error')


def job_card(page: Page, job_id: str) -> Locator:
    return page.locator(f'#job-list > li[data-job-id="{job_id}"]')


async def submit(page: Page, form: Locator, job_type: str, *, expected: int = 202) -> Any:
    """Clicks the form's create button; the API's JSON answer (``expected`` is its status)."""
    async with page.expect_response(
        lambda r: r.url.endswith(f"/api/jobs/{job_type}") and r.request.method == "POST"
    ) as answer:
        await form.get_by_role("button", name="Create").click()
    response = await answer.value
    assert response.status == expected, (response.status, await response.text())
    return await response.json()


async def expect_status(card: Locator, status: str) -> None:
    """The card's status badge reads ``status`` (within the time a job takes)."""
    await expect(card.locator(".badge")).to_have_text(status, timeout=JOB_TIMEOUT_MS)
