"""``daygen-queue``: ``apply`` is idempotent, reports what it changed, and the inspection
commands read the same queues, against a real ``python -m emulator``."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from daygen_queue.cli import DEFAULT_EMULATOR_URL, main, resolve_url
from tests.emulator_server.process import REPO, EmulatorProcess

pytestmark = pytest.mark.slow


def queues_file(path: Path, prefix: str, attempts: int = 3) -> Path:
    path.write_text(
        f"""
[defaults.rate_limits]
max_dispatches_per_second = 10
max_concurrent_dispatches = 100

[defaults.retry_config]
max_attempts = {attempts}
max_retry_duration = "1h"
min_backoff = "1s"
max_backoff = "60s"

[queues.{prefix}-images]
[queues.{prefix}-videos.rate_limits]
max_concurrent_dispatches = 5
""",
        encoding="utf-8",
    )
    return path


def run_cli(monkeypatch: pytest.MonkeyPatch, server: EmulatorProcess, *argv: str) -> str:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", server.grpc_address)
    monkeypatch.delenv("TASK_QUEUE_URL", raising=False)
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_apply_twice_changes_nothing_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_server: EmulatorProcess
) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}"
    path = queues_file(tmp_path / "queues.toml", prefix)

    first = run_cli(monkeypatch, emulator_server, "apply", str(path))
    second = run_cli(monkeypatch, emulator_server, "apply", str(path))
    changed = run_cli(
        monkeypatch, emulator_server, "apply", str(queues_file(path, prefix, attempts=5))
    )

    assert first.splitlines()[-1] == "2 created, 0 updated, 0 unchanged"
    assert second.splitlines()[-1] == "0 created, 0 updated, 2 unchanged"
    assert changed.splitlines()[-1] == "0 created, 2 updated, 0 unchanged"
    assert "retry_config.max_attempts: 3 -> 5" in changed


def test_inspection_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_server: EmulatorProcess
) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}"
    run_cli(monkeypatch, emulator_server, "apply", str(queues_file(tmp_path / "q.toml", prefix)))

    paused = run_cli(monkeypatch, emulator_server, "pause", f"{prefix}-videos")
    described = run_cli(monkeypatch, emulator_server, "describe", f"{prefix}-videos")
    tasks = run_cli(monkeypatch, emulator_server, "tasks", f"{prefix}-videos")
    listing = subprocess.run(
        [sys.executable, "-m", "daygen_queue.cli", "list"],
        cwd=REPO,
        env={
            "CLOUD_TASKS_EMULATOR_HOST": emulator_server.grpc_address,
            "NO_GCE_CHECK": "true",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout

    assert "state PAUSED" in paused
    assert "maxConcurrentDispatches: 5" in described and "state: PAUSED" in described
    assert "tasksCount: 0" in described
    assert tasks.startswith("TASK_NAME")
    assert f"{prefix}-images" in listing and f"{prefix}-videos" in listing


def test_unknown_queue_is_a_clean_error(
    monkeypatch: pytest.MonkeyPatch,
    emulator_server: EmulatorProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emulator_server.grpc_address)
    assert main(["describe", "no-such-queue"]) == 1
    assert "NOT_FOUND: Queue does not exist" in capsys.readouterr().err


def test_backend_url_resolution() -> None:
    assert resolve_url("emulator:", {}) == "emulator:"
    assert resolve_url(None, {"TASK_QUEUE_URL": "cloudtasks://p/l"}) == "cloudtasks://p/l"
    assert resolve_url(None, {"CLOUD_TASKS_EMULATOR_HOST": "h:1"}) == DEFAULT_EMULATOR_URL
    assert resolve_url(None, {"GOOGLE_CLOUD_PROJECT": "p"}) == "cloudtasks://p/us-central1"
    with pytest.raises(SystemExit):
        resolve_url(None, {})


def test_apply_and_list_over_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_server: EmulatorProcess
) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emulator_server.http_address)
    monkeypatch.setenv("TASK_QUEUE_URL", "cloudtasks://local-project/local?transport=rest")
    path = queues_file(tmp_path / "queues.toml", prefix)
    out = io.StringIO()

    assert main(["apply", str(path)], out=out) == 0
    assert main(["apply", str(path)], out=out) == 0
    assert main(["describe", f"{prefix}-videos"], out=out) == 0

    lines = out.getvalue().splitlines()
    assert "2 created, 0 updated, 0 unchanged" in lines
    assert "0 created, 0 updated, 2 unchanged" in lines
    assert "  maxBurstSize: 10" in lines  # reported by the service for 10/s
    assert "  maxConcurrentDispatches: 5" in lines
