"""Local provider benchmarks: how long the offline Pillow providers take per result.

    python -m benchmarks.providers [--quick] [--repeat N] [--json PATH]

Each case calls the provider the way a job handler does (through ``asyncio.to_thread``) and
reports the median wall time of the repeats, with the output size. The end-to-end target of
the jobs service (>= 100 jobs/s at 64x64) needs the 64x64 render well under 10 ms.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

from PIL import Image

from app.providers.local import LocalImageProvider, LocalUpscaleProvider, LocalVideoProvider
from benchmarks.common import median, parser, print_table, write_json

Case = tuple[str, Callable[[], Awaitable[bytes]]]


def _cases() -> list[Case]:
    image = LocalImageProvider()
    video = LocalVideoProvider()
    upscale = LocalUpscaleProvider()
    buf = io.BytesIO()
    Image.effect_mandelbrot((256, 256), (-2.0, -1.5, 1.0, 1.5), 100).convert("RGB").save(buf, "PNG")
    source = buf.getvalue()

    async def render(size: int) -> bytes:
        return await image.generate_image(
            prompt="a red fox in the snow at dawn", width=size, height=size, seed=7, model="local"
        )

    async def clip() -> bytes:
        data, _ = await video.generate_video(
            prompt="a red fox running",
            duration_seconds=2.0,
            width=512,
            height=512,
            image=None,
            model="local",
        )
        return data

    async def enlarge() -> bytes:
        return await upscale.upscale(image=source, scale=4, model="local")

    return [
        ("image 64x64", lambda: render(64)),
        ("image 1024x1024", lambda: render(1024)),
        ("video 2 s 512x512 (20 frames)", clip),
        ("upscale 256x256 x4", enlarge),
    ]


async def run(repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, call in _cases():
        await call()  # warm-up: font loading, first thread
        times: list[float] = []
        size = 0
        for _ in range(repeat):
            start = time.perf_counter()
            size = len(await call())
            times.append(time.perf_counter() - start)
        ms = median(times) * 1000
        rows.append({"case": name, "median ms": ms, "per s": 1000 / ms, "bytes": size})
    return rows


def main() -> None:
    args = parser(__doc__.splitlines()[0] if __doc__ else "providers").parse_args()
    repeat = 3 if args.quick else max(args.repeat, 5)
    rows = asyncio.run(run(repeat))
    print_table(f"Local providers (median of {repeat})", rows)
    write_json(args.json, {"benchmark": "providers", "repeat": repeat, "results": rows})


if __name__ == "__main__":
    main()
