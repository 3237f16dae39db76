"""``python -m emulator`` over gRPC, against the PyPI ``gcloud-tasks-emulator`` in the same run.

    python -m benchmarks.grpc_emulator [--quick] [--json PATH] [--skip-pypi] [--skip-db]
        [--rss-tasks N] [--baseline CHECKOUT]

Workloads (the official ``google-cloud-tasks`` async client, one process, 2 cores shared with
the server):
1. CreateTask RPC/s, sequential and with 50 in flight (on a paused queue: creation only).
2. End to end: 10 000 tasks over 10 queues created with 50 in flight and delivered to a local
   aiohttp receiver; wall time from the first CreateTask to the last delivery. The baseline
   is a bare aiohttp client posting the same number of requests to the same receiver with
   the same concurrency (the physical limit of HTTP delivery here).
3. The emulator process's RSS, sampled from /proc, across a 100 000-task end-to-end run.

Baselines in the same run: a grpc.aio server whose CreateTask handler does nothing (the
per-RPC floor of the gRPC stack itself), once on the default CPU scheduling policy and once
on SCHED_BATCH as ``python -m emulator`` runs, and a bare aiohttp client posting to the
receiver (the floor of HTTP delivery). Besides client-observed rates, each server's CPU time
per task is read from /proc: the client (one Python process) saturates first, so CPU per task
is what compares the servers.

The PyPI emulator (a sync gRPC server on a 2-thread pool, urllib delivery) is installed into a
throwaway virtualenv (``/tmp/gcloud-tasks-emulator-venv``) on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks import transports

from benchmarks.common import CountingReceiver, median, parser, print_table, write_json

REPO = Path(__file__).resolve().parents[1]
PYPI_VENV = Path("/tmp/gcloud-tasks-emulator-venv")
PARENT = "projects/bench/locations/local"
CONCURRENCY = 50
FLOOR = "grpc.aio floor (no-op handler)"
BATCH_FLOOR = "grpc.aio floor, SCHED_BATCH"


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A Cloud Tasks emulator subprocess, killed on exit."""

    name: str
    command: list[str]
    address: str
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self, timeout: float = 30) -> None:
        """Spawn, then wait (bounded) until ListQueues answers."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            client, channel = make_client(self.address)
            try:
                await client.list_queues(parent=PARENT, retry=None, timeout=1)
                return
            except Exception:
                await asyncio.sleep(0.1)
            finally:
                await channel.close()
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def ours() -> Server:
    port = free_port()
    return Server(
        "python -m emulator",
        [sys.executable, "-m", "emulator", "--port", str(port), "--http-port", "-1"],
        f"127.0.0.1:{port}",
    )


def ours_with_db() -> Server:
    """Durable: every acknowledged CreateTask committed to SQLite first."""
    server = ours()
    directory = Path(f"/tmp/grpc-emulator-bench-{os.getpid()}")
    shutil.rmtree(directory, ignore_errors=True)
    server.name = "python -m emulator --db"
    server.command += ["--db", str(directory / "tasks.db")]
    return server


def pypi_emulator() -> Server:
    python = PYPI_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYPI_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "gcloud-tasks-emulator"], check=True
        )
    port = free_port()
    return Server(
        "gcloud-tasks-emulator (PyPI)",
        [str(PYPI_VENV / "bin" / "gcloud-tasks-emulator"), "start", "--port", str(port), "-q"],
        f"127.0.0.1:{port}",
    )


def floor_server() -> Server:
    """The same gRPC stack answering CreateTask with a canned Task and doing nothing else:
    the floor any grpc.aio emulator pays per RPC (on uvloop, as ``python -m emulator``), on
    the default CPU scheduling policy."""
    port = free_port()
    return Server(
        FLOOR,
        [sys.executable, "-m", "benchmarks.grpc_emulator", "--serve-floor", str(port)],
        f"127.0.0.1:{port}",
    )


def batch_floor_server() -> Server:
    """The floor on SCHED_BATCH, as ``python -m emulator`` runs (``batch_scheduling``): the
    gRPC stack's own cost under the emulator's own setting, so that ours over this one is
    what the emulator's handlers add."""
    server = floor_server()
    server.name = BATCH_FLOOR
    server.command.append("--floor-batch")
    return server


async def serve_floor(port: int) -> None:
    task_class: Any = tasks_v2.Task.pb()
    queue_class: Any = tasks_v2.Queue.pb()

    async def create_task(request: Any, context: Any) -> Any:
        return task_class(name=request.parent + "/tasks/00000000000000000001")

    async def queue(request: Any, context: Any) -> Any:
        return queue_class(name=getattr(request, "name", "") or request.queue.name)

    async def list_queues(request: Any, context: Any) -> Any:
        return tasks_v2.ListQueuesResponse.pb()()

    def unary(handler: Any, request: Any, response: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=request.pb().FromString,
            response_serializer=response.pb().SerializeToString,
        )

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handlers = {
        "CreateTask": unary(create_task, tasks_v2.CreateTaskRequest, tasks_v2.Task),
        "CreateQueue": unary(queue, tasks_v2.CreateQueueRequest, tasks_v2.Queue),
        "PauseQueue": unary(queue, tasks_v2.PauseQueueRequest, tasks_v2.Queue),
        "ListQueues": unary(list_queues, tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("google.cloud.tasks.v2.CloudTasks", handlers),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def make_client(address: str) -> tuple[tasks_v2.CloudTasksAsyncClient, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(address)
    transport = transports.CloudTasksGrpcAsyncIOTransport(channel=channel)
    return tasks_v2.CloudTasksAsyncClient(transport=transport), channel


# ------------------------------------------------------------------ receiver


# ------------------------------------------------------------------ workloads


async def gather_limited(count: int, limit: int, call: Callable[[int], Awaitable[Any]]) -> None:
    """``count`` calls with at most ``limit`` in flight (workers, not one task per call)."""
    counter = iter(range(count))

    async def worker() -> None:
        for index in counter:
            await call(index)

    await asyncio.gather(*(worker() for _ in range(min(limit, count))))


async def create_rate(
    server: Server, tasks: int, concurrency: int, tag: str
) -> tuple[float, float]:
    """(CreateTask/s seen by the client, server CPU microseconds per CreateTask)."""
    client, channel = make_client(server.address)
    queue = f"{PARENT}/queues/create-{tag}"
    try:
        await client.create_queue(parent=PARENT, queue={"name": queue}, retry=None)
        await client.pause_queue(name=queue, retry=None)
        task = {"http_request": {"url": "http://127.0.0.1:9/never", "body": b'{"jobId": "x"}'}}

        async def create(index: int) -> None:
            await client.create_task(parent=queue, task=task, retry=None, timeout=30)

        cpu = server.cpu_seconds()
        started = time.perf_counter()
        await gather_limited(tasks, concurrency, create)
        elapsed = time.perf_counter() - started
        return tasks / elapsed, (server.cpu_seconds() - cpu) / tasks * 1e6
    finally:
        await channel.close()


async def end_to_end(
    server: Server, receiver: CountingReceiver, tasks: int, queues: int, tag: str, timeout: float
) -> tuple[float, float] | None:
    """(Tasks/s from the first CreateTask to the last delivery, server CPU microseconds per
    task); None if it timed out."""
    client, channel = make_client(server.address)
    names = [f"{PARENT}/queues/e2e-{tag}-{index}" for index in range(queues)]
    try:
        for name in names:
            await client.create_queue(
                parent=PARENT,
                queue={
                    "name": name,
                    "rate_limits": {
                        "max_dispatches_per_second": 500,
                        "max_concurrent_dispatches": 100,
                    },
                },
                retry=None,
            )
        receiver.expect(tasks)
        body = b'{"jobId": "x"}'

        async def create(index: int) -> None:
            await client.create_task(
                parent=names[index % queues],
                task={"http_request": {"url": receiver.url, "body": body}},
                retry=None,
                timeout=30,
            )

        cpu = server.cpu_seconds()
        started = time.perf_counter()
        await gather_limited(tasks, CONCURRENCY, create)
        try:
            await asyncio.wait_for(receiver.done.wait(), timeout)
        except TimeoutError:
            return None
        elapsed = time.perf_counter() - started
        return tasks / elapsed, (server.cpu_seconds() - cpu) / tasks * 1e6
    finally:
        await channel.close()


async def raw_http_baseline(receiver: CountingReceiver, requests: int) -> float:
    receiver.expect(requests)
    async with aiohttp.ClientSession() as session:

        async def post(index: int) -> None:
            async with session.post(receiver.url, data=b'{"jobId": "x"}') as response:
                await response.read()

        started = time.perf_counter()
        await gather_limited(requests, CONCURRENCY, post)
        return requests / (time.perf_counter() - started)


async def rss_run(receiver: CountingReceiver, tasks: int) -> dict[str, Any]:
    """RSS of ``python -m emulator`` across ``tasks`` tasks end to end, sampled every 0.5 s."""
    server = ours()
    await server.start()
    samples: list[tuple[float, int, int]] = []  # (seconds, delivered, rss KiB)
    stop = asyncio.Event()

    async def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - started, receiver.count, server.rss_kib()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    sampler = asyncio.create_task(sample())
    try:
        outcome = await end_to_end(server, receiver, tasks, 10, "rss", timeout=600)
    finally:
        stop.set()
        await sampler
        final = server.rss_kib()
        server.stop()
    quarter = [rss for _, done, rss in samples if done >= tasks // 4]
    return {
        "tasks": tasks,
        "tasks_per_s": outcome[0] if outcome else None,
        "rss_start_mib": samples[0][2] / 1024 if samples else None,
        "rss_at_25pct_mib": quarter[0] / 1024 if quarter else None,
        "rss_peak_mib": max(rss for _, _, rss in samples) / 1024 if samples else None,
        "rss_end_mib": final / 1024,
        "samples": [{"t": t, "delivered": d, "rss_kib": r} for t, d, r in samples],
    }


@dataclass
class Contender:
    """A server measured in every repeat: ``create_only`` (the floor) runs the CreateTask
    workloads alone."""

    name: str
    factory: Callable[[], Server]
    create_only: bool = False
    runs: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"seq": [], "par": [], "e2e": []}
    )


def baseline_emulator(checkout: Path) -> Callable[[], Server]:
    """``python -m emulator`` of another checkout (its own ``.venv``), e.g. the commit an
    issue started from: measured in the same run, interleaved with ours."""
    python = checkout / ".venv" / "bin" / "python"

    def factory() -> Server:
        port = free_port()
        server = Server(
            f"baseline ({checkout.name})",
            [str(python), "-m", "emulator", "--port", str(port), "--http-port", "-1"],
            f"127.0.0.1:{port}",
        )
        server.cwd = checkout
        server.env = {"PYTHONPATH": str(checkout)}
        return server

    return factory


async def measure(
    contender: Contender,
    receiver: CountingReceiver,
    sizes: dict[str, int],
    repeat: int,
) -> None:
    server = contender.factory()
    await server.start()
    tag = f"{repeat}"
    try:
        runs = contender.runs
        runs["seq"].append(await create_rate(server, sizes["sequential"], 1, f"s{tag}"))
        runs["par"].append(await create_rate(server, sizes["parallel"], CONCURRENCY, f"p{tag}"))
        if not contender.create_only:
            outcome = await end_to_end(server, receiver, sizes["e2e"], 10, f"e{tag}", 180)
            runs["e2e"].append(outcome if outcome is not None else (0.0, float("inf")))
    finally:
        server.stop()


def summary(contender: Contender) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, label in (
        ("seq", "create_sequential"),
        ("par", "create_50_in_flight"),
        ("e2e", "end_to_end"),
    ):
        if contender.runs[key]:
            row[label] = median([rate for rate, _ in contender.runs[key]])
            row[label + "_cpu_us"] = median([cpu for _, cpu in contender.runs[key]])
    return row


def paired_ratios(ours: Contender, other: Contender, key: str) -> list[float]:
    """Per repeat, the other's CPU per task over ours (above 1: ours spends less); each pair
    was measured minutes apart at most, under the same load."""
    return [
        theirs / mine
        for (_, mine), (_, theirs) in zip(ours.runs[key], other.runs[key], strict=False)
        if mine > 0 and theirs != float("inf")
    ]


async def run(args: Any) -> dict[str, Any]:
    quick = args.quick
    sizes = {
        "sequential": 300 if quick else 2000,
        "parallel": 2000 if quick else 10_000,
        "e2e": 2000 if quick else 10_000,
    }
    rss_n = args.rss_tasks if args.rss_tasks >= 0 else (10_000 if quick else 100_000)
    receiver = CountingReceiver()
    await receiver.start()
    floor = Contender(FLOOR, floor_server, create_only=True)
    batch_floor = Contender(BATCH_FLOOR, batch_floor_server, create_only=True)
    mine = Contender(ours().name, ours)
    contenders = [floor, batch_floor, mine]
    baseline: Contender | None = None
    if args.baseline:
        factory = baseline_emulator(args.baseline)
        baseline = Contender(factory().name, factory)
        contenders.append(baseline)
    if not args.skip_db:
        contenders.append(Contender(ours_with_db().name, ours_with_db))
    if not args.skip_pypi:
        contenders.append(Contender(pypi_emulator().name, pypi_emulator))
    rss: dict[str, Any] = {}
    try:
        http_limit = await raw_http_baseline(receiver, sizes["e2e"])
        # Interleaved: every contender once per repeat, so that a change in the machine's
        # load (other engineers share its 2 cores) falls on all of them alike.
        for repeat in range(args.repeat):
            for contender in contenders:
                await measure(contender, receiver, sizes, repeat)
        if rss_n > 0:
            rss = await rss_run(receiver, rss_n)
    finally:
        await receiver.stop()
    results = {contender.name: summary(contender) for contender in contenders}
    ratios: dict[str, Any] = {
        # CreateTask per CPU-second, ours over the floor's (1.0: no cost beyond gRPC's own).
        "create_50_in_flight_vs_floor": median(paired_ratios(mine, floor, "par")),
        "create_50_in_flight_vs_batch_floor": median(paired_ratios(mine, batch_floor, "par")),
    }
    if baseline is not None:
        ratios["end_to_end_cpu_vs_baseline"] = 1 / median(paired_ratios(mine, baseline, "e2e"))
        ratios["create_50_in_flight_cpu_vs_baseline"] = 1 / median(
            paired_ratios(mine, baseline, "par")
        )
    return {
        "results": results,
        # Every repeat as measured: (client-seen rate, server CPU us per task).
        "runs": {contender.name: contender.runs for contender in contenders},
        "ratios": ratios,
        "raw_http_baseline": http_limit,
        "rss": rss,
        "sizes": sizes,
        "repeats": args.repeat,
    }


def _less_or_more(ratio: float) -> str:
    change = (1 - ratio) * 100
    return f"{change:.0f} % less" if change >= 0 else f"{-change:.0f} % more"


def main() -> None:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--skip-pypi", action="store_true", help="leave out the PyPI emulator")
    cli.add_argument("--skip-db", action="store_true", help="leave out the --db run")
    cli.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also measure CHECKOUT's python -m emulator (run with CHECKOUT/.venv), "
        "interleaved with ours, and print ours/baseline CPU ratios",
    )
    cli.add_argument(
        "--rss-tasks", type=int, default=-1, help="tasks in the RSS run (0: no RSS run)"
    )
    cli.add_argument("--serve-floor", type=int, default=0, help=argparse.SUPPRESS)
    cli.add_argument("--floor-batch", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.baseline:
        args.baseline = Path(args.baseline).resolve()
    if args.serve_floor:
        from emulator.__main__ import batch_scheduling
        from emulator.__main__ import run as run_server_loop

        if args.floor_batch and not batch_scheduling():
            raise SystemExit("SCHED_BATCH is not available here")

        async def floor_main() -> int:
            await serve_floor(args.serve_floor)
            return 0

        run_server_loop(floor_main())
        return
    os.environ.setdefault("NO_GCE_CHECK", "true")
    report = asyncio.run(run(args))
    results = report["results"]
    names = list(results)
    ours_name = ours().name
    pypi = "gcloud-tasks-emulator (PyPI)"
    rows = []
    e2e = f"{report['sizes']['e2e']} tasks end to end, 10 queues"
    for metric, unit, higher_is_better in (
        ("create_sequential", "CreateTask/s, sequential", True),
        ("create_50_in_flight", "CreateTask/s, 50 in flight", True),
        ("end_to_end", f"tasks/s, {e2e}", True),
        ("create_sequential_cpu_us", "server CPU us/CreateTask, sequential", False),
        ("create_50_in_flight_cpu_us", "server CPU us/CreateTask, 50 in flight", False),
        ("end_to_end_cpu_us", f"server CPU us/task, {e2e}", False),
    ):
        row: dict[str, Any] = {"workload": unit}
        for name in names:
            row[name] = results[name].get(metric)
        if pypi in results and results[ours_name].get(metric) and results[pypi].get(metric):
            ours_value, theirs = results[ours_name][metric], results[pypi][metric]
            ratio = ours_value / theirs if higher_is_better else theirs / ours_value
            row["ours vs PyPI"] = f"{ratio:.2f}x"
        rows.append(row)
    rows.append(
        {
            "workload": "raw aiohttp POST, 50 in flight (physical limit)",
            ours_name: report["raw_http_baseline"],
        }
    )
    print_table(f"Cloud Tasks emulators over gRPC (median of {args.repeat})", rows)
    ratios = report["ratios"]
    ratio_rows = [
        {
            "ratio (median of per-repeat pairs)": "CreateTask per server CPU-second, 50 in "
            f"flight: ours / {name}",
            "value": f"{ratios[key]:.3f}x",
        }
        for key, name in (
            ("create_50_in_flight_vs_floor", FLOOR),
            ("create_50_in_flight_vs_batch_floor", BATCH_FLOOR),
        )
    ]
    if "end_to_end_cpu_vs_baseline" in ratios:
        for key, label in (
            ("create_50_in_flight_cpu_vs_baseline", "server CPU per CreateTask, 50 in flight"),
            ("end_to_end_cpu_vs_baseline", "server CPU per task end to end"),
        ):
            ratio_rows.append(
                {
                    "ratio (median of per-repeat pairs)": f"{label}: ours / baseline",
                    "value": f"{ratios[key]:.3f}x ({_less_or_more(ratios[key])})",
                }
            )
    print_table("Ratios measured in the same run", ratio_rows)
    rss = report["rss"]
    if rss:
        print_table(
            "python -m emulator RSS across an end-to-end run",
            [{key: rss[key] for key in rss if key != "samples"}],
        )
    write_json(args.json, report)


if __name__ == "__main__":
    main()
