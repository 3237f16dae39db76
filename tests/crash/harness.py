"""A real ``python -m app`` stopped in the middle of its work, then started again: the
crash test's and ``benchmarks/crash_recovery.py``'s one harness.

A run creates a mix of jobs (images, videos, upscales of a generated image, batches, and
upscales of a missing image that fail for good), waits until the app is busy (some jobs done,
some PROCESSING), stops it (SIGKILL, or SIGTERM as Cloud Run does) and starts it again on the
same port, database and queue, then waits until every job is final. What it checks, from the
database the app leaves behind:

- every job reaches the state it reaches without a crash (COMPLETED, or FAILED for the jobs
  made to fail);
- each user's credits are the starting credits less the cost of their COMPLETED jobs (failed
  ones refunded exactly once), and each COMPLETED job has exactly one usage record;
- nothing that was finished when the process stopped ran again: a job or a batch chunk
  COMPLETED at the stop keeps its result, its finishing attempt and its completion time.

Everything runs on 127.0.0.1 with an ephemeral port; the database is a SQLite file in the
run's folder, or a fresh PostgreSQL database dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.emulator_server.process import EmulatorProcess

REPO = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
JWT_SECRET = "crash-test-jwt-secret-0123456789abcdef0123"
INTERNAL_KEY = "crash-test-internal-key"
STARTING_CREDITS = 1_000_000
FINAL = ("COMPLETED", "FAILED", "CANCELLED")

DbKind = Literal["sqlite", "postgres"]
QueueMode = Literal["in-process", "standalone"]
Stop = Literal["kill", "term"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def token(user: str) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@dataclass
class Figures:
    """What one run measured."""

    db: str
    queue: str
    stop: str
    jobs: int
    at_stop: dict[str, int] = field(default_factory=dict)
    stop_seconds: float = 0.0  # signal -> process gone
    exit_code: int | None = None
    recovery_seconds: float = 0.0  # restart -> every job final
    final: dict[str, int] = field(default_factory=dict)
    chunks_finished_at_stop: int = 0
    jobs_finished_at_stop: int = 0
    problems: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)  # the app's output, both runs

    def row(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "queue": self.queue,
            "stop": self.stop,
            "jobs": self.jobs,
            "at stop (done/processing/pending)": "{}/{}/{}".format(
                self.at_stop.get("COMPLETED", 0) + self.at_stop.get("FAILED", 0),
                self.at_stop.get("PROCESSING", 0),
                self.at_stop.get("PENDING", 0),
            ),
            "stop s": round(self.stop_seconds, 2),
            "exit": self.exit_code,
            "recovery s": round(self.recovery_seconds, 2),
            "final": " ".join(f"{k}={v}" for k, v in sorted(self.final.items())),
            "problems": len(self.problems),
        }


@dataclass
class Planned:
    job_id: str
    user: str
    type: str
    cost: int
    expected: str


@dataclass
class AppUnderTest:
    """``python -m app`` with one environment, started and stopped as often as asked."""

    env: dict[str, str]
    cwd: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return self.env["API_BASE_URL"]

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        await self.wait_healthy(timeout=60)

    async def wait_healthy(self, timeout: float) -> None:
        """Until ``/healthz`` answers 200 (bounded). A restarted app may take seconds to answer
        while it redelivers hundreds of tasks at once, so one slow answer is waited for, not
        taken for a failure."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError("the app exited before it was healthy:\n" + self.log())
                try:
                    async with http.get(self.base_url + "/healthz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)  # a starting process offers nothing to wait on
        raise TimeoutError(f"{self.base_url}/healthz did not answer within {timeout:g}s")

    async def stop(self, how: Stop, timeout: float = 30.0) -> tuple[float, int | None]:
        """Signal the process; (seconds until it was gone, exit code)."""
        assert self.process is not None
        began = time.perf_counter()
        self.process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        return time.perf_counter() - began, code

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@asynccontextmanager
async def database_for(kind: DbKind, folder: Path) -> AsyncIterator[str]:
    """A database URL for one run: a SQLite file, or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'app.db'}"
        return
    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        base = POSTGRES_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def job_bodies(count: int, base_url: str, source_url: str) -> list[tuple[str, dict[str, Any], str]]:
    """``count`` (type, body, expected final status), mixed in a fixed rotation."""
    missing = f"{base_url}/media/jobs/missing/image.png"
    image = {"model": "local"}
    clip = {"model": "local", "duration": 1, "height": 64}
    ok, fails = "COMPLETED", "FAILED"
    rotation: list[tuple[str, dict[str, Any], str]] = [
        ("image-generation", {**image, "prompt": "a fox", "width": 256}, ok),
        ("batch-generation", {"prompts": ["a", "b", "c", "d"], "batchSize": 1, "width": 96}, ok),
        ("video-generation", {**clip, "prompt": "waves", "width": 96}, ok),
        ("image-generation", {**image, "prompt": "a lighthouse", "width": 192}, ok),
        ("image-upscale", {**image, "imageUrl": source_url, "scale": 2}, ok),
        ("batch-generation", {"prompts": ["e", "f", "g"], "batchSize": 2, "width": 96}, ok),
        ("image-generation", {**image, "prompt": "a cat", "width": 128}, ok),
        ("image-upscale", {**image, "imageUrl": missing, "scale": 2}, fails),
        ("image-generation", {**image, "prompt": "a dog", "width": 160}, ok),
        ("video-generation", {**clip, "prompt": "rain", "width": 64}, ok),
    ]
    return [rotation[i % len(rotation)] for i in range(count)]


async def statuses(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
        return Counter({status: int(n) for status, n in rows})


async def finished_snapshot(
    engine: AsyncEngine,
) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[str, int], tuple[Any, ...]]]:
    """The jobs and chunks COMPLETED now, with what a re-run would change."""
    async with engine.connect() as conn:
        jobs = await conn.execute(
            text("SELECT id, attempts, result, completed_at FROM jobs WHERE status = 'COMPLETED'")
        )
        chunks = await conn.execute(
            text(
                "SELECT job_id, position, attempts, urls FROM batch_chunks "
                "WHERE status = 'COMPLETED'"
            )
        )
        return (
            {row[0]: (row[1], _json(row[2]), str(row[3])) for row in jobs},
            {(row[0], row[1]): (row[2], _json(row[3])) for row in chunks},
        )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def create_jobs(
    http: aiohttp.ClientSession, base_url: str, count: int, users: list[str], source_url: str
) -> list[Planned]:
    costs = {"image-generation": 1, "video-generation": 5, "image-upscale": 2}
    semaphore = asyncio.Semaphore(32)

    async def one(index: int, job_type: str, body: dict[str, Any], expected: str) -> Planned:
        user = users[index % len(users)]
        headers = {"Authorization": f"Bearer {token(user)}"}
        async with (
            semaphore,
            http.post(f"{base_url}/api/jobs/{job_type}", json=body, headers=headers) as response,
        ):
            job = await response.json()
            assert response.status == 202, job
        cost = len(body["prompts"]) if job_type == "batch-generation" else costs[job_type]
        return Planned(job["jobId"], user, job_type, cost, expected)

    bodies = job_bodies(count, base_url, source_url)
    return list(await asyncio.gather(*(one(i, *spec) for i, spec in enumerate(bodies))))


async def make_source_image(http: aiohttp.ClientSession, app: AppUnderTest) -> str:
    """A generated image of this app, the upscales' source (read from storage by key)."""
    headers = {"Authorization": f"Bearer {token('source')}"}
    body = {"prompt": "the source", "model": "local", "width": 64, "height": 64}
    async with http.post(
        f"{app.base_url}/api/jobs/image-generation", json=body, headers=headers
    ) as response:
        job = await response.json()
    for _ in range(600):
        async with http.get(f"{app.base_url}/api/jobs/{job['jobId']}", headers=headers) as r:
            view = await r.json()
        if view["status"] == "COMPLETED":
            return str(view["resultUrl"])
        await asyncio.sleep(0.05)  # polling the app's own API: a bounded readiness wait
    raise TimeoutError("the source image never completed")


async def run_scenario(
    folder: Path,
    *,
    db: DbKind,
    queue: QueueMode,
    stop: Stop,
    jobs: int,
    users: int = 8,
    busy_fraction: float = 0.2,
    busy_processing: int = 1,
    busy_unfinished: int = 0,
    recovery_limit: float = 60.0,
    rate: int = 50,
    env: dict[str, str] | None = None,
) -> Figures:
    """One stop-and-restart run; the figures, with ``problems`` listing every broken promise.
    The stop comes once ``busy_fraction`` of the jobs are final and at least
    ``busy_processing`` are PROCESSING (and ``busy_unfinished`` not final yet)."""
    figures = Figures(db=db, queue=queue, stop=stop, jobs=jobs)
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before anything runs)
    port = free_port()
    emulator: EmulatorProcess | None = None
    extra = env or {}
    async with database_for(db, folder) as database_url:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "APP_ENV": "test",
            "PORT": str(port),
            "API_BASE_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": database_url,
            "STORAGE_DIR": str(folder / "media"),
            "JWT_SECRET": JWT_SECRET,
            "INTERNAL_API_KEY": INTERNAL_KEY,
            "STARTING_CREDITS": str(STARTING_CREDITS),
            "QUEUE_MAX_DISPATCHES_PER_SECOND": str(rate),
            "LOCAL_PROVIDERS_ONLY": "true",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
        if "EMULATOR_DB" not in extra:
            env.pop("EMULATOR_DB", None)  # the default: the journal beside the database
        if queue == "standalone":
            emulator = EmulatorProcess(args=["--db", str(folder / "emulator.db")]).start()
            env.update(
                QUEUE_BACKEND="cloud-tasks",
                CLOUD_TASKS_EMULATOR_HOST=emulator.grpc_address,
                GOOGLE_CLOUD_PROJECT="local-project",
                GOOGLE_CLOUD_LOCATION="local",
            )
        app = AppUnderTest(env=env, cwd=folder, log_path=folder / "app.log")
        engine = create_async_engine(database_url)
        try:
            await app.start()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                source = await make_source_image(http, app)
                names = [f"user{i}" for i in range(users)]
                planned = await create_jobs(http, app.base_url, jobs, names, source)

            # Busy: a share of the jobs finished and some running.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                counts = await statuses(engine)
                done = counts["COMPLETED"] + counts["FAILED"]
                unfinished = counts["PENDING"] + counts["PROCESSING"]
                busy = counts["PROCESSING"] >= busy_processing and unfinished >= busy_unfinished
                if done >= busy_fraction * (jobs + 1) and busy:
                    break
                await asyncio.sleep(0.01)  # watching the database: there is no event to await
            figures.stop_seconds, figures.exit_code = await app.stop(stop)
            figures.at_stop = dict(await statuses(engine))
            jobs_done, chunks_done = await finished_snapshot(engine)
            figures.jobs_finished_at_stop = len(jobs_done)
            figures.chunks_finished_at_stop = len(chunks_done)

            began = time.perf_counter()
            await app.start()
            limit = began + recovery_limit
            while time.perf_counter() < limit:
                counts = await statuses(engine)
                if sum(counts[s] for s in FINAL) == jobs + 1:
                    break
                await asyncio.sleep(0.05)
            figures.recovery_seconds = time.perf_counter() - began
            figures.final = dict(await statuses(engine))
            await check(engine, planned, jobs_done, chunks_done, figures)
            if figures.recovery_seconds > recovery_limit:
                figures.problems.append(f"not every job final within {recovery_limit:g}s")
            await app.stop("term")
        except BaseException:
            figures.problems.append("run failed; app log tail:\n" + app.log())
            raise
        finally:
            await app.close()
            await engine.dispose()
            figures.log = app.log_path.read_text(errors="replace")
            if emulator is not None:
                emulator.stop()
    return figures


async def check(
    engine: AsyncEngine,
    planned: list[Planned],
    jobs_done: dict[str, tuple[Any, ...]],
    chunks_done: dict[tuple[str, int], tuple[Any, ...]],
    figures: Figures,
) -> None:
    problems = figures.problems
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, status, error FROM jobs"))
        state = {row[0]: (row[1], row[2]) for row in rows}
        usage = Counter(
            row[0] for row in await conn.execute(text("SELECT job_id FROM usage_records"))
        )
        credits = dict(
            (row[0], int(row[1]))
            for row in await conn.execute(text("SELECT id, credits FROM users"))
        )
    spent: Counter[str] = Counter()
    for job in planned:
        status, error = state[job.job_id]
        if status != job.expected:
            problems.append(f"{job.type} {job.job_id}: {status} ({error}), expected {job.expected}")
        if status == "COMPLETED":
            spent[job.user] += job.cost
            if usage[job.job_id] != 1:
                problems.append(f"{job.job_id}: {usage[job.job_id]} usage records")
        elif usage[job.job_id]:
            problems.append(f"{job.job_id}: {status} with a usage record")
    for user in {job.user for job in planned}:
        if credits.get(user) != STARTING_CREDITS - spent[user]:
            problems.append(
                f"{user}: {credits.get(user)} credits, expected {STARTING_CREDITS - spent[user]}"
            )
    now_jobs, now_chunks = await finished_snapshot(engine)
    for job_id, before in jobs_done.items():
        if now_jobs.get(job_id) != before:
            problems.append(f"job {job_id} finished before the stop ran again")
    for key, before in chunks_done.items():
        if now_chunks.get(key) != before:
            problems.append(f"chunk {key} finished before the stop ran again")


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
