"""Emulator engine benchmarks (issue: the queue core).

    python -m benchmarks.engine [--quick] [--repeat N] [--only-task-queue] [--only-http]
        [--json PATH]

1. Engine overhead: tasks/s through create + dispatch + completion with an in-memory
   dispatcher on the virtual clock (100 000 tasks), on the engine and through ``TaskQueue``
   (``CloudTasksQueue`` over the in-process transport: 20 000 tasks, creation alone and
   creation + dispatch). ``--only-task-queue`` runs that table alone, and runs against
   another checkout too (see ``--help``).
2. HTTP dispatch: tasks/s delivered to a local aiohttp receiver, in three shapes (50 queues
   of one concurrent dispatch, 8 queues of 6, 24 of 2), each against a bare aiohttp client
   posting the same requests to the same receiver with as many in flight, interleaved in the
   same run (the physical limit). A queue may not exceed 500 dispatches/s, so a shape's
   reachable rate is the lower of the bare client's and its queues' rate-limit cap; the
   table gives the ratio to both. ``--only-http`` runs that table alone.
3. Rate fidelity on the real clock: configured 10, 50 and 200/s.
4. RSS and idle CPU with 100 000 future tasks (in a fresh subprocess).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

import emulator as emu
from benchmarks.common import (
    CountingReceiver,
    median,
    parser,
    print_table,
    tune_gc_like_a_server,
    write_json,
)
from daygen_queue import (
    HttpRequest,
    NewTask,
    QueueConfig,
    RateLimits,
    RetryConfig,
    SystemClock,
    VirtualClock,
)
from daygen_queue.backends.emulator import EmulatorBackend
from emulator import rules

PARENT = "projects/bench/locations/local"


async def _ok(request: emu.DispatchRequest) -> int:
    return 200


async def engine_overhead(tasks: int) -> dict[str, float]:
    engine = emu.Engine(
        clock=VirtualClock(), dispatcher=emu.CallableDispatcher(_ok), event_history=1000
    )
    await engine.start()
    queue = f"{PARENT}/queues/q"
    await engine.create_queue(emu.QueueSpec(queue, emu.RateLimits(500, 5000)))
    target = emu.HttpTarget(url="http://target.invalid/x", body=b'{"jobId": "x"}')
    started = time.perf_counter()
    for index in range(tasks):
        await engine.create_task(queue, emu.NewTaskSpec(target, name=f"{queue}/tasks/t{index}"))
    created = time.perf_counter()
    await engine.run_until_idle()
    finished = time.perf_counter()
    await engine.close()
    return {
        "create_per_s": tasks / (created - started),
        "dispatch_per_s": tasks / (finished - created),
        "end_to_end_per_s": tasks / (finished - started),
    }


async def task_queue_overhead(tasks: int) -> dict[str, float]:
    """The same work through the ``TaskQueue`` API (``CloudTasksQueue`` over the in-process
    transport: protobuf requests into the emulator's service, models back): creation alone,
    then creation plus dispatch."""
    backend = EmulatorBackend(
        clock=VirtualClock(), dispatcher=emu.CallableDispatcher(_ok), event_history=1000
    )
    await backend.create_queue(
        QueueConfig(name="q", rate_limits=RateLimits(max_concurrent_dispatches=5000))
    )
    started = time.perf_counter()
    for index in range(tasks):
        await backend.create_task(
            "q", NewTask(http_request=HttpRequest(url="http://target.invalid/x"), name=f"t{index}")
        )
    created = time.perf_counter()
    await backend.run_until_idle()
    finished = time.perf_counter()
    await backend.close()
    return {
        "create_per_s": tasks / (created - started),
        "create_us_per_task": (created - started) / tasks * 1e6,
        "end_to_end_per_s": tasks / (finished - started),
    }


async def seed_scenario() -> dict[str, float]:
    """The seed's production queue (10/s, 100 concurrent, 3 attempts, 1 h): 1 000 tasks, a
    third failing twice. Wall time for ~2 minutes of virtual time."""
    attempts: dict[str, int] = {}

    async def handler(request: emu.DispatchRequest) -> int:
        name = request.headers["X-CloudTasks-TaskName"]
        attempts[name] = attempts.get(name, 0) + 1
        return 503 if int(name[1:]) % 3 == 0 and attempts[name] <= 2 else 200

    clock = VirtualClock()
    backend = EmulatorBackend(clock=clock, dispatcher=emu.CallableDispatcher(handler))
    config = QueueConfig(
        name="image-generation-queue",
        rate_limits=RateLimits(max_dispatches_per_second=10, max_concurrent_dispatches=100),
        retry_config=RetryConfig(max_attempts=3, max_retry_duration=timedelta(hours=1)),
    )
    await backend.create_queue(config)
    started_at = clock.now()
    started = time.perf_counter()
    for index in range(1000):
        await backend.create_task(
            config.name, NewTask(http_request=HttpRequest(url="http://x/y"), name=f"t{index}")
        )
    await backend.run_until_idle()
    wall = time.perf_counter() - started
    await backend.close()
    return {
        "wall_seconds": wall,
        "virtual_seconds": (clock.now() - started_at).total_seconds(),
        "attempts": float(sum(attempts.values())),
    }


async def bare_client(receiver: CountingReceiver, requests: int, in_flight: int) -> float:
    """The physical limit: the same requests (the headers of a first attempt, the same body,
    no Content-Type) from a plain aiohttp client with 50 long-lived workers."""
    receiver.expect(requests)
    headers = {
        "User-Agent": "Google-Cloud-Tasks",
        "X-CloudTasks-QueueName": "q0",
        "X-CloudTasks-TaskName": "01234567890123456789",
        "X-CloudTasks-TaskRetryCount": "0",
        "X-CloudTasks-TaskExecutionCount": "0",
        "X-CloudTasks-TaskETA": "1767225600.123456",
    }
    body = b'{"jobId": "x"}'
    remaining = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def worker() -> None:
            for _ in remaining:
                async with session.post(
                    receiver.url, headers=headers, data=body, skip_auto_headers=("Content-Type",)
                ) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return requests / (time.perf_counter() - started)


# (queues, concurrent dispatches per queue): one concurrent dispatch on each of 50 queues,
# and about the same load on 8 queues of 6 and on 24 queues of 2 (48 in flight). One queue may
# not exceed 500/s, as in Cloud Tasks, so none fits on one queue, and 8 queues cap the rate
# below what the bare client reaches on a quiet machine: 24 queues of 2 are the multi-queue
# shape the rate limit leaves free.
DISPATCH_SHAPES = ((50, 1), (8, 6), (24, 2))


def rate_cap(requests: int, queues: int) -> float:
    """The most tasks/s the queues' rate limits allow for ``requests`` tasks: a full bucket
    (the burst) on each queue, then 500/s each."""
    per_queue = requests / queues
    burst = rules.derive_max_burst_size(rules.MAX_DISPATCHES_PER_SECOND)
    seconds = max(per_queue - burst, 0) / rules.MAX_DISPATCHES_PER_SECOND
    return requests / seconds if seconds else float("inf")


async def emulator_dispatch(
    receiver: CountingReceiver, requests: int, queues: int, per_queue: int
) -> float:
    """The engine on the real clock: ``queues`` queues of ``per_queue`` concurrent dispatches
    each, at Cloud Tasks' highest rate (500/s), the tasks created beforehand on paused queues
    and spread evenly."""
    receiver.expect(requests)
    backend = EmulatorBackend(clock=SystemClock(), event_history=1000)
    for index in range(queues):
        await backend.create_queue(
            QueueConfig(
                name=f"q{index}",
                rate_limits=RateLimits(
                    max_dispatches_per_second=500, max_concurrent_dispatches=per_queue
                ),
            )
        )
        await backend.pause_queue(f"q{index}")
    request = HttpRequest(url=receiver.url, body=b'{"jobId": "x"}')
    for index in range(requests):
        await backend.create_task(f"q{index % queues}", NewTask(http_request=request))
    started = time.perf_counter()
    for index in range(queues):
        await backend.resume_queue(f"q{index}")
    await asyncio.wait_for(receiver.done.wait(), 120)
    elapsed = time.perf_counter() - started
    await backend.close()
    return requests / elapsed


async def http_dispatch(requests: int, repeat: int) -> list[dict[str, Any]]:
    """Each shape against the bare client at the same number in flight, interleaved: the
    ratio of each repeat's pair, then the median."""
    receiver = CountingReceiver()
    await receiver.start()
    rows = []
    try:
        runs: dict[tuple[int, int], list[tuple[float, float]]] = {
            shape: [] for shape in DISPATCH_SHAPES
        }
        for _ in range(repeat):
            for queues, per_queue in DISPATCH_SHAPES:
                limit = await bare_client(receiver, requests, queues * per_queue)
                achieved = await emulator_dispatch(receiver, requests, queues, per_queue)
                runs[(queues, per_queue)].append((limit, achieved))
        for (queues, per_queue), pairs in runs.items():
            cap = rate_cap(requests, queues)
            rows.append(
                {
                    "shape": f"{queues} queues x {per_queue} = {queues * per_queue} in flight",
                    "bare aiohttp tasks/s": median([limit for limit, _ in pairs]),
                    "emulator tasks/s": median([achieved for _, achieved in pairs]),
                    "ratio": median([achieved / limit for limit, achieved in pairs]),
                    "rate-limit cap tasks/s": cap,
                    # What this shape can reach at all: the bare client, or Cloud Tasks' own
                    # 500/s per queue where that is lower.
                    "ratio to the reachable": median(
                        [achieved / min(limit, cap) for limit, achieved in pairs]
                    ),
                }
            )
    finally:
        await receiver.stop()
    return rows


async def rate_fidelity(rate: float, seconds: float) -> dict[str, float]:
    """Dispatch times on the real clock; the steady rate excludes the initial burst."""
    times: list[float] = []
    in_flight = 0
    most_in_flight = 0
    all_sent = asyncio.Event()

    async def handler(request: emu.DispatchRequest) -> int:
        nonlocal in_flight, most_in_flight
        times.append(time.perf_counter())
        if len(times) >= total:
            all_sent.set()
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0.005)  # a handler that takes a little time
        in_flight -= 1
        return 200

    backend = EmulatorBackend(
        clock=SystemClock(), dispatcher=emu.CallableDispatcher(handler), event_history=1000
    )
    config = QueueConfig(name="q", rate_limits=RateLimits(max_dispatches_per_second=rate))
    created = await backend.create_queue(config)
    await backend.pause_queue("q")
    burst = created.config.rate_limits.max_burst_size or 0  # output only: the service's
    total = burst + int(rate * seconds)
    for _ in range(total):
        await backend.create_task("q", NewTask(http_request=HttpRequest(url="http://x/y")))
    await backend.resume_queue("q")
    await asyncio.wait_for(all_sent.wait(), seconds * 3 + 30)
    await backend.close()
    steady = times[burst:]
    achieved = (len(steady) - 1) / (steady[-1] - steady[0])
    window = deque[float]()
    largest = 0
    for moment in times:
        window.append(moment)
        while moment - window[0] >= 1.0:
            window.popleft()
        largest = max(largest, len(window))
    return {
        "configured_per_s": rate,
        "achieved_per_s": achieved,
        "error_pct": abs(achieved - rate) / rate * 100,
        "burst": burst,
        "largest_1s_window": largest,
        "most_in_flight": most_in_flight,
    }


async def http_dispatch_table(results: dict[str, Any], requests: int, repeat: int) -> None:
    dispatch = await http_dispatch(requests, repeat)
    results["http_dispatch"] = {"requests": requests, "shapes": dispatch}
    print_table(
        f"HTTP dispatch to a local aiohttp receiver, {requests:,} tasks, against a bare aiohttp"
        f" client with as many in flight, interleaved (median of {repeat})",
        dispatch,
    )


_IDLE_CHILD = """
import asyncio, json, os, resource, sys, time
from datetime import datetime, timedelta, timezone
import emulator as emu
from emulator import rules

def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

async def main(count):
    engine = emu.Engine(event_history=0)
    await engine.start()
    queue = "projects/bench/locations/local/queues/q"
    await engine.create_queue(emu.QueueSpec(queue))
    target = emu.HttpTarget(url="http://127.0.0.1:9/never", body=b'{"jobId": "0123456789"}')
    later = datetime.now(timezone.utc) + timedelta(days=1)
    before = rss_kib()
    for index in range(count):
        name = f"{queue}/tasks/job-{index:08d}"
        await engine.create_task(queue, emu.NewTaskSpec(target, name=name, schedule_time=later))
    after = rss_kib()
    cpu0 = time.process_time()
    await asyncio.sleep(5)
    cpu = time.process_time() - cpu0
    print(json.dumps({"tasks": count, "rss_per_task_bytes": (after - before) * 1024 / count,
                      "rss_mib": after / 1024, "idle_cpu_pct": cpu / 5 * 100}))
    await engine.close()

asyncio.run(main(int(sys.argv[1])))
"""


def idle_footprint(tasks: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-c", _IDLE_CHILD, str(tasks)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


async def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument(
        "--only-task-queue",
        action="store_true",
        help="only the TaskQueue table: it uses nothing but the TaskQueue API, so the same file "
        "also runs against another checkout (cd OTHER && PYTHONPATH=. .venv/bin/python "
        "THIS/benchmarks/engine.py --only-task-queue), for a baseline in the same run",
    )
    cli.add_argument("--only-http", action="store_true", help="only the HTTP dispatch table")
    args = cli.parse_args()
    tune_gc_like_a_server()
    tasks = 20_000 if args.quick else 100_000
    http_requests = 5_000 if args.quick else 20_000
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat()}
    if args.only_http:
        await http_dispatch_table(results, http_requests, args.repeat)
        write_json(args.json, results)
        return

    api_runs = [await task_queue_overhead(tasks // 5) for _ in range(args.repeat)]
    through = {key: median([run[key] for run in api_runs]) for key in api_runs[0]}
    results["through_task_queue"] = {"tasks": tasks // 5, **through}
    print_table(
        f"Through the TaskQueue API (CloudTasksQueue, in-process transport), virtual clock,"
        f" {tasks // 5:,} tasks (median of {args.repeat})",
        [
            {
                "measure": "create",
                "tasks/s": through["create_per_s"],
                "us/task": through["create_us_per_task"],
            },
            {
                "measure": "create + dispatch",
                "tasks/s": through["end_to_end_per_s"],
                "us/task": 1e6 / through["end_to_end_per_s"],
            },
        ],
    )
    if args.only_task_queue:
        write_json(args.json, results)
        return

    engine_runs = [await engine_overhead(tasks) for _ in range(args.repeat)]
    overhead = {key: median([run[key] for run in engine_runs]) for key in engine_runs[0]}
    overhead["through_task_queue_per_s"] = through["end_to_end_per_s"]
    results["engine_overhead"] = {"tasks": tasks, **overhead}
    print_table(
        f"Engine overhead, in-memory dispatcher, virtual clock, {tasks:,} tasks"
        f" (median of {args.repeat})",
        [{"measure": key, "tasks/s": value} for key, value in overhead.items()],
    )

    seed = [await seed_scenario() for _ in range(args.repeat)]
    results["seed_scenario"] = {key: median([run[key] for run in seed]) for key in seed[0]}
    print_table(
        "Seed production queue, 1 000 tasks, a third failing twice (virtual clock)",
        [results["seed_scenario"]],
    )

    await http_dispatch_table(results, http_requests, args.repeat)

    seconds = 2.0 if args.quick else 5.0
    fidelity = [await rate_fidelity(rate, seconds) for rate in (10.0, 50.0, 200.0)]
    results["rate_fidelity"] = fidelity
    print_table(f"Rate fidelity on the real clock ({seconds:.0f} s steady each)", fidelity)

    footprint = idle_footprint(tasks)
    results["idle_footprint"] = footprint
    print_table(f"{tasks:,} future tasks held in memory", [footprint])
    write_json(args.json, results)


if __name__ == "__main__":
    asyncio.run(main())
