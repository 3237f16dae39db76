"""The jobs playground at ``/`` in a real Chromium, against the real service (its in-process
emulator delivering over HTTP, the local providers): a person signs in, makes each kind of job
and watches it arrive live."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.app_server import RunningApp
from tests.browser.playground_page import job_card, open_playground, show_form, submit


async def test_sign_in_and_make_an_image_that_arrives_live_at_its_size(
    page: Page, running_app: RunningApp
) -> None:
    await open_playground(page, running_app)
    credits = page.locator("#credits")
    await expect(credits).to_have_attribute("data-credits", "100")

    form = await show_form(page, "image-generation")
    await form.get_by_label("Prompt").fill("a lighthouse at dusk")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Width (px)").fill("256")
    await form.get_by_label("Height (px)").fill("192")
    job = await submit(page, form, "image-generation")

    card = job_card(page, job["jobId"])
    await expect(card.locator(".badge")).to_have_text("Completed")
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 256)
    await expect(image).to_have_js_property("naturalHeight", 192)
    await expect(card).to_contain_text("a lighthouse at dusk")
    await expect(credits).to_have_attribute("data-credits", "99")
