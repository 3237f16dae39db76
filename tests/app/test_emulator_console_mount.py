"""The in-process emulator's console at ``/_emulator/``: served outside production (with the
REST face it calls), absent in production whatever the queue."""

from __future__ import annotations

import pytest

from tests.app.conftest import StartService

CONSOLE_PATHS = [
    "/_emulator/",
    "/_emulator/console/static/js/main.js",
    "/_emulator/console/projects",
    "/_emulator/console/events",
    "/_emulator/v2/projects/local-project/locations/local/queues",
]


@pytest.fixture
def db_kind() -> str:
    return "sqlite"  # nothing here touches the database beyond start-up


async def test_development_serves_the_console_and_its_rest_face(start_service: StartService):
    service = await start_service(app_env="development")
    async with service.http.get(service.base_url + "/_emulator/") as page:
        assert page.status == 200
        assert "Cloud Tasks emulator console" in await page.text()
    status, listed = await service.request(
        "GET", "/_emulator/v2/projects/local-project/locations/local/queues"
    )
    assert status == 200
    assert {q["name"].rsplit("/", 1)[-1] for q in listed["queues"]} >= {"image-generation-queue"}


async def test_production_answers_404_on_every_console_path(start_service: StartService):
    service = await start_service(app_env="production")  # still the in-process emulator
    for path in CONSOLE_PATHS:
        status, body = await service.request("GET", path)
        assert status == 404, (path, body)
    status, _ = await service.request(
        "POST", "/_emulator/v2/projects/local-project/locations/local/queues/x:purge"
    )
    assert status == 404
