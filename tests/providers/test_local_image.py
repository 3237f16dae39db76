"""The local image provider draws real, deterministic pictures of exactly the requested size."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from app.providers import LocalImageProvider, PermanentProviderError
from app.providers.local import image as local_module


async def generate(
    prompt: str = "a fox", width: int = 64, height: int = 64, seed: int | None = 1
) -> bytes:
    return await LocalImageProvider().generate_image(
        prompt=prompt, width=width, height=height, seed=seed, model="flux-1.1-pro"
    )


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (64, 64), (300, 120), (1024, 512)])
async def test_image_is_a_png_of_exactly_the_requested_size(size: tuple[int, int]) -> None:
    data = await generate(width=size[0], height=size[1])
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert img.size == size
    img.load()


async def test_same_prompt_and_seed_give_identical_bytes() -> None:
    assert await generate("a red fox", seed=42) == await generate("a red fox", seed=42)
    assert await generate("a red fox", seed=None) == await generate("a red fox", seed=None)


async def test_different_prompts_or_seeds_give_different_images() -> None:
    images = {
        await generate("a red fox", seed=1),
        await generate("a blue whale", seed=1),
        await generate("a red fox", seed=2),
        await generate("a red fox", seed=None),
    }
    assert len(images) == 4


async def test_image_is_not_flat() -> None:
    img = Image.open(io.BytesIO(await generate(width=128, height=128))).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 24)
    assert colours is not None and len(colours) > 100


async def test_prompt_is_written_on_large_images(monkeypatch: pytest.MonkeyPatch) -> None:
    captioned = local_module.render_image("hello world", 400, 200, seed=3)
    monkeypatch.setattr(local_module, "_caption", lambda img, prompt: None)
    plain = local_module.render_image("hello world", 400, 200, seed=3)
    top = (0, 0, 400, 100)
    assert captioned.crop(top).tobytes() == plain.crop(top).tobytes()
    _low, high = captioned.crop((0, 150, 400, 200)).convert("L").getextrema()
    assert isinstance(high, int) and high >= 230  # white glyphs on a darkened band


@pytest.mark.parametrize(
    ("width", "height"),
    [(0, 64), (64, -1), (5000, 64), (64, 4097), (4097, 4096), (4100, 4000)],
)
async def test_out_of_bounds_sizes_are_refused_permanently(width: int, height: int) -> None:
    with pytest.raises(PermanentProviderError, match="size"):
        await generate(width=width, height=height)


async def test_rendering_runs_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = local_module.render_image

    def spy(*args: object, **kwargs: object) -> object:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(local_module, "render_image", spy)
    await generate()
    assert threads and threads[0] != threading.get_ident()
