"""What the metrics cost the job path: the ``JobEvents`` tee, a wrapped provider call, a scrape.

    python -m benchmarks.metrics [--quick] [--repeat N] [--json PATH]

Each case runs a loop of N operations and reports the median time per operation over the
repeats, beside its baseline measured in the same run (the same call without metrics: the
bare publisher, the bare provider), and the time added. A scrape is timed with every label
combination the service can produce filled in (4 types x 4 providers x 3 statuses...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.events import JobUpdate, RecordingJobEvents
from app.jobs.records import JobRecord
from app.jobs.views import job_view
from app.metrics import AppMetrics, MeteredJobEvents, metered_providers
from app.models import JobStatus
from app.providers.base import Providers
from benchmarks.common import median, parser, print_table, write_json
from daygen_queue import VirtualClock

Loop = Callable[[int], Awaitable[None]]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _job(status: str) -> JobRecord:
    return JobRecord(
        id="7b0c3c0e-2d0b-4f7e-9f49-2a1c1d1f0e01",
        user_id="alice",
        type="image-generation",
        status=status,
        progress=100 if status == JobStatus.COMPLETED else 40,
        params={"prompt": "a red kite", "provider": "bfl", "model": "flux-1.1-pro"},
        result={"url": "http://127.0.0.1:3000/media/jobs/x/image.png"},
        error=None,
        attempts=1,
        cost=1,
        created_at=START,
        updated_at=START + timedelta(seconds=4),
        started_at=START + timedelta(seconds=1),
        completed_at=START + timedelta(seconds=4) if status == JobStatus.COMPLETED else None,
    )


class _Images:
    async def generate_image(self, **kwargs: Any) -> bytes:
        return b""


def _publish(events: Any, status: str) -> Loop:
    job = _job(status)
    update = JobUpdate(job.user_id, job_view(job), job)

    async def loop(n: int) -> None:
        for _ in range(n):
            await events.publish(update)
        if isinstance(events, RecordingJobEvents):
            events.updates.clear()
        elif isinstance(events, MeteredJobEvents):
            events.inner.updates.clear()  # type: ignore[attr-defined]

    return loop


def _provider(provider: Any) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await provider.generate_image(prompt="x", width=64, height=64, seed=None, model="m")

    return loop


def _filled_metrics() -> AppMetrics:
    metrics = AppMetrics()
    types = ["image-generation", "video-generation", "image-upscale", "batch-generation"]
    providers = ["bfl", "runway", "upscale", "local"]
    for job_type in types:
        for provider in providers:
            for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
                job = replace(_job(status), type=job_type, params={"provider": provider})
                metrics.job_finished(replace(job, completed_at=START + timedelta(seconds=9)))
            metrics.provider_call(provider, "generate_image", 0.2)
            metrics.provider_error(provider, Exception())
        for result in ("completed", "retryable", "failed", "in_progress", "already_finished"):
            metrics.delivery(job_type, result)
    for outcome in ("delivered", "retrying", "failed"):
        metrics.webhook_delivery(outcome)
    return metrics


def _scrape(metrics: AppMetrics) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            metrics.exposition()

    return loop


def _cases(n: int) -> list[tuple[str, Loop, Loop | None, int]]:
    bare_images = _Images()
    wrapped = metered_providers(Providers(image={"bfl": bare_images}), AppMetrics(), VirtualClock())
    metrics = AppMetrics()
    tee = MeteredJobEvents(RecordingJobEvents(), metrics, store=None)  # type: ignore[arg-type]
    return [
        (
            "publish PROCESSING (progress)",
            _publish(tee, JobStatus.PROCESSING),
            _publish(RecordingJobEvents(), JobStatus.PROCESSING),
            n,
        ),
        (
            "publish COMPLETED (counted)",
            _publish(tee, JobStatus.COMPLETED),
            _publish(RecordingJobEvents(), JobStatus.COMPLETED),
            n,
        ),
        ("provider call", _provider(wrapped.image["bfl"]), _provider(bare_images), n),
        ("scrape /metrics (all series)", _scrape(_filled_metrics()), None, max(1, n // 100)),
    ]


async def _time(loop: Loop, n: int, repeat: int) -> float:
    await loop(min(n, 100))  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await loop(n)
        times.append((time.perf_counter() - start) / n)
    return median(times)


async def run(n: int, repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, case, baseline, count in _cases(n):
        with_metrics = await _time(case, count, repeat) * 1e6
        row: dict[str, Any] = {"case": name, "us per op": with_metrics}
        if baseline is not None:
            bare = await _time(baseline, count, repeat) * 1e6
            row.update({"baseline us": bare, "added us": with_metrics - bare})
        rows.append(row)
    return rows


def main() -> None:
    args = parser(__doc__.splitlines()[0] if __doc__ else "metrics").parse_args()
    n = 2_000 if args.quick else 20_000
    repeat = 3 if args.quick else max(args.repeat, 5)
    rows = asyncio.run(run(n, repeat))
    print_table(f"Metrics overhead (median of {repeat}, {n} ops per repeat)", rows)
    write_json(args.json, {"benchmark": "metrics", "ops": n, "repeat": repeat, "results": rows})


if __name__ == "__main__":
    main()
