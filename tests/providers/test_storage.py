"""Local storage keeps results under its root, hands out public URLs and serves /media/."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from app.storage import (
    InvalidStorageKey,
    LocalStorage,
    Storage,
    StorageNotFound,
    content_type_for_key,
    extension_for,
    media_routes,
)
from tests.providers.conftest import BASE_URL, ServeFn, png_bytes

BAD_KEYS = [
    "",
    "../secret",
    "a/../../b",
    "/etc/passwd",
    "a\\b",
    "a//b",
    "a/./b",
    ".hidden",
    "dir/.tmp",
    "a b",
    "ü.png",
    "a/",
    "x" * 600,
]


async def test_save_returns_the_public_url_and_load_returns_the_bytes(
    storage: LocalStorage,
) -> None:
    url = await storage.save("results/job-1.png", b"png-bytes", "image/png")
    assert url == f"{BASE_URL}/media/results/job-1.png"
    assert await storage.load("results/job-1.png") == b"png-bytes"
    assert (storage.root / "results" / "job-1.png").read_bytes() == b"png-bytes"
    assert isinstance(storage, Storage)


async def test_save_replaces_atomically_and_leaves_no_temporary_files(
    storage: LocalStorage,
) -> None:
    payloads = [bytes([n]) * 50_000 for n in range(20)]
    await asyncio.gather(
        *(storage.save("same.bin", p, "application/octet-stream") for p in payloads)
    )
    assert await storage.load("same.bin") in payloads
    assert sorted(os.listdir(storage.root)) == ["same.bin"]


async def test_base_url_trailing_slash_is_ignored(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path, "http://localhost:3000/")
    assert await store.save("a.png", b"x", "image/png") == "http://localhost:3000/media/a.png"


async def test_missing_key_raises_storage_not_found_which_is_a_key_error(
    storage: LocalStorage,
) -> None:
    with pytest.raises(StorageNotFound):
        await storage.load("nope.png")
    with pytest.raises(KeyError):
        await storage.load("nope/deeper.png")


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_refused(storage: LocalStorage, key: str) -> None:
    with pytest.raises(InvalidStorageKey):
        await storage.save(key, b"x", "image/png")
    with pytest.raises(InvalidStorageKey):
        await storage.load(key)


async def test_symlinks_cannot_lead_out_of_the_root(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    storage.root.mkdir(parents=True)
    (storage.root / "link").symlink_to(outside)
    with pytest.raises(InvalidStorageKey):
        await storage.load("link/secret.txt")


def test_key_for_url_recognises_only_our_media_urls(tmp_path: Path) -> None:
    store = LocalStorage(
        tmp_path, "https://API.daygen.test:443/v1", aliases=["http://127.0.0.1:3000"]
    )
    assert store.key_for_url("https://api.daygen.test/v1/media/a/b.png") == "a/b.png"
    assert store.key_for_url("https://api.daygen.test/v1/media/a.png?x=1#f") == "a.png"
    assert store.key_for_url("http://127.0.0.1:3000/media/c.webp") == "c.webp"
    for other in [
        "https://api.daygen.test/media/a.png",  # wrong path prefix
        "http://api.daygen.test/v1/media/a.png",  # wrong scheme
        "https://api.daygen.test:8443/v1/media/a.png",  # wrong port
        "https://evil.test/v1/media/a.png",
        "https://api.daygen.test.evil.test/v1/media/a.png",
        "https://api.daygen.test/v1/media/%2e%2e/secret",
        "https://api.daygen.test/v1/media/a%2f..%2f..%2fb",
        "https://api.daygen.test/v1/media/",
        "not a url",
        "http://[::1",
    ]:
        assert store.key_for_url(other) is None, other


def test_content_type_comes_from_the_extension() -> None:
    assert content_type_for_key("a/b.png") == "image/png"
    assert content_type_for_key("clip.webp") == "image/webp"
    assert content_type_for_key("x.JPG") == "image/jpeg"
    assert content_type_for_key("noext") == "application/octet-stream"


async def test_media_route_serves_stored_files(storage: LocalStorage, serve: ServeFn) -> None:
    image = png_bytes(5, 5)
    await storage.save("results/r.png", image, "image/png")
    await storage.save("clips/c.webp", b"RIFFxxxxWEBP", "image/webp")
    app = web.Application()
    app.add_routes(media_routes(storage))
    server = await serve(app)
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/media/results/r.png")) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/png"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert await resp.read() == image
        async with http.get(server.make_url("/media/clips/c.webp")) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/webp"
        async with http.head(server.make_url("/media/results/r.png")) as resp:
            assert resp.status == 200
            assert int(resp.headers["Content-Length"]) == len(image)


async def test_media_route_answers_json_404_for_missing_or_unsafe_keys(
    storage: LocalStorage, serve: ServeFn, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    await storage.save("ok.png", b"x", "image/png")
    app = web.Application()
    app.add_routes(media_routes(storage))
    server = await serve(app)
    base = str(server.make_url("/"))[:-1]
    async with aiohttp.ClientSession() as http:
        for path in [
            "/media/missing.png",
            "/media/%2e%2e/secret.txt",
            "/media/..%2fsecret.txt",
            "/media/.hidden",
            "/media/a%5c..%5csecret.txt",
        ]:
            async with http.get(URL(base + path, encoded=True)) as resp:
                body = await resp.text()
                assert resp.status == 404, path
                assert "secret" not in body.replace("secret.txt", "")
                assert resp.content_type == "application/json"
        # A raw ../ is normalised away by the HTTP stack and never reaches the handler.
        async with http.get(URL(base + "/media/../secret.txt", encoded=True)) as resp:
            assert resp.status == 404
            assert await resp.text() != "secret"


async def test_content_type_not_implied_by_the_key_is_kept_and_served(
    storage: LocalStorage, serve: ServeFn
) -> None:
    await storage.save("clips/job-9", b"RIFFxxxxWEBP", "image/webp")
    await storage.save("stills/job-9.png", b"png", "image/png")
    assert await storage.content_type("clips/job-9") == "image/webp"
    assert await storage.content_type("stills/job-9.png") == "image/png"
    assert os.listdir(storage.root / "stills") == ["job-9.png"]  # no sidecar when obvious
    app = web.Application()
    app.add_routes(media_routes(storage))
    server = await serve(app)
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/media/clips/job-9")) as resp,
    ):
        assert resp.headers["Content-Type"] == "image/webp"
    # The sidecar is hidden: no key can name it.
    with pytest.raises(InvalidStorageKey):
        await storage.load("clips/.job-9.content-type")


def test_extension_for_content_type() -> None:
    assert extension_for("image/png") == ".png"
    assert extension_for("image/webp") == ".webp"
    assert extension_for("video/mp4") == ".mp4"
    assert extension_for("image/jpeg") in (".jpg", ".jpeg")
    assert extension_for("application/x-unknown-thing") == ".bin"
