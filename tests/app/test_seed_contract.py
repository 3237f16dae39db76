"""The seed's request contract honoured to the letter: its four example bodies, ``options``
per job type (validated, honoured, never charged when refused), ``imageUrls`` on video, the
sizes it asks for, and ``cursor=<jobId>``; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image, ImageChops, ImageStat

from tests.app.conftest import Service, StartService

# The seed's example bodies, character for character (its documentation's "API Endpoints").
SEED_IMAGE = """{
  "prompt": "A beautiful sunset",
  "model": "flux-1.1-pro",
  "provider": "bfl",
  "options": {
    "width": 1024,
    "height": 1024
  }
}"""
SEED_VIDEO = """{
  "prompt": "A cat playing with a ball",
  "model": "runway-gen4",
  "provider": "runway",
  "imageUrls": ["https://example.com/image.jpg"],
  "options": {
    "duration": 5
  }
}"""
SEED_UPSCALE = """{
  "imageUrl": "https://example.com/image.jpg",
  "model": "real-esrgan",
  "provider": "upscale",
  "scale": 4,
  "options": {}
}"""
SEED_BATCH = """{
  "prompts": [
    "A beautiful sunset",
    "A cat playing",
    "A mountain landscape"
  ],
  "model": "flux-1.1-pro",
  "provider": "bfl",
  "batchSize": 5,
  "options": {}
}"""

RED, BLUE = (220, 30, 30), (20, 40, 230)


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
async def origin() -> AsyncIterator[TestServer]:
    """The seed's ``https://example.com`` images, served on 127.0.0.1 (no network here)."""
    edges = Image.new("RGB", (300, 200), RED)
    edges.paste(BLUE, (100, 50, 200, 150))
    buf = io.BytesIO()
    edges.save(buf, "PNG")
    images = {
        "image.jpg": jpeg((1024, 1024), RED),
        "blue.jpg": jpeg((300, 200), BLUE),
        "edges.png": buf.getvalue(),
    }

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=images[request.match_info["name"]], content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{name}", image)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def service(start_service: StartService, origin: TestServer) -> Service:
    return await start_service(fetch_allow_hosts=[f"127.0.0.1:{origin.port}"])


def local(body: str, origin: TestServer) -> dict[str, Any]:
    """The seed's body with its example host replaced by the local origin."""
    data: dict[str, Any] = json.loads(
        body.replace("https://example.com", f"http://127.0.0.1:{origin.port}")
    )
    return data


def image_of(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


async def completed(service: Service, user: str, job_id: str) -> dict[str, Any]:
    await service.run_until_idle()
    job = await service.job(user, job_id)
    assert job["status"] == "COMPLETED", job
    return job


async def post_raw(service: Service, job_type: str, raw: str, user: str) -> tuple[int, Any]:
    return await service.request(
        "POST",
        f"/api/jobs/{job_type}",
        user=user,
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
    )


def frame_durations(clip: Image.Image) -> list[int]:
    durations = []
    for index in range(getattr(clip, "n_frames", 1)):
        clip.seek(index)
        clip.load()  # Pillow fills a WebP frame's duration when the frame is decoded
        durations.append(clip.info["duration"])
    return durations


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


async def test_the_seeds_four_bodies_are_accepted_as_printed(service: Service) -> None:
    for job_type, raw, cost in [
        ("image-generation", SEED_IMAGE, 1),
        ("video-generation", SEED_VIDEO, 5),
        ("image-upscale", SEED_UPSCALE, 2),
        ("batch-generation", SEED_BATCH, 3),
    ]:
        before = await service.credits("seed")
        status, job = await post_raw(service, job_type, raw, "seed")
        assert status == 202, job
        assert job["status"] == "PENDING" and job["type"] == job_type
        assert await service.credits("seed") == before - cost


async def test_the_seeds_image_body_makes_the_size_in_its_options(service: Service) -> None:
    status, job = await post_raw(service, "image-generation", SEED_IMAGE, "ann")
    assert status == 202, job
    done = await completed(service, "ann", job["jobId"])
    assert image_of(await service.download(done["resultUrl"])).size == (1024, 1024)
    small = json.loads(SEED_IMAGE)
    small["options"] = {"width": 256, "height": 192}
    done = await completed(
        service, "ann", (await service.create("ann", "image-generation", small))["jobId"]
    )
    picture = image_of(await service.download(done["resultUrl"]))
    assert (picture.format, picture.size) == ("PNG", (256, 192))


async def test_the_seeds_video_body_animates_from_its_image_for_its_duration(
    service: Service, origin: TestServer
) -> None:
    body = local(SEED_VIDEO, origin)
    body["options"]["width"], body["options"]["height"] = 160, 96  # a small clip: fast
    job = await service.create("ben", "video-generation", body)
    done = await completed(service, "ben", job["jobId"])
    clip = Image.open(io.BytesIO(await service.download(done["resultUrl"])))
    assert sum(frame_durations(clip)) == 5000
    clip.seek(0)
    first = clip.convert("RGB").crop((0, 0, 160, 90))  # above the progress bar
    assert mean_difference(first, Image.new("RGB", first.size, RED)) < 12
    # options.duration = 2, and a second image: the clip ends on it.
    body["options"] = {"duration": 2, "ratio": "128:96"}
    body["imageUrls"].append(f"http://127.0.0.1:{origin.port}/blue.jpg")
    job = await service.create("ben", "video-generation", body)
    clip = Image.open(
        io.BytesIO(
            await service.download((await completed(service, "ben", job["jobId"]))["resultUrl"])
        )
    )
    assert clip.size == (128, 96)
    assert sum(frame_durations(clip)) == 2000
    clip.seek(0)
    assert (
        mean_difference(clip.convert("RGB").crop((0, 0, 128, 90)), Image.new("RGB", (128, 90), RED))
        < 12
    )
    clip.seek(clip.n_frames - 1)
    last = clip.convert("RGB").crop((0, 0, 128, 90))
    assert mean_difference(last, Image.new("RGB", last.size, BLUE)) < 12


async def test_the_seeds_upscale_body_makes_4096_from_1024(
    service: Service, origin: TestServer
) -> None:
    job = await service.create("cat", "image-upscale", local(SEED_UPSCALE, origin))
    done = await completed(service, "cat", job["jobId"])
    assert image_of(await service.download(done["resultUrl"])).size == (4096, 4096)
    assert await service.credits("cat") == 98


async def test_the_seeds_batch_body_makes_three_images(service: Service) -> None:
    status, job = await post_raw(service, "batch-generation", SEED_BATCH, "dan")
    assert status == 202, job
    body = json.loads(SEED_BATCH)
    body["options"] = {"width": 64, "height": 96, "outputFormat": "webp"}
    job = await service.create("dan", "batch-generation", body)
    done = await completed(service, "dan", job["jobId"])
    assert len(done["resultUrls"]) == 3
    for url in done["resultUrls"]:
        picture = image_of(await service.download(url))
        assert (picture.format, picture.size) == ("WEBP", (64, 96))


async def test_image_options_seed_and_format_are_honoured(service: Service) -> None:
    async def render(options: dict[str, Any]) -> bytes:
        body = {"prompt": "a lighthouse", "model": "local", "options": options}
        job = await service.create("eve", "image-generation", body)
        done = await completed(service, "eve", job["jobId"])
        return await service.download(done["resultUrl"])

    one = await render({"width": 96, "height": 64, "seed": 7})
    assert one == await render({"width": 96, "height": 64, "seed": 7})
    assert one != await render({"width": 96, "height": 64, "seed": 8})
    jpg = image_of(await render({"width": 96, "height": 64, "outputFormat": "jpeg"}))
    assert (jpg.format, jpg.size) == ("JPEG", (96, 64))


async def test_top_level_spellings_still_work_and_conflicts_are_refused(service: Service) -> None:
    job = await service.create(
        "fay", "image-generation", {"prompt": "x", "width": 128, "height": 64}
    )
    done = await completed(service, "fay", job["jobId"])
    assert image_of(await service.download(done["resultUrl"])).size == (128, 64)
    same = {"prompt": "x", "width": 128, "options": {"width": 128, "height": 64}}
    assert (await service.create("fay", "image-generation", same))["status"] == "PENDING"
    status, error = await service.request(
        "POST",
        "/api/jobs/image-generation",
        user="fay",
        json={"prompt": "x", "width": 512, "options": {"width": 256}},
    )
    assert status == 422
    assert error["fields"][0]["field"] == "options.width"
    assert "conflicts with width=512" in error["fields"][0]["message"]


async def test_face_enhance_changes_the_upscale(service: Service, origin: TestServer) -> None:
    url = f"http://127.0.0.1:{origin.port}/edges.png"
    plain = await service.create("gus", "image-upscale", {"imageUrl": url, "model": "local"})
    sharp = await service.create(
        "gus",
        "image-upscale",
        {"imageUrl": url, "model": "local", "options": {"faceEnhance": True}},
    )
    results = []
    for job in (plain, sharp):
        done = await completed(service, "gus", job["jobId"])
        results.append(image_of(await service.download(done["resultUrl"])))
    assert results[0].size == results[1].size == (600, 400)
    assert results[0].tobytes() != results[1].tobytes()


OK = "https://example.com/cat.png"
BAD_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    *[
        ("image-generation", {"prompt": "x", "options": opts}, field)
        for opts, field in [
            ({"width": 63}, "options.width"),
            ({"width": 2049}, "options.width"),
            ({"width": "256"}, "options.width"),
            ({"width": 256.0}, "options.width"),
            ({"width": True}, "options.width"),
            ({"width": None, "height": -5}, "options.height"),
            ({"height": [256]}, "options.height"),
            ({"seed": -1}, "options.seed"),
            ({"seed": 2**32}, "options.seed"),
            ({"seed": "7"}, "options.seed"),
            ({"outputFormat": "gif"}, "options.outputFormat"),
            ({"outputFormat": "PNG"}, "options.outputFormat"),
            ({"outputFormat": 1}, "options.outputFormat"),
            ({"steps": 30}, "options.steps"),
            ({"safetyTolerance": 7}, "options.safetyTolerance"),
            ({"safetyTolerance": "2"}, "options.safetyTolerance"),
            ({"promptUpsampling": "yes"}, "options.promptUpsampling"),
            ({"duration": 5}, "options.duration"),
        ]
    ],
    ("image-generation", {"prompt": "x", "options": "wide"}, "options"),
    ("image-generation", {"prompt": "x", "options": [1]}, "options"),
    (
        "image-generation",
        {"prompt": "x", "model": "local", "options": {"safetyTolerance": 2}},
        "options.safetyTolerance",
    ),
    *[
        ("video-generation", {"prompt": "x", "options": opts}, field)
        for opts, field in [
            ({"duration": 0}, "options.duration"),
            ({"duration": 11}, "options.duration"),
            ({"duration": "5"}, "options.duration"),
            ({"duration": True}, "options.duration"),
            ({"duration": None, "width": 63}, "options.width"),
            ({"width": 1281}, "options.width"),
            ({"height": 2.5}, "options.height"),
            ({"ratio": "16/9"}, "options.ratio"),
            ({"ratio": "2000:100"}, "options.ratio"),
            ({"ratio": 1.5}, "options.ratio"),
            ({"ratio": "640:384", "width": 640}, "options.ratio"),
            ({"seed": -3}, "options.seed"),
            ({"fps": 24}, "options.fps"),
            ({"outputFormat": "png"}, "options.outputFormat"),
        ]
    ],
    (
        "video-generation",
        {"prompt": "x", "duration": 3, "options": {"duration": 4}},
        "options.duration",
    ),
    *[
        ("image-upscale", {"imageUrl": OK, "options": opts}, field)
        for opts, field in [
            ({"faceEnhance": "true"}, "options.faceEnhance"),
            ({"faceEnhance": 1}, "options.faceEnhance"),
            ({"scale": 4}, "options.scale"),
            ({"width": 100}, "options.width"),
        ]
    ],
    ("image-upscale", {"imageUrl": OK, "scale": 2.0}, "scale"),
    ("image-upscale", {"imageUrl": OK, "scale": True}, "scale"),
    *[
        ("batch-generation", {"prompts": ["a"], "options": opts}, field)
        for opts, field in [
            ({"width": 10}, "options.width"),
            ({"height": 4096}, "options.height"),
            ({"outputFormat": "bmp"}, "options.outputFormat"),
            ({"batchSize": 3}, "options.batchSize"),
            ({"seed": 1.5}, "options.seed"),
            ({"width": 64, "height": 63}, "options.height"),
            ({"promptUpsampling": 1}, "options.promptUpsampling"),
            ({"": 1}, "options."),
            ({"width": 1e3}, "options.width"),
        ]
    ],
]


def test_fifty_bad_options() -> None:
    assert len(BAD_OPTIONS) >= 50


@pytest.mark.parametrize(("job_type", "body", "field"), BAD_OPTIONS)
async def test_bad_options_answer_422_naming_the_field_at_no_charge(
    service: Service, job_type: str, body: dict[str, Any], field: str
) -> None:
    status, error = await service.request("POST", f"/api/jobs/{job_type}", user="bad", json=body)
    assert status == 422, error
    assert error["error"] == "validation_error"
    assert field in [item["field"] for item in error["fields"]], error
    assert await service.credits("bad") == 100
    assert await service.store.list_jobs("bad", limit=5, after=None) == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"imageUrls": ["http://example.com:99999/a.png"]}, "imageUrls[0]", "port"),
        ({"imageUrls": ["http://" + "a" * 100 + ".com/a.png"]}, "imageUrls[0]", "63"),
        ({"imageUrls": ["http://" + "a." * 150 + "com/a.png"]}, "imageUrls[0]", "253"),
        ({"imageUrls": ["http://exa\x00mple.com/a.png"]}, "imageUrls[0]", "control"),
        ({"imageUrls": ["http://xn--/a.png"]}, "imageUrls[0]", "host"),
        ({"imageUrls": ["http://0x7f.1/a.png"]}, "imageUrls[0]", "IPv4"),
        ({"imageUrls": [OK, "http://169.254.169.254/x"]}, "imageUrls[1]", "private"),
        ({"imageUrls": [OK, OK, OK]}, "imageUrls", "at most 2"),
        ({"imageUrls": "https://example.com/a.png"}, "imageUrls", "list"),
        ({"imageUrl": OK, "imageUrls": ["https://example.com/other.png"]}, "imageUrl", "differs"),
        ({"imageUrl": "http://[::1/x"}, "imageUrl", "IPv6"),
    ],
)
async def test_source_urls_are_parsed_at_creation(
    service: Service, body: dict[str, Any], field: str, words: str
) -> None:
    status, error = await service.request(
        "POST", "/api/jobs/video-generation", user="url", json={"prompt": "x", **body}
    )
    assert status == 422, error
    item = next(i for i in error["fields"] if i["field"] == field)
    assert words in item["message"], item
    assert "object at 0x" not in error["message"] and "Error(" not in error["message"]
    assert await service.credits("url") == 100


async def test_a_source_too_large_to_upscale_fails_before_decoding_with_a_clear_error(
    service: Service, start_service: StartService
) -> None:
    big = io.BytesIO()
    Image.new("L", (2100, 2100)).save(big, "PNG")  # x4 = 8400 px per side
    app = web.Application()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=big.getvalue(), content_type="image/png")

    app.router.add_get("/big.png", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        svc = await start_service(fetch_allow_hosts=[f"127.0.0.1:{server.port}"])
        url = f"http://127.0.0.1:{server.port}/big.png"
        job = await svc.create("hal", "image-upscale", {"imageUrl": url, "scale": 4})
        await svc.run_until_idle()
        failed = await svc.job("hal", job["jobId"])
        assert failed["status"] == "FAILED"
        assert "8400x8400" in failed["error"] and "object at" not in failed["error"]
        assert await svc.credits("hal") == 100
    finally:
        await server.close()


async def test_the_seeds_cursor_is_the_last_jobs_id(service: Service) -> None:
    ids = [
        (
            await service.create(
                "ivy", "image-generation", {"prompt": f"p{i}", "width": 64, "height": 64}
            )
        )["jobId"]
        for i in range(5)
    ]
    # Jobs made at the same (virtual) instant are ordered by id: the full list is the truth.
    status, full = await service.request("GET", "/api/jobs?limit=100", user="ivy")
    newest_first = [j["jobId"] for j in full["jobs"]]
    assert sorted(newest_first) == sorted(ids) and full["nextCursor"] is None
    status, page = await service.request("GET", "/api/jobs?limit=2", user="ivy")
    assert status == 200
    assert [j["jobId"] for j in page["jobs"]] == newest_first[:2]
    assert page["nextCursor"] == newest_first[1]
    seen = [j["jobId"] for j in page["jobs"]]
    cursor = page["nextCursor"]
    while cursor:
        status, page = await service.request(
            "GET", f"/api/jobs?limit=2&cursor={cursor}", user="ivy"
        )
        assert status == 200, page
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is not None:
            assert cursor == page["jobs"][-1]["jobId"]
    assert seen == newest_first
    status, page = await service.request(
        "GET", f"/api/jobs?limit=20&cursor={newest_first[2]}", user="ivy"
    )
    assert [j["jobId"] for j in page["jobs"]] == newest_first[3:] and page["nextCursor"] is None
    # Another user's job id, or no job at all, is not a cursor.
    other = (
        await service.create("jon", "image-generation", {"prompt": "q", "width": 64, "height": 64})
    )["jobId"]
    for bad in (other, "jobId", "x" * 300):
        status, error = await service.request("GET", f"/api/jobs?limit=20&cursor={bad}", user="ivy")
        assert status == 422 and error["fields"][0]["field"] == "cursor", error


@pytest.mark.parametrize("limit", ["²", "①", "٣", "3.0", "-1", "0", "101", " 3", "1e2", ""])
async def test_strict_limits(service: Service, limit: str) -> None:
    status, error = await service.request("GET", "/api/jobs", user="kim", params={"limit": limit})
    assert status == 422, error
    assert error["fields"][0]["field"] == "limit"
