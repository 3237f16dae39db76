"""The OpenAPI document is generated from the models that validate requests, the reference
page works offline, and schemathesis finds no 5xx and no answer contradicting the document
(a short profile here; ``make fuzz`` runs a long one)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from app.jobs.schemas import VideoGenerationRequest
from app.jobs.types import JOB_TYPES
from app.openapi import build_openapi
from app.openapi_table import OPERATIONS
from tests.app.conftest import Service, StartService

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
FUZZ_PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing")
# Skipped checks, and why:
# - positive_data_acceptance: the API is deliberately stricter than JSON Schema can say
#   (an integer written 2.0, a cursor that must be one of your jobs, URL host rules, an
#   Idempotency-Key reused with another body): those answer 422 by design.
# - allow_header_conformance: /api/jobs/<type> overlaps /api/jobs/{jobId}, whose GET is real
#   (a job id spelled like a type answers 404), and POST /api/jobs/{jobId} answers 404 naming
#   the job types, so aiohttp's Allow lists those methods on a 405. The 405 itself is checked.
EXCLUDED_CHECKS = "positive_data_acceptance,allow_header_conformance"


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def test_request_bodies_are_the_validating_models() -> None:
    document = build_openapi()
    schemas = document["components"]["schemas"]
    for name, job_type in JOB_TYPES.items():
        body = document["paths"][f"/api/jobs/{name}"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + job_type.request.__name__)
        generated = job_type.request.model_json_schema(by_alias=True)
        assert set(schemas[job_type.request.__name__]["properties"]) == set(generated["properties"])
        assert schemas[job_type.request.__name__]["properties"]["model"]["enum"] == sorted(
            job_type.request.models
        )
    video = schemas[VideoGenerationRequest.__name__]["properties"]
    assert {"imageUrls", "imageUrl", "options", "webhookUrl"} <= set(video)
    assert set(schemas["VideoOptionsBody"]["properties"]) == {
        "duration", "width", "height", "ratio", "seed"
    }  # fmt: skip
    assert document["openapi"] == "3.1.0"


def test_every_route_of_the_table_documents_its_errors() -> None:
    document = build_openapi()
    for op in OPERATIONS:
        answers = document["paths"][op.path][op.method]["responses"]
        if op.auth == "bearer":
            assert "401" in answers, op.path
            assert document["paths"][op.path][op.method]["security"] == [{"bearerAuth": []}]
        if op.body is not None:
            assert {"202", "400", "402", "413", "422"} <= set(answers), op.path


async def test_the_document_and_the_reference_page_are_served(service: Service) -> None:
    async with service.http.get(service.base_url + "/api/openapi.json") as response:
        assert response.status == 200
        served = await response.json()
    assert served["servers"] == [{"url": service.base_url}]
    assert served["paths"] == build_openapi()["paths"]
    async with service.http.get(service.base_url + "/api/docs") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "/api/openapi.json" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


async def test_schemathesis_finds_no_5xx_and_no_contradiction(
    start_service: StartService, tmp_path: Path
) -> None:
    service = await start_service(starting_credits=10_000)
    command = [
        sys.executable, "-m", "schemathesis.cli", "run",
        f"{service.base_url}/api/openapi.json",
        "--header", f"Authorization: Bearer {service.token('fuzzer')}",
        "--checks", "all", "--exclude-checks", EXCLUDED_CHECKS,
        "--max-examples", str(FUZZ_EXAMPLES), "--phases", FUZZ_PHASES,
        "--seed", os.environ.get("FUZZ_SEED", "20261201"),
        "--generation-database", "none", "--no-color",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=1800)
    text = output.decode(errors="replace")
    print(text[-3000:])
    assert process.returncode == 0, text[-6000:]
    assert "Tested: 11" in text or "Tested:" in text
