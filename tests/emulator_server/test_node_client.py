"""The official Node client, ``@google-cloud/tasks`` over gRPC, against ``python -m emulator``:
it creates a queue and a task, and the task is delivered.

``npm install`` runs into ``tests/node`` when ``node_modules`` is missing; the test is skipped
(with the reason) when node/npm or the registry is unavailable.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.emulator_server.process import EmulatorProcess, running_emulator
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.node]
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="session")
def node_client_dir() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node client test")
    if not (NODE_DIR / "node_modules" / "@google-cloud" / "tasks").is_dir():
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=240,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"npm install of @google-cloud/tasks failed (no registry?): {error}")
    return NODE_DIR


async def test_node_client_creates_a_queue_and_a_delivered_task(
    node_client_dir: Path, emulator_server: EmulatorProcess, receiver: Receiver
) -> None:
    host, port = emulator_server.grpc_address.rsplit(":", 1)
    queue_id = f"node-{uuid.uuid4().hex[:8]}"
    parent = "projects/node-project/locations/local"
    process = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node",
        "create_task.js",
        host,
        port,
        parent,
        queue_id,
        receiver.url("/from-node"),
        cwd=node_client_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, METADATA_SERVER_DETECTION="none"),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    answer = json.loads(stdout.decode().strip().splitlines()[-1])

    [received] = await receiver.wait_for_path("/from-node")

    assert answer["queue"] == f"{parent}/queues/{queue_id}"
    assert answer["burst"] == 10
    assert answer["task"] == f"{parent}/queues/{queue_id}/tasks/from-node"
    assert answer["notFound"]["code"] == 5  # NOT_FOUND
    assert "Queue does not exist" in answer["notFound"]["details"]
    assert json.loads(received.body) == {"from": "node"}
    assert received.header("X-CloudTasks-TaskName") == "from-node"


async def test_node_samples_and_a_v2beta3_batch(node_client_dir: Path, receiver: Receiver) -> None:
    """``tests/node/samples.js``: the shapes of Google's Node samples (HTTP, OIDC and App
    Engine tasks, list and delete queues) over v2, and a v2beta3 queue-level HTTP target with
    BatchCreateTasks / BatchDeleteTasks and their operations (the installed
    @google-cloud/tasks has both in v2beta3; its v2 client has neither)."""
    suffix = uuid.uuid4().hex[:8]
    with running_emulator("--app-engine-host", receiver.base_url) as server:
        host, port = server.grpc_address.rsplit(":", 1)
        process = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            "samples.js",
            host,
            port,
            "node-project",
            "us-central1",
            suffix,
            receiver.base_url,
            cwd=node_client_dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, METADATA_SERVER_DETECTION="none"),
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
        finally:
            if process.returncode is None:
                process.kill()
        assert process.returncode == 0, stderr.decode()
        answer = json.loads(stdout.decode().strip().splitlines()[-1])
        delivered = await receiver.wait_for(lambda requests: len(requests) >= 6)

    by_path: dict[str, list[Any]] = {}
    for request in delivered:
        by_path.setdefault(request.path, []).append(request)
    parent = "projects/node-project/locations/us-central1"
    assert answer["queue"] == f"{parent}/queues/node-{suffix}"
    assert answer["queue"] in answer["listed"]
    assert by_path["/node-http"][0].body == b"Hello, World!"
    assert by_path["/node-http"][0].header("Content-Type") == "text/plain"
    token = (by_path["/node-token"][0].header("Authorization") or "").removeprefix("Bearer ")
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == receiver.url(
        "/node-token"
    )
    assert answer["appEngineHost"] == "node-project.appspot.com"
    assert by_path["/log_payload"][0].header("X-AppEngine-QueueName") == f"node-{suffix}"
    assert by_path["/log_payload"][0].body == b"Hello, App Engine!"
    assert answer["routedPort"] == int(receiver.base_url.rsplit(":", 1)[1])
    assert answer["batchTasks"] == [
        f"{parent}/queues/node-beta-{suffix}/tasks/batch-{n}" for n in range(3)
    ]
    assert answer["batchState"] in ("SUCCEEDED", 2)
    assert answer["checkedDone"] is True
    assert sorted(r.body for r in by_path["/node-batch"]) == [b"b0", b"b1", b"b2"]
    assert answer["deleteError"]["code"] == 10  # ABORTED: the only delete failed
    assert answer["deletedCode"] == 5
