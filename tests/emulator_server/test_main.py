"""``python -m emulator`` as a process: ``--queues`` at start, the console and its event
stream, clean SIGTERM, and a clear refusal of a bad queues file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.emulator_server.process import REPO, EmulatorProcess, running_emulator

pytestmark = pytest.mark.slow


async def test_queues_file_is_applied_at_start_and_shown_on_the_console(
    tmp_path: Path,
) -> None:
    server = EmulatorProcess(
        args=["--queues", str(REPO / "queues.toml"), "--db", str(tmp_path / "e.db")]
    ).start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{server.http_url}/v2/projects/local-project/locations/local/queues"
            async with session.get(url) as response:
                listed = await response.json()
            async with session.get(server.http_url + "/") as response:
                page = await response.text()
            created: list[str] = []
            async with session.get(server.http_url + "/console/events?history=13") as response:
                while len(created) < 13:  # the queues file's events, replayed to a late viewer
                    line = await response.content.readline()
                    if line.startswith(b"data: ") and b'"queue_created"' in line:
                        created.append(json.loads(line.removeprefix(b"data: "))["queue"])
    finally:
        code = server.stop()

    queues = {q["name"].rsplit("/", 1)[-1]: q for q in listed["queues"]}
    types = ["batch-generation", "image-generation", "image-upscale", "video-generation"]
    jobs = [f"{t}-{p}queue" for t in types for p in ("high-", "", "low-")]
    assert sorted(queues) == sorted([*jobs, "webhook-delivery-queue"])
    image = queues["image-generation-queue"]  # normal priority: 60% of the seed's 10/s, 100
    assert image["rateLimits"]["maxDispatchesPerSecond"] == 6
    assert image["rateLimits"]["maxConcurrentDispatches"] == 60
    assert image["retryConfig"]["maxAttempts"] == 3
    assert image["retryConfig"]["maxRetryDuration"] == "3600s"
    assert "Cloud Tasks emulator console" in page
    assert sorted(created) == sorted(queues)
    assert code == 0  # SIGTERM is a clean shutdown


def test_a_bad_queues_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[queues.q.rate_limits]\nmax_dispatches_per_secnd = 3\n", encoding="utf-8")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            "0",
            "--http-port",
            "-1",
            "--queues",
            str(bad),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "max_dispatches_per_secnd" in result.stderr


@pytest.mark.parametrize(("flag", "other"), [("--port", "--http-port"), ("--http-port", "--port")])
def test_a_port_in_use_is_refused_in_one_line_naming_port_and_flag(flag: str, other: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run(
            [sys.executable, "-m", "emulator", flag, str(port), other, "0"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert result.returncode == 2
    assert result.stdout == ""  # never "ready"
    [line] = result.stderr.splitlines()
    assert f"127.0.0.1:{port}" in line and f"choose another with {flag} " in line


def _thread_policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_every_thread_of_the_server_runs_on_the_batch_policy_unless_asked_not_to() -> None:
    """gRPC's own threads inherit the policy set before they start; ``--no-batch-scheduling``
    leaves the default."""
    with running_emulator() as server:
        assert server.process is not None
        assert _thread_policies(server.process.pid) == {os.SCHED_BATCH}
    with running_emulator("--no-batch-scheduling") as server:
        assert server.process is not None
        assert _thread_policies(server.process.pid) == {os.SCHED_OTHER}
