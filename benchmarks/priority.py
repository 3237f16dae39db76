"""Priorities under a backlog, on the virtual clock: ``python -m benchmarks.priority``.

1 000 normal image jobs wait; the provider is saturated (the seed's budget, 10 dispatches/s and
100 at once, every render taking ``--render`` virtual seconds: one dispatch round). One second
into the backlog a ``high`` job arrives. Two layouts of the same budget:

- baseline: one queue per type with the whole budget (no priorities: Cloud Tasks has none
  inside a queue, so the high job waits behind the backlog);
- priorities: the app's queues (``app.jobs.types.queue_configs``: high 25 %, normal 60 %,
  low 15 % of the budget), the tasks built by the app's own ``enqueue``.

Reported in virtual seconds (deterministic: the same figures on every run), plus the wall time
each scenario took (median of ``--repeat``). The provider's peak concurrency shows the budget is
never exceeded.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.jobs.enqueue import enqueue
from app.jobs.types import JOB_TYPES, queue_config, queue_configs
from app.settings import Settings
from benchmarks.common import median, parser, print_table, write_json
from daygen_queue import QueueConfig, VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend
from emulator.dispatch import CallableDispatcher, DispatchRequest

RATE, CONCURRENCY = 10.0, 100


@dataclass
class Provider:
    """A saturated provider on the virtual clock: every render takes ``render`` seconds."""

    clock: VirtualClock
    render: timedelta
    in_flight: int = 0
    peak: int = 0
    finished: dict[str, datetime] = field(default_factory=dict)

    async def handle(self, request: DispatchRequest) -> int:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await self.clock.sleep_until(self.clock.now() + self.render)
        self.in_flight -= 1
        self.finished[json.loads(request.body)["jobId"]] = self.clock.now()
        return 200


async def scenario(layout: str, backlog: int, render: timedelta) -> dict[str, Any]:
    clock = VirtualClock()
    provider = Provider(clock, render)
    backend = EmulatorBackend(clock=clock, dispatcher=CallableDispatcher(provider.handle))
    settings = Settings(app_env="test", jwt_secret="b" * 32, internal_api_key="bench")
    image = JOB_TYPES["image-generation"]
    configs: list[QueueConfig]
    if layout == "baseline":
        configs = [
            queue_config(
                image, max_dispatches_per_second=RATE, max_concurrent_dispatches=CONCURRENCY
            )
        ]
    else:
        configs = queue_configs(
            image, max_dispatches_per_second=RATE, max_concurrent_dispatches=CONCURRENCY
        )
    started = time.perf_counter()
    try:
        for config in configs:
            await backend.ensure_queue(config)
        start = clock.now()
        for n in range(backlog):
            await enqueue(backend, settings, image, f"normal-{n:04d}")
        await backend.advance(timedelta(seconds=1))  # the backlog is running: saturated
        arrived = clock.now()
        # Without priorities there is nowhere else to put it: the type's one queue.
        priority = "high" if layout == "priorities" else "normal"
        await enqueue(backend, settings, image, "urgent", priority=priority)
        await backend.run_until_idle()
    finally:
        await backend.close()
    wall = time.perf_counter() - started
    high = (provider.finished["urgent"] - arrived).total_seconds()
    drained = max(when for job, when in provider.finished.items() if job.startswith("normal-"))
    return {
        "layout": layout,
        "backlog": backlog,
        "high_job_s": high,
        "high_job_rounds": high / render.total_seconds(),
        "backlog_drained_s": (drained - start).total_seconds(),
        "provider_peak": provider.peak,
        "wall_s": wall,
    }


async def run(backlog: int, render: timedelta, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for layout in ("baseline", "priorities"):
        runs = [await scenario(layout, backlog, render) for _ in range(repeat)]
        row = dict(runs[0])
        # Virtual figures are identical in every run (asserted); only wall time varies.
        for other in runs[1:]:
            assert {k: v for k, v in other.items() if k != "wall_s"} == {
                k: v for k, v in row.items() if k != "wall_s"
            }
        row["wall_s"] = median([one["wall_s"] for one in runs])
        rows.append(row)
    base, prio = rows
    prio["high_vs_baseline"] = base["high_job_s"] / prio["high_job_s"]
    base["high_vs_baseline"] = 1.0
    return rows


def main() -> None:
    args_parser = parser(__doc__.splitlines()[0])
    args_parser.add_argument("--backlog", type=int, default=1000)
    args_parser.add_argument("--render", type=float, default=10.0, help="virtual seconds")
    args = args_parser.parse_args()
    backlog = 100 if args.quick else args.backlog
    render = timedelta(seconds=args.render)
    rows = asyncio.run(run(backlog, render, args.repeat))
    print_table(
        f"A high job arriving 1 s into {backlog} normal jobs, provider saturated "
        f"({RATE:g}/s, {CONCURRENCY} at once, {args.render:g} s per render = one round)",
        rows,
    )
    write_json(args.json, {"benchmark": "priority", "render_s": args.render, "rows": rows})


if __name__ == "__main__":
    main()
