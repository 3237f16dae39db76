"""Remote image jobs end to end against the fake BFL, on the real clock (issue: real generation).

    python -m benchmarks.providers_e2e [--jobs N] [--render S] [--quick] [--repeat N] [--json PATH]

``python -m app`` as users run it (SQLite, the in-process emulator delivering over real HTTP)
with ``BFL_API_KEY`` set and ``BFL_API_URL`` pointing at a fake BFL in this process, whose every
task renders for ``--render`` seconds (2 s) of wall time. 50 clients create N image jobs
(1 000); each job is submitted by its delivery, then polled by poll tasks on the queue. The
image queue runs at 500 dispatches/s with BFL's concurrency (24) as its
``max_concurrent_dispatches``.

Reported (median of the repeats):

* jobs/s, from the first creation to the last COMPLETED;
* peak open TCP connections of the app process (ESTABLISHED sockets it holds, sampled every
  20 ms from ``/proc``): all of them (the 50 creating clients, the in-process emulator's
  deliveries, counted at both ends, and the outbound ones), and those to BFL alone, next to
  the peak number of jobs waiting on the provider (PROCESSING): with poll tasks, connections
  are bounded by the queue's concurrency, not by the jobs waiting (``BFL conns/waiting``);
* p50 / p99 from the moment the fake's task became Ready (submission + render time) to the
  job's ``completed_at``: what the poll interval costs.

Everything listens on 127.0.0.1; the fake's result files are served by the fake itself.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    app_env,
    create_jobs,
    free_port,
    median,
    parser,
    print_table,
    start_app,
    user_tokens,
    wait_ready,
    write_json,
)
from tests.providers.fakes.bfl import FakeBfl

CLIENTS = 50
BFL_KEY = "bfl_bench_key"
BODY = {"prompt": "a benchmark of foxes", "model": "flux-1.1-pro", "width": 256, "height": 256}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_connections(pid: int, provider_port: int) -> tuple[int, int]:
    """(all ESTABLISHED TCP sockets held by ``pid``, those of them to ``provider_port``), read
    from Linux ``/proc`` (no extra dependency)."""
    inodes = _socket_inodes(pid)
    total = to_provider = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "01" and fields[9] in inodes:
                total += 1
                if int(fields[2].rsplit(":", 1)[1], 16) == provider_port:
                    to_provider += 1
    return total, to_provider


def statuses(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        except sqlite3.OperationalError:  # the app has not migrated yet
            return {}
    return {str(status): int(count) for status, count in rows}


def completions(database: Path) -> list[tuple[str, datetime]]:
    """(provider task id, completed_at) of every completed job."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT p.task_id, j.completed_at FROM jobs j JOIN provider_tasks p "
            "ON p.job_id = j.id WHERE j.status = 'COMPLETED'"
        ).fetchall()
    return [(str(task), _utc(str(when))) for task, when in rows]


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def one_run(jobs: int, render: float) -> dict[str, float]:
    fake = FakeBfl(api_key=BFL_KEY, render_time=timedelta(seconds=render))
    await fake.start()
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        database = Path(workdir) / "app.db"
        env = app_env(
            workdir,
            port,
            BFL_API_KEY=BFL_KEY,
            BFL_API_URL=fake.url,
            FETCH_ALLOW_HOSTS=fake.url.removeprefix("http://"),
            RECONCILE_INTERVAL_SECONDS="0",
        )
        process = start_app(env)
        peak_connections = peak_provider = peak_waiting = 0
        provider_port = int(fake.url.rsplit(":", 1)[1])
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base, process)
            tokens = user_tokens(CLIENTS)
            started = time.perf_counter()
            creating = asyncio.ensure_future(create_jobs(base, tokens, jobs, BODY))
            while True:
                await asyncio.sleep(0.02)
                total, to_provider = established_connections(process.pid, provider_port)
                peak_connections = max(peak_connections, total)
                peak_provider = max(peak_provider, to_provider)
                counts = statuses(database)
                peak_waiting = max(peak_waiting, counts.get("PROCESSING", 0))
                if counts.get("FAILED"):
                    raise RuntimeError(f"{counts['FAILED']} jobs failed")
                if counts.get("COMPLETED", 0) >= jobs:
                    break
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"only {counts} after 10 minutes")
            finished = time.perf_counter()
            await creating
            ready_to_done = []
            for task_id, completed_at in completions(database):
                task = fake.tasks[task_id]
                assert task.created_at is not None
                ready = task.created_at + timedelta(seconds=render)
                ready_to_done.append((completed_at - ready).total_seconds())
        finally:
            process.terminate()
            process.wait(timeout=30)
            await fake.stop()
    polls = len(fake.calls("GET", "/v1/get_result"))
    return {
        "jobs": jobs,
        "total_seconds": finished - started,
        "jobs_per_second": jobs / (finished - started),
        "peak_connections": peak_connections,
        "peak_provider_connections": peak_provider,
        "peak_waiting_jobs": peak_waiting,
        "provider_connections_per_waiting_job": peak_provider / max(1, peak_waiting),
        "polls_per_job": polls / jobs,
        "ready_to_completed_p50_s": statistics.median(ready_to_done),
        "ready_to_completed_p99_s": percentile(ready_to_done, 0.99),
    }


async def run(jobs: int, render: float, repeat: int) -> dict[str, Any]:
    runs = [await one_run(jobs, render) for _ in range(repeat)]
    keys = [k for k in runs[0] if k != "jobs"]
    return {
        "clients": CLIENTS,
        "jobs_per_run": jobs,
        "render_seconds": render,
        "runs": runs,
        **{key: median([r[key] for r in runs]) for key in keys},
    }


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--jobs", type=int, default=None, help="image jobs per run (1000)")
    cli.add_argument("--render", type=float, default=2.0, help="seconds each render takes")
    args = cli.parse_args()
    jobs = args.jobs or (200 if args.quick else 1000)
    result = asyncio.run(run(jobs, args.render, args.repeat))
    rows: list[dict[str, Any]] = [
        {
            "run": index + 1,
            "jobs/s": r["jobs_per_second"],
            "total s": r["total_seconds"],
            "peak conns": r["peak_connections"],
            "to BFL": r["peak_provider_connections"],
            "peak waiting": r["peak_waiting_jobs"],
            "BFL conns/waiting": r["provider_connections_per_waiting_job"],
            "polls/job": r["polls_per_job"],
            "ready->done p50 s": r["ready_to_completed_p50_s"],
            "p99 s": r["ready_to_completed_p99_s"],
        }
        for index, r in enumerate(result["runs"])
    ]
    rows.append(
        {
            "run": "median",
            "jobs/s": result["jobs_per_second"],
            "total s": result["total_seconds"],
            "peak conns": result["peak_connections"],
            "to BFL": result["peak_provider_connections"],
            "peak waiting": result["peak_waiting_jobs"],
            "BFL conns/waiting": result["provider_connections_per_waiting_job"],
            "polls/job": result["polls_per_job"],
            "ready->done p50 s": result["ready_to_completed_p50_s"],
            "p99 s": result["ready_to_completed_p99_s"],
        }
    )
    print_table(
        f"Remote image jobs: {jobs} against the fake BFL ({args.render:g} s render each), "
        f"{CLIENTS} clients, SQLite, real clock (median of {args.repeat})",
        rows,
    )
    write_json(args.json, {"providers_e2e": result})


if __name__ == "__main__":
    main()
