"""The README's picture of the playground, taken by the test run: a signed-in user with an
image, a batch, an animation and a failed upscale, at a desktop width, and the same page at a
phone width (checked to fit it: nothing wider than the screen).

Every run takes it and checks it; ``make screenshots`` (``UPDATE_SCREENSHOTS=1``) writes it to
``docs/screenshots/playground.png`` to be committed.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.app_server import RunningApp
from tests.browser.chromium import png_size, screenshot_path
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.playground_page import expect_status, job_card, open_playground

SMALL = {"model": "local", "options": {"width": 320, "height": 240}}


async def test_the_playground_screenshot(
    page: Page, running_app: RunningApp, tmp_path: Path
) -> None:
    app = running_app
    made = [
        await app.call(
            "POST", "/api/jobs/image-generation", json={"prompt": "a red fox in the snow", **SMALL}
        ),
        await app.call(
            "POST",
            "/api/jobs/batch-generation",
            json={"prompts": ["a harbour at dawn", "a pine forest", "a desert road"], **SMALL},
        ),
        await app.call(
            "POST",
            "/api/jobs/video-generation",
            json={
                "prompt": "waves on a beach",
                "model": "local",
                "options": {"duration": 2, "width": 320, "height": 192},
            },
        ),
        await app.call(
            "POST",
            "/api/jobs/image-upscale",
            json={"imageUrl": f"{app.base_url}/media/jobs/gone/image.png", "model": "local"},
        ),
    ]
    for status, job in made:
        assert status == 202, job
    await open_playground(page, app)
    for (_status, job), shown in zip(
        made, ["Completed", "Completed", "Completed", "Failed"], strict=True
    ):
        await expect_status(job_card(page, job["jobId"]), shown)
    for image in await page.locator("#job-list img").all():
        await expect(image).not_to_have_js_property("naturalWidth", 0)

    path = screenshot_path("playground", tmp_path)
    await page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == DESKTOP["width"] and height >= DESKTOP["height"] // 2

    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], (
        f"the page is {overflow}px wide on a {PHONE['width']}px phone"
    )
    phone = tmp_path / "playground-phone.png"
    await page.screenshot(path=str(phone), full_page=False)
