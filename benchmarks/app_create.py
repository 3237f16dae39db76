"""Job creation throughput (issue: the jobs service).

    python -m benchmarks.app_create [--quick] [--repeat N] [--json PATH]

``POST /api/jobs/image-generation`` requests/s with 50 concurrent clients against the app on
SQLite (its queues paused, so only creation is measured: JWT check, validation, the credit
reservation, the job row, the task creation), against a bare aiohttp handler answering the
same request in the same run. Each server runs in its own process, the clients in this one.
Target: creation >= 0.3 x the bare handler.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    JWT_SECRET,
    create_jobs,
    free_port,
    median,
    parser,
    print_table,
    user_tokens,
    wait_ready,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
BODY = {"prompt": "a benchmark of foxes", "width": 64, "height": 64, "model": "local"}


# ---------------------------------------------------------------------------- servers


def serve_bare(port: int) -> None:
    """The physical limit: parse the JSON body, answer a small JSON object."""
    from aiohttp import web

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"jobId": "x", "status": "PENDING", "prompt": body["prompt"]}, status=202
        )

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/api/jobs/image-generation", create)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_app(port: int, database: str, storage: str) -> None:
    from aiohttp import web

    from app.jobs.types import JOB_TYPES
    from app.main import create_app
    from app.settings import Settings
    from benchmarks.common import tune_gc_like_a_server

    tune_gc_like_a_server()
    settings = Settings(
        port=port,
        database_url=f"sqlite+aiosqlite:///{database}",
        storage_dir=Path(storage),
        jwt_secret=JWT_SECRET,
        internal_api_key="bench-key",
        starting_credits=10**9,
        reconcile_interval_seconds=0,
    )
    app = create_app(settings)

    async def pause_queues(app: web.Application) -> None:
        from app.services import SERVICES

        for job_type in JOB_TYPES.values():
            await app[SERVICES].queue.pause_queue(job_type.queue)

    app.on_startup.append(pause_queues)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ---------------------------------------------------------------------------- clients


async def hammer(base: str, tokens: list[str], requests: int) -> float:
    """``requests`` POSTs from ``len(tokens)`` concurrent clients; returns requests/s."""
    return requests / await create_jobs(base, tokens, requests, BODY)


def start(kind: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "benchmarks.app_create",
        "--serve",
        kind,
        "--port",
        str(port),
        "--workdir",
        workdir,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def measure(kind: str, requests: int, tokens: list[str]) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        process = start(kind, port, workdir)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base, process)
            await hammer(base, tokens, max(200, requests // 10))  # warm-up
            return await hammer(base, tokens, requests)
        finally:
            process.terminate()
            process.wait(timeout=30)


async def run(requests: int, repeat: int) -> dict[str, Any]:
    tokens = user_tokens(CLIENTS)
    bare, app = [], []
    for _ in range(repeat):
        bare.append(await measure("bare", requests, tokens))
        app.append(await measure("app", requests, tokens))
    return {
        "clients": CLIENTS,
        "requests_per_run": requests,
        "repeat": repeat,
        "bare_rps_runs": bare,
        "app_rps_runs": app,
        "bare_rps": median(bare),
        "app_rps": median(app),
        "ratio": median(app) / median(bare),
    }


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--serve", choices=["bare", "app"], help=argparse_hidden())
    p.add_argument("--port", type=int, default=0, help=argparse_hidden())
    p.add_argument("--workdir", default="", help=argparse_hidden())
    args = p.parse_args()
    if args.serve == "bare":
        serve_bare(args.port)
        return
    if args.serve == "app":
        serve_app(args.port, f"{args.workdir}/app.db", f"{args.workdir}/media")
        return
    requests = 1000 if args.quick else 5000
    result = asyncio.run(run(requests, args.repeat))
    print_table(
        f"Job creation, {CLIENTS} concurrent clients, SQLite, queues paused "
        f"(median of {args.repeat})",
        [
            {"server": "bare aiohttp handler", "requests/s": result["bare_rps"]},
            {"server": "app POST /api/jobs/image-generation", "requests/s": result["app_rps"]},
            {"server": "ratio app / bare (target >= 0.3)", "requests/s": result["ratio"]},
        ],
    )
    write_json(args.json, {"app_create": result})


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
