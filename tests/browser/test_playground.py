"""The jobs playground at ``/`` in a real Chromium, against the real service (its in-process
emulator delivering over HTTP, the local providers): a person signs in, makes each kind of job
and watches it arrive live."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.app_server import RunningApp
from tests.browser.chromium import BrowserLog
from tests.browser.conftest import PHONE
from tests.browser.playground_page import (
    expect_status,
    job_card,
    job_form,
    open_playground,
    show_form,
    submit,
)


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
    await expect_status(card, "Completed")
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 256)
    await expect(image).to_have_js_property("naturalHeight", 192)
    await expect(card).to_contain_text("a lighthouse at dusk")
    await expect(credits).to_have_attribute("data-credits", "99")


async def test_one_click_on_the_defaults_makes_an_image(
    page: Page, running_app: RunningApp
) -> None:
    """A newcomer signs in and presses the first button they see: the prefilled prompt, the
    seed's default model, the API's default size."""
    await open_playground(page, running_app)
    job = await submit(page, job_form(page, "image-generation"), "image-generation")
    card = job_card(page, job["jobId"])
    await expect_status(card, "Completed")
    image = card.get_by_role("button", name="Open image result full size").locator("img")
    await expect(image).to_have_js_property("naturalWidth", 1024)
    await expect(image).to_have_js_property("naturalHeight", 1024)


async def test_each_job_type_from_its_form_and_the_actions_on_a_result(
    page: Page, running_app: RunningApp
) -> None:
    """Image, then Upscale (from the result's action and from the picker), then Animate (the
    upscaled result as the start frame), then a batch: each completes with its media rendered
    at the size asked for."""
    await open_playground(page, running_app)
    form = await show_form(page, "image-generation")
    await form.get_by_label("Model").select_option("local")
    await form.get_by_label("Width (px)").fill("128")
    await form.get_by_label("Height (px)").fill("96")
    image_job = await submit(page, form, "image-generation")
    image_card = job_card(page, image_job["jobId"])
    await expect_status(image_card, "Completed")
    await expect(image_card).to_contain_text("A beautiful sunset over the sea")  # prefilled

    # The full-size viewer, opened and closed from the keyboard.
    thumb = image_card.get_by_role("button", name="Open image result full size")
    await thumb.focus()
    await page.keyboard.press("Enter")
    viewer = page.get_by_role("dialog", name="Result")
    await expect(viewer.locator("img")).to_have_js_property("naturalWidth", 128)
    await page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await expect(thumb).to_be_focused()

    await image_card.get_by_role("button", name="Upscale image result").click()
    upscale = job_form(page, "image-upscale")
    await expect(upscale).to_be_visible()
    source = upscale.get_by_role("textbox", name="Source image URL")
    result_url = await thumb.locator("img").get_attribute("src")
    await expect(source).to_have_value(result_url or "")
    await source.fill("")
    await upscale.get_by_role(
        "button", name="Choose from your results for Source image URL"
    ).click()
    picker = page.get_by_role("dialog", name="Choose one of your results")
    await picker.get_by_role(
        "button", name=f"Use the image result of job {image_job['jobId']}"
    ).click()
    await expect(picker).to_be_hidden()
    await expect(source).to_have_value(result_url or "")
    await expect(source).to_be_focused()
    await upscale.get_by_label("Model").select_option("local")
    upscaled = await submit(page, upscale, "image-upscale")
    upscaled_card = job_card(page, upscaled["jobId"])
    await expect_status(upscaled_card, "Completed")
    big = upscaled_card.get_by_role("button", name="Open upscale result full size").locator("img")
    await expect(big).to_have_js_property("naturalWidth", 256)  # scale 2, the default
    await expect(big).to_have_js_property("naturalHeight", 192)

    await upscaled_card.get_by_role("button", name="Animate upscale result").click()
    video = job_form(page, "video-generation")
    await expect(video.get_by_label("Prompt")).to_be_focused()
    await video.get_by_label("Prompt").fill("slow zoom on the sunset")
    await video.get_by_label("Model").select_option("local")
    await video.get_by_label("Duration (seconds)").fill("1")
    await video.get_by_label("Width (px)").fill("160")
    await video.get_by_label("Height (px)").fill("96")
    clip = await submit(page, video, "video-generation")
    clip_card = job_card(page, clip["jobId"])
    await expect_status(clip_card, "Completed")
    frames = clip_card.get_by_role("button", name="Open video result full size").locator("img")
    await expect(frames).to_have_js_property("naturalWidth", 160)  # an animated WebP, playing
    await expect(frames).to_have_js_property("naturalHeight", 96)

    batch = await show_form(page, "batch-generation")
    await batch.get_by_label("Prompts, one per line").fill("a red boat\na green hill\na blue moon")
    await batch.get_by_label("Images per task").fill("2")
    await batch.get_by_label("Model").select_option("local")
    await batch.get_by_label("Width (px)").fill("64")
    await batch.get_by_label("Height (px)").fill("64")
    several = await submit(page, batch, "batch-generation")
    batch_card = job_card(page, several["jobId"])
    await expect_status(batch_card, "Completed")
    images = batch_card.get_by_role("list", name="3 results of this batch").locator("img")
    await expect(images).to_have_count(3)
    for index in range(3):
        await expect(images.nth(index)).to_have_js_property("naturalWidth", 64)
    await expect(page.locator("#credits")).to_have_attribute(
        "data-credits", str(100 - 1 - 2 - 5 - 3)
    )


async def test_the_apis_own_422_message_is_shown_on_the_field_it_names(
    page: Page, running_app: RunningApp, browser_log: BrowserLog
) -> None:
    browser_log.expect(r"status of 422")
    await open_playground(page, running_app)
    form = await show_form(page, "image-generation")
    width = form.get_by_label("Width (px)")
    await width.fill("5000")
    await form.get_by_label("Prompt").fill("   ")
    refusal = await submit(page, form, "image-generation", expected=422)
    named = {item["field"]: item["message"] for item in refusal["fields"]}
    width_path = next(name for name in named if name.endswith("width"))
    assert width_path in ("width", "options.width"), named

    await expect(width).to_have_attribute("aria-invalid", "true")
    width_error = form.locator(f'.field[data-path="{width_path}"] .field-error')
    await expect(width_error).to_have_text(named[width_path])
    await expect(width_error).to_contain_text("less than or equal to 2048")
    await expect(form.locator('.field[data-path="prompt"] .field-error')).to_have_text(
        named["prompt"]
    )
    await expect(form.get_by_label("Prompt")).to_be_focused()  # the first field in error
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "100")
    assert (await running_app.call("GET", "/api/jobs"))[1]["jobs"] == []

    await width.fill("64")
    await form.get_by_label("Prompt").fill("fixed")
    await form.get_by_label("Model").select_option("local")
    fixed = await submit(page, form, "image-generation")
    await expect(width).not_to_have_attribute("aria-invalid", "true")
    await expect_status(job_card(page, fixed["jobId"]), "Completed")
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "99")
    await page.goto("about:blank")  # its connections end before its server stops


async def test_a_failed_jobs_error_is_shown_and_its_credits_come_back(
    page: Page, running_app: RunningApp
) -> None:
    await open_playground(page, running_app)
    form = await show_form(page, "image-upscale")
    missing = f"{running_app.base_url}/media/jobs/never-made/image.png"
    await form.get_by_role("textbox", name="Source image URL").fill(missing)
    await form.get_by_label("Model").select_option("local")
    job = await submit(page, form, "image-upscale")
    card = job_card(page, job["jobId"])
    await expect_status(card, "Failed")
    await expect(card.locator(".job-error")).to_have_text(
        "source image not found in storage: jobs/never-made/image.png"
    )
    await expect(page.get_by_role("status")).to_contain_text("Upscale job failed")
    await expect(page.locator("#credits")).to_have_attribute("data-credits", "100")  # refunded


async def test_keyboard_only_at_a_phone_width(page: Page, running_app: RunningApp) -> None:
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await page.goto(running_app.base_url + "/")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    user = page.get_by_label("Sign in as")
    await expect(user).to_be_focused()  # the page starts where the work starts
    await page.keyboard.press("Control+a")
    await page.keyboard.type("erin")
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_have_attribute("data-user", "erin")

    image_tab = page.get_by_role("tab", name="Image")
    await image_tab.focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name="Video")).to_be_focused()
    await expect(page.get_by_role("tab", name="Video")).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("End")
    await expect(page.get_by_role("tab", name="Batch")).to_be_focused()
    await page.keyboard.press("Home")
    await expect(image_tab).to_have_attribute("aria-selected", "true")

    form = job_form(page, "image-generation")
    await page.keyboard.press("Tab")  # into the panel: the prompt
    await expect(form.get_by_label("Prompt")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(form.get_by_label("Model")).to_be_focused()
    await form.get_by_label("Model").select_option("local")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Control+a")
    await page.keyboard.type("120")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Control+a")
    await page.keyboard.type("80")
    async with page.expect_response(lambda r: r.url.endswith("/api/jobs/image-generation")) as made:
        await page.keyboard.press("Enter")  # submits the form
    job = await (await made.value).json()
    card = job_card(page, job["jobId"])
    await expect_status(card, "Completed")
    await expect(card.locator("img")).to_have_js_property("naturalWidth", 120)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width}px of content on a {PHONE['width']}px screen"
