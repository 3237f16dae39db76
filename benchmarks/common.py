"""Shared helpers for the benchmark scripts: repeats, medians, a table, JSON output."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.servers import start_site, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
"""The ``JWT_SECRET`` of every benchmarked app; ``user_tokens`` signs with it."""


def user_tokens(count: int) -> list[str]:
    """One hour-long token per benchmark client (``bench-0`` ...)."""
    import jwt

    exp = int(time.time()) + 3600
    return [
        jwt.encode({"sub": f"bench-{i}", "exp": exp}, JWT_SECRET, algorithm="HS256")
        for i in range(count)
    ]


def app_env(workdir: str, port: int, **settings: str) -> dict[str, str]:
    """The environment of a benchmarked ``python -m app``: SQLite and media in ``workdir``,
    queues unthrottled (500/s, the Cloud Tasks maximum, 1000 in flight), credits for any run;
    ``settings`` add to it or override it."""
    return {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{Path(workdir) / 'app.db'}",
        "STORAGE_DIR": f"{workdir}/media",
        "JWT_SECRET": JWT_SECRET,
        "INTERNAL_API_KEY": "bench-key",
        "STARTING_CREDITS": str(10**9),
        "QUEUE_MAX_DISPATCHES_PER_SECOND": "500",
        "QUEUE_MAX_CONCURRENT_DISPATCHES": "1000",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **settings,
    }


def start_app(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m app`` in the background, its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--repeat", type=int, default=3, help="repeats; the median is reported")
    p.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    return p


SERVER_GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc_like_a_server() -> None:
    """Long-lived servers holding many objects (a queue with thousands of pending tasks)
    collect garbage far less often than CPython's default (700, 10, 10); ``python -m emulator``
    and ``python -m app`` set these thresholds, so the benchmarks do too. The baselines run in
    the same process under the same setting."""
    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    cells = [[_fmt(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) for i, column in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return "" if value is None else str(value)


def free_port() -> int:
    """A port nobody listens on right now, on 127.0.0.1 (benchmarks never leave loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    """Until the service at ``base`` answers ``/healthz`` (15 s at most)."""
    await wait_healthy(base, timeout=15.0, alive=lambda: process.poll() is None)


async def create_jobs(
    base: str, tokens: list[str], count: int, body: dict[str, Any], kind: str = "image-generation"
) -> float:
    """``count`` job creations (``POST /api/jobs/<kind>``) from one concurrent client per
    token, each refusal an error; returns the seconds it took."""
    remaining = count
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def client(token: str) -> None:
            nonlocal remaining
            headers = {"Authorization": f"Bearer {token}"}
            while remaining > 0:
                remaining -= 1
                async with http.post(f"{base}/api/jobs/{kind}", json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 202:
                        raise RuntimeError(f"create answered {r.status}")

        started = time.perf_counter()
        await asyncio.gather(*(client(token) for token in tokens))
        return time.perf_counter() - started


class CountingReceiver:
    """A local HTTP target that answers 200 and counts deliveries; ``done`` is set once
    ``expected`` have arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.expected = 0
        self.done = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def expect(self, count: int) -> None:
        self.count = 0
        self.expected = count
        self.done.clear()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner, port = await start_site(app)
        self.url = f"http://127.0.0.1:{port}/task"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        if self.count >= self.expected:
            self.done.set()
        return web.Response(status=200)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
