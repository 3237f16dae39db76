"""Settings from the environment, dev defaults refused in production, and the CLI token."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from app.logs import JsonFormatter, job_logger
from app.settings import DEV_JWT_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_offline_with_development_secrets(monkeypatch: pytest.MonkeyPatch):
    for name in (
        "JWT_SECRET",
        "INTERNAL_API_KEY",
        "APP_ENV",
        "QUEUE_BACKEND",
        "PORT",
        "API_BASE_URL",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 3000
    # The in-process emulator journals beside the SQLite database file.
    assert settings.task_queue_url == "emulator:?db=var/daygen-tasks.db"
    assert settings.base_url == "http://127.0.0.1:3000"
    assert settings.database_url == "sqlite+aiosqlite:///./var/daygen.db"
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert settings.bind_host == "127.0.0.1"


def test_cloud_tasks_backend_url_comes_from_project_and_location(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("QUEUE_BACKEND", "cloud-tasks")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "daygen-prod")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west1")
    assert Settings().task_queue_url == "cloudtasks://daygen-prod/europe-west1"


def test_origins_are_star_or_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOCKETIO_CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "")
    settings = Settings(app_env="test")
    assert settings.socketio_cors_allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.cors_allowed_origins == ["*"]
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "*")
    assert Settings(app_env="test").cors_allowed_origins == ["*"]


def test_production_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("INTERNAL_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings()
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-from-secret-manager-0123456")
    monkeypatch.setenv("INTERNAL_API_KEY", "a-real-key")
    settings = Settings()
    assert settings.bind_host == "0.0.0.0"


def test_python_m_app_token_prints_a_token_for_the_user(tmp_path: Path):
    env = {**os.environ, "JWT_SECRET": "cli-secret-0123456789abcdef0123456789"}
    out = subprocess.run(
        [sys.executable, "-m", "app", "token", "user-42"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    claims = jwt.decode(out.stdout.strip(), env["JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == "user-42" and "exp" in claims


def test_job_log_lines_carry_job_and_user_ids_as_json():
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("app.test")
    handler = Keep()
    logger.addHandler(handler)
    try:
        job_logger("app.test", job_id="job-1", user_id="alice").warning("it %s", "happened")
    finally:
        logger.removeHandler(handler)
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["job_id"] == "job-1" and line["user_id"] == "alice"
    assert line["message"] == "it happened" and line["severity"] == "WARNING"


def test_python_m_app_refuses_to_start_in_production_with_development_secrets():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("JWT_SECRET", "JWT_JWKS_URL", "INTERNAL_API_KEY", "OIDC_AUDIENCE")
    }
    env["APP_ENV"] = "production"
    out = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "configuration error" in out.stderr and "JWT_SECRET" in out.stderr


def test_python_m_app_on_a_port_in_use_says_so_in_one_line():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "APP_ENV": "test",
            "PORT": str(port),
            "JWT_SECRET": "cli-secret-0123456789abcdef0123456789",
            "INTERNAL_API_KEY": "cli-key",
        }
        out = subprocess.run(
            [sys.executable, "-m", "app"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(port) in lines[0] and "PORT" in lines[0] and "in use" in lines[0]
