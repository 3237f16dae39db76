"""The playground's HTTP side without a browser: the page and its files, the config the forms
are built from, the development sign-in (and its absence in production), the vendored
socket.io-client."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jwt

from app.playground.pages import STATIC, asset_files
from tests.browser.app_server import RunningApp, serving_app

VENDOR = STATIC / "vendor"


async def test_the_page_and_its_files_are_served_with_a_strict_policy(
    running_app: RunningApp,
) -> None:
    async with running_app.http.get(running_app.base_url + "/") as page:
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        html = await page.text()
    referenced = re.findall(r'(?:src|href)="playground/static/([^"]+)"', html)
    assert "vendor/socket.io.min.js" in referenced and "js/main.js" in referenced
    for name in referenced:
        async with running_app.http.get(f"{running_app.base_url}/playground/static/{name}") as f:
            assert f.status == 200, name
            assert f.headers["X-Content-Type-Options"] == "nosniff"
    async with running_app.http.get(
        running_app.base_url + "/playground/static/../settings.py"
    ) as escape:
        assert escape.status == 404


async def test_every_module_the_page_imports_is_served() -> None:
    files = asset_files()
    for name in [n for n in files if n.startswith("js/")]:
        for imported in re.findall(r'from "\./([^"]+)"', files[name].read_text()):
            assert f"js/{imported}" in files, (name, imported)


async def test_the_config_carries_each_job_types_schema_and_the_sign_in(
    running_app: RunningApp,
) -> None:
    async with running_app.http.get(running_app.base_url + "/playground/config") as answer:
        config = await answer.json()
    assert config["signIn"] == "development"
    assert config["consolePath"] == "_emulator/"
    types = {item["name"]: item for item in config["jobTypes"]}
    assert list(types) == [
        "image-generation",
        "video-generation",
        "image-upscale",
        "batch-generation",
    ]
    assert types["image-generation"]["models"]["local"] == "local"
    assert "prompt" in types["image-generation"]["schema"]["properties"]
    assert types["image-upscale"]["schema"]["required"] == ["imageUrl"]


async def test_the_development_sign_in_issues_a_token_the_api_accepts(
    running_app: RunningApp,
) -> None:
    url = running_app.base_url + "/api/dev/token"
    async with running_app.http.post(url, json={"userId": "carol"}) as answer:
        assert answer.status == 200
        assert answer.headers["Cache-Control"] == "no-store"
        body = await answer.json()
    assert body["userId"] == "carol"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "carol"
    headers = {"Authorization": f"Bearer {body['token']}"}
    async with running_app.http.get(running_app.base_url + "/api/me", headers=headers) as me:
        assert (await me.json())["id"] == "carol"

    async with running_app.http.post(url, json={"userId": "no spaces"}) as bad:
        assert bad.status == 422
        assert (await bad.json())["fields"][0]["field"] == "userId"
    foreign = {"Origin": "https://evil.example"}
    async with running_app.http.post(url, json={"userId": "carol"}, headers=foreign) as cross:
        assert cross.status == 403
        assert "token" not in await cross.json()


async def test_production_has_no_development_sign_in(tmp_path: Path) -> None:
    async with serving_app(tmp_path, app_env="production") as app:
        async with app.http.post(app.base_url + "/api/dev/token", json={"userId": "a"}) as dev:
            assert dev.status == 404
            assert (await dev.json())["error"] == "not_found"
        async with app.http.get(app.base_url + "/playground/config") as answer:
            config = await answer.json()
        assert config["signIn"] == "token"
        assert config["consolePath"] is None
        async with app.http.get(app.base_url + "/") as page:
            assert page.status == 200


def test_the_vendored_socket_io_client_is_the_one_its_note_names() -> None:
    note = (VENDOR / "README.md").read_text()
    script = (VENDOR / "socket.io.min.js").read_bytes()
    version = re.search(r"socket\.io-client (\d+\.\d+\.\d+)", note)
    assert version is not None
    assert script.startswith(f"/*!\n * Socket.IO v{version[1]}\n".encode())
    assert hashlib.sha256(script).hexdigest() in note
    assert "MIT License" in (VENDOR / "socket.io-client.LICENSE").read_text()
    lock = (Path(__file__).parents[1] / "node" / "socketio" / "package-lock.json").read_text()
    assert f'"version": "{version[1]}"' in lock  # the same client the Node tests drive
