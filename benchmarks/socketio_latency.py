"""Socket.IO job-update latency (issue: live job updates).

    python -m benchmarks.socketio_latency [--clients 500] [--redis-url URL] [--quick] [--json PATH]

Three processes: this one (the conductor), the app with its live updates (``--role
server``), and 500 python-socketio clients, one user each, in one process (``--role
clients``). The server publishes job updates through ``LiveUpdates.publish``, exactly
the call the job processor makes, each stamped with the wall-clock time just before the
call; a client records ``receipt time - stamp`` (same machine, same clock).

Scenarios:
- steady: updates at a fixed rate (default 1000/s), round-robin over the users: many jobs
  reporting progress at once.
- burst: one update to every user at the same instant, a few times: 500 jobs moving together,
  the worst queueing the live updates see.
With ``--redis-url`` the same runs go through Redis (the update channel every instance
listens to) as well.
Target (issue): p99 < 50 ms with 500 clients on one instance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import free_port, parser, print_table, write_json
from tests.support.servers import wait_healthy

JWT_SECRET = "benchmark-jwt-secret-0123456789abcdef012345"
FINISHED_LINE = "done"


# --------------------------------------------------------------------------- server role


def run_server(args: argparse.Namespace) -> None:
    """The app (SQLite in a temp folder) with its live updates, plus ``POST /bench/publish``."""
    from aiohttp import web

    from app.events import JobUpdate
    from app.main import create_app
    from app.services import SERVICES
    from app.settings import Settings

    folder = Path(args.folder)
    settings = Settings(
        app_env="test",
        port=args.port,
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        storage_dir=folder / "media",
        jwt_secret=JWT_SECRET,
        internal_api_key="benchmark-internal-key",
        reconcile_interval_seconds=0,
        redis_url=args.redis_url or None,
        socketio_redis_channel=args.channel,
    )
    app = create_app(settings)

    def view(user: int, sequence: int) -> dict[str, Any]:
        return {
            "jobId": f"job-{user}",
            "type": "image-generation",
            "status": "PROCESSING",
            "progress": sequence % 100,
            "resultUrl": None,
            "resultUrls": None,
            "error": None,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }

    async def publish(request: web.Request) -> web.Response:
        plan = await request.json()
        events = request.app[SERVICES].events
        users, sent = int(plan["users"]), 0

        async def one(user: int) -> None:
            payload = view(user, sent)
            payload["sentAt"] = time.time()
            await events.publish(JobUpdate(f"user-{user}", payload))  # type: ignore[arg-type]

        if plan["mode"] == "steady":
            rate, total = float(plan["rate"]), int(plan["count"])
            start = time.perf_counter()
            for index in range(total):
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await one(index % users)
                sent += 1
        else:  # burst: every user at once, ``rounds`` times, a pause between rounds
            for _ in range(int(plan["rounds"])):
                for user in range(users):
                    await one(user)
                    sent += 1
                await asyncio.sleep(float(plan["pause"]))
        return web.json_response({"published": sent})

    app.router.add_post("/bench/publish", publish)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


# --------------------------------------------------------------------------- clients role


async def run_clients(args: argparse.Namespace) -> None:
    """Connect ``args.clients`` clients; then answer the conductor's commands on stdin:
    ``drain N`` (wait until N updates arrived, print their latencies) and ``quit``."""
    import socketio

    from app.auth import issue_dev_token
    from app.settings import Settings

    settings = Settings(app_env="test", jwt_secret=JWT_SECRET, internal_api_key="x")
    latencies: list[float] = []
    arrived = asyncio.Event()
    expected = [0]

    def record(update: dict[str, Any]) -> None:
        latencies.append((time.time() - update["sentAt"]) * 1000)
        if len(latencies) >= expected[0] > 0:
            arrived.set()

    clients: list[socketio.AsyncClient] = []
    gate = asyncio.Semaphore(50)

    async def connect(user: int) -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("jobUpdate", record)
        token = issue_dev_token(settings, f"user-{user}")
        async with gate:
            await client.connect(
                args.url, auth={"token": token}, transports=["websocket"], wait_timeout=30
            )
        clients.append(client)

    started = time.perf_counter()
    await asyncio.gather(*(connect(user) for user in range(args.clients)))
    print(json.dumps({"connected": len(clients), "seconds": time.perf_counter() - started}))
    sys.stdout.flush()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, value = line.partition(" ")
        if command == "quit":
            break
        expected[0] = int(value)
        if len(latencies) < expected[0]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 60)
        print(json.dumps({"received": len(latencies), "latencies_ms": latencies}))
        sys.stdout.flush()
        latencies.clear()
        arrived.clear()
        expected[0] = 0
    await asyncio.gather(*(client.disconnect() for client in clients), return_exceptions=True)


# --------------------------------------------------------------------------- conductor


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(name: str, manager: str, sent: int, latencies: list[float]) -> dict[str, Any]:
    return {
        "scenario": name,
        "manager": manager,
        "sent": sent,
        "received": len(latencies),
        "p50 ms": percentile(latencies, 0.50) if latencies else None,
        "p90 ms": percentile(latencies, 0.90) if latencies else None,
        "p99 ms": percentile(latencies, 0.99) if latencies else None,
        "max ms": max(latencies) if latencies else None,
        "mean ms": statistics.fmean(latencies) if latencies else None,
    }


async def measure(args: argparse.Namespace, redis_url: str | None) -> tuple[list[Any], float]:
    manager = "redis" if redis_url else "in-process"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    me = [sys.executable, "-m", "benchmarks.socketio_latency"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        server = await asyncio.create_subprocess_exec(
            *me, "--role", "server", "--port", str(port), "--folder", folder,
            "--redis-url", redis_url or "", "--channel", f"bench-{uuid.uuid4().hex[:8]}",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        clients = None
        try:
            await wait_healthy(url, timeout=30.0, alive=lambda: server.returncode is None)
            clients = await asyncio.create_subprocess_exec(
                *me, "--role", "clients", "--url", url, "--clients", str(args.clients),
                env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=64 * 1024 * 1024,
            )  # fmt: skip
            assert clients.stdin is not None and clients.stdout is not None
            connected = json.loads(await asyncio.wait_for(clients.stdout.readline(), 120))
            connect_seconds = float(connected["seconds"])
            plans = [
                ("steady", {"mode": "steady", "rate": args.rate, "count": args.count}),
                ("burst", {"mode": "burst", "rounds": args.rounds, "pause": 0.3}),
            ]
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
                # Warm-up: every code path once, not measured.
                warm = {"mode": "burst", "rounds": 1, "pause": 0.1}
                for name, plan in [("warm-up", warm), *plans]:
                    plan = {**plan, "users": args.clients}
                    async with http.post(f"{url}/bench/publish", json=plan) as response:
                        sent = int((await response.json())["published"])
                    clients.stdin.write(f"drain {sent}\n".encode())
                    await clients.stdin.drain()
                    report = json.loads(await asyncio.wait_for(clients.stdout.readline(), 120))
                    if name != "warm-up":
                        label = f"{name} {args.rate:g}/s" if name == "steady" else name
                        rows.append(summary(label, manager, sent, report["latencies_ms"]))
            clients.stdin.write(b"quit\n")
            await clients.stdin.drain()
            await asyncio.wait_for(clients.wait(), 60)
        finally:
            for process in (clients, server):
                if process is not None and process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(process.wait(), 10)
                    except TimeoutError:
                        process.kill()
    return rows, connect_seconds


async def conduct(args: argparse.Namespace) -> None:
    all_rows: list[dict[str, Any]] = []
    connects: dict[str, float] = {}
    for redis_url in [None, *([args.redis_url] if args.redis_url else [])]:
        rows, connect_seconds = await measure(args, redis_url)
        all_rows.extend(rows)
        connects["redis" if redis_url else "in-process"] = connect_seconds
    print_table(
        f"Socket.IO jobUpdate latency, publish -> receipt, {args.clients} connected clients",
        all_rows,
    )
    for manager, seconds in connects.items():
        print(f"connect {args.clients} clients ({manager}): {seconds:.2f}s")
    worst = max((row["p99 ms"] or float("inf")) for row in all_rows if "steady" in row["scenario"])
    print(f"target p99 < 50 ms (steady): {'met' if worst < 50 else 'NOT met'} ({worst:.1f} ms)")
    write_json(
        args.json,
        {
            "clients": args.clients,
            "rows": all_rows,
            "connect_seconds": connects,
            "target_met": worst < 50,
        },
    )


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--role", choices=["conductor", "server", "clients"], default="conductor")
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--rate", type=float, default=1000.0, help="steady updates per second")
    p.add_argument("--count", type=int, default=5000, help="steady updates in total")
    p.add_argument("--rounds", type=int, default=5, help="burst rounds")
    p.add_argument("--redis-url", default=None, help="also measure through this Redis")
    p.add_argument("--channel", default="bench", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--folder", default="", help=argparse.SUPPRESS)
    p.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.clients, args.count, args.rounds = min(args.clients, 100), 1000, 2
    if args.role == "server":
        run_server(args)
    elif args.role == "clients":
        asyncio.run(run_clients(args))
    else:
        asyncio.run(conduct(args))


if __name__ == "__main__":
    main()
