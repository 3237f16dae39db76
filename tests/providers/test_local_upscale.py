"""The local upscaler really enlarges images (Lanczos) and refuses bad input clearly."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from app.providers import LocalUpscaleProvider, PermanentProviderError
from tests.providers.conftest import png_bytes


async def upscale(image: bytes, scale: int = 2) -> Image.Image:
    data = await LocalUpscaleProvider().upscale(image=image, scale=scale, model="real-esrgan")
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img


async def test_jpeg_and_webp_sources_are_accepted() -> None:
    for fmt in ("JPEG", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGB", (10, 6), (10, 200, 30)).save(buf, fmt)
        assert (await upscale(buf.getvalue(), 2)).size == (20, 12)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize(("mode", "colour"), [("RGB", (1, 2, 3)), ("RGBA", (1, 2, 3, 4)), ("L", 9)])
async def test_output_is_scale_times_the_input(scale: int, mode: str, colour: object) -> None:
    img = await upscale(png_bytes(37, 21, mode, colour), scale)
    assert img.size == (37 * scale, 21 * scale)
    assert img.mode == ("RGBA" if mode == "RGBA" else "RGB")


async def test_upscale_is_a_lanczos_resize() -> None:
    from app.providers.local import render_image

    source = render_image("texture", 64, 48, seed=5)
    buf = io.BytesIO()
    source.save(buf, "PNG")
    result = await upscale(buf.getvalue(), 4)
    expected = source.resize((256, 192), Image.Resampling.LANCZOS)
    assert result.convert("RGB").tobytes() == expected.tobytes()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


@pytest.mark.parametrize("data", [b"", b"not an image", png_bytes(8, 8)[:40], EPS])
async def test_bad_bytes_are_a_permanent_error(data: bytes) -> None:
    with pytest.raises(PermanentProviderError, match="source image"):
        await upscale(data)


@pytest.mark.parametrize("scale", [0, 9, -2])
async def test_unsupported_scale_is_refused(scale: int) -> None:
    with pytest.raises(PermanentProviderError, match="upscale factor"):
        await upscale(png_bytes(4, 4), scale)


async def test_results_beyond_the_size_limit_are_refused() -> None:
    with pytest.raises(PermanentProviderError, match="exceeds the limit"):
        await upscale(png_bytes(1100, 10), 4)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""
    real = png_bytes(1, 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + patched + real[8 + 25 :]


@pytest.mark.parametrize("side", [8_000, 20_000])
async def test_huge_claimed_dimensions_are_refused_before_decoding(side: int) -> None:
    with pytest.raises(PermanentProviderError, match=rf"too large|{side}x{side}.* pixels"):
        await upscale(_png_claiming(side, side))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and holds no pixels: what a decompression
    bomb looks like to a reader that trusts the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_sources_too_large_are_refused_from_the_header_without_decoding() -> None:
    """6300 x 6300 would decode to ~120 MB; x4 of 2100 x 2100 to 280 MB: both are refused
    in a fresh process whose peak memory barely moves."""
    import subprocess
    import sys

    script = """
import resource, sys
from app.providers.local.upscale import upscale_image
from app.providers.base import PermanentProviderError
data = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
messages = []
for size, scale in ((6300, 2), (2100, 4)):
    part = data if size == 6300 else HEADER2100
    try:
        upscale_image(part, scale)
    except PermanentProviderError as error:
        messages.append(error.message)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(after - before)
print("|".join(messages))
""".replace("HEADER2100", repr(_png_header_only(2100, 2100)))
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=_png_header_only(6300, 6300),
        capture_output=True,
        timeout=60,
        check=True,
    )
    grown_kb, messages = done.stdout.decode().splitlines()
    assert int(grown_kb) < 10_000, grown_kb  # KiB: far below one decoded frame
    first, second = messages.split("|")
    assert "6300x6300" in first and "16777216 pixels" in first
    assert "8400x8400" in second and "object at" not in second
