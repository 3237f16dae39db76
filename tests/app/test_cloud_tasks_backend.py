"""The app with ``QUEUE_BACKEND=cloud-tasks`` against ``python -m emulator`` (the official
client over gRPC, deliveries over real HTTP on the real clock): the same job flow, unchanged.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from app.auth import issue_dev_token
from app.db import Database
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import INTERNAL_KEY, JWT_SECRET, free_socket
from tests.emulator_server.process import EmulatorProcess

pytestmark = pytest.mark.slow


@pytest.fixture
async def app_on_cloud_tasks(
    emulator_server: EmulatorProcess,
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emulator_server.grpc_address)
    sock = free_socket()
    settings = Settings(
        app_env="test",
        api_base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
        queue_backend="cloud-tasks",
        google_cloud_project=f"app-{uuid.uuid4().hex[:12]}",  # queues of this test only
        google_cloud_location="local",
        jwt_secret=JWT_SECRET,
        internal_api_key=INTERNAL_KEY,
        storage_dir=tmp_path / "media",
        reconcile_interval_seconds=0,
        local_providers_only=True,
    )
    runner = web.AppRunner(create_app(settings, database=database), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield settings.base_url
    await runner.cleanup()


async def wait_finished(http: aiohttp.ClientSession, url: str, headers: dict) -> dict:
    """Poll until the job is finished (the emulator runs on the real clock), bounded."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with http.get(url, headers=headers) as response:
            job = await response.json()
        if job["status"] in ("COMPLETED", "FAILED"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job not finished in 30 s: {job}")


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


async def test_jobs_complete_through_python_m_emulator(app_on_cloud_tasks: str):
    base = app_on_cloud_tasks
    settings = Settings(jwt_secret=JWT_SECRET, internal_api_key=INTERNAL_KEY, app_env="test")
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, 'grace')}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/api/jobs/image-generation",
            json={"prompt": "a gRPC fox", "width": 96, "height": 64},
            headers=headers,
        ) as response:
            assert response.status == 202
            image = await response.json()
        async with http.post(
            f"{base}/api/jobs/batch-generation",
            json={"prompts": ["a", "b", "c"], "batchSize": 2, "width": 64, "height": 64},
            headers=headers,
        ) as response:
            assert response.status == 202
            batch = await response.json()
        done = await wait_finished(http, f"{base}/api/jobs/{image['jobId']}", headers)
        assert done["status"] == "COMPLETED", done
        async with http.get(done["resultUrl"]) as response:
            picture = Image.open(io.BytesIO(await response.read()))
        assert picture.size == (96, 64)
        done = await wait_finished(http, f"{base}/api/jobs/{batch['jobId']}", headers)
        assert done["status"] == "COMPLETED" and len(done["resultUrls"]) == 3
        async with http.get(f"{base}/api/me", headers=headers) as response:
            assert (await response.json())["credits"] == 100 - 1 - 3
