"""``daygen-queue``: set up and inspect queues on whichever Cloud Tasks is configured.

    daygen-queue apply queues.toml      # create or update every queue; prints what changed
    daygen-queue list                   # like `gcloud tasks queues list`
    daygen-queue describe NAME          # like `gcloud tasks queues describe`
    daygen-queue pause|resume|purge NAME
    daygen-queue tasks NAME             # like `gcloud tasks list --queue NAME`

The backend comes from ``--url``, else ``TASK_QUEUE_URL``, else ``cloudtasks://local-project/
local`` when ``CLOUD_TASKS_EMULATOR_HOST`` points at ``python -m emulator``, else
``cloudtasks://$GOOGLE_CLOUD_PROJECT/$GOOGLE_CLOUD_LOCATION`` (Google, with Application
Default Credentials). The in-process ``emulator:`` only lives as long as the command, so it is
never the implicit choice here. This replaces the seed's ``setup-cloud-tasks-queues.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TextIO

from daygen_queue.config import QueueConfig
from daygen_queue.errors import QueueError, QueueNotFound
from daygen_queue.factory import EMULATOR_HOST_VARIABLE, open_task_queue
from daygen_queue.interface import TaskQueue
from daygen_queue.models import Queue
from daygen_queue.queues_file import load_queue_configs

DEFAULT_EMULATOR_URL = "cloudtasks://local-project/local"


def resolve_url(explicit: str | None, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if env.get("TASK_QUEUE_URL"):
        return env["TASK_QUEUE_URL"]
    if env.get(EMULATOR_HOST_VARIABLE):
        return DEFAULT_EMULATOR_URL
    project = env.get("GOOGLE_CLOUD_PROJECT")
    if project:
        return f"cloudtasks://{project}/{env.get('GOOGLE_CLOUD_LOCATION', 'us-central1')}"
    raise SystemExit(
        "daygen-queue: no queue service configured: pass --url, or set TASK_QUEUE_URL, "
        f"{EMULATOR_HOST_VARIABLE} (python -m emulator) or GOOGLE_CLOUD_PROJECT"
    )


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"


def _shown(value: Any) -> str:
    return _seconds(value) if isinstance(value, timedelta) else str(value)


def _differences(current: QueueConfig, wanted: QueueConfig) -> list[str]:
    """``retry_config.max_attempts: 3 -> 5``...: the fields ``same_settings`` compares
    (``QueueConfig.settable``) that differ, for two configs of one queue: empty exactly
    when ``same_settings`` holds."""
    old, new = current.settable(), wanted.settable()
    changes = []
    for group, fields in new.items():
        if not isinstance(fields, dict):
            continue  # the name, equal by construction
        for field, after in fields.items():
            before = old[group][field]
            if before != after:
                changes.append(f"{group}.{field}: {_shown(before)} -> {_shown(after)}")
    return changes


async def apply(queue: TaskQueue, configs: list[QueueConfig], out: TextIO) -> dict[str, int]:
    """Create missing queues, update differing ones, leave matching ones alone."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for config in configs:
        try:
            current = await queue.get_queue(config.name)
        except QueueNotFound:
            await queue.create_queue(config)
            counts["created"] += 1
            print(f"created    {config.name}", file=out)
            continue
        changes = _differences(current.config, config)
        if not changes:
            counts["unchanged"] += 1
            print(f"unchanged  {config.name}", file=out)
            continue
        await queue.update_queue(config)
        counts["updated"] += 1
        print(f"updated    {config.name}: {'; '.join(changes)}", file=out)
    summary = ", ".join(f"{count} {what}" for what, count in counts.items())
    print(summary, file=out)
    return counts


def describe(queue: Queue, out: TextIO) -> None:
    rate, retry = queue.config.rate_limits, queue.config.retry_config
    lines = [
        f"name: {queue.name}",
        f"state: {queue.state.value}",
        "rateLimits:",
        f"  maxBurstSize: {rate.max_burst_size}",  # output only: the service's value
        f"  maxConcurrentDispatches: {rate.max_concurrent_dispatches}",
        f"  maxDispatchesPerSecond: {rate.max_dispatches_per_second:g}",
        "retryConfig:",
        f"  maxAttempts: {retry.max_attempts}",
        f"  maxBackoff: {_seconds(retry.max_backoff)}",
        f"  maxDoublings: {retry.max_doublings}",
        f"  maxRetryDuration: {_seconds(retry.max_retry_duration)}",
        f"  minBackoff: {_seconds(retry.min_backoff)}",
    ]
    if queue.purge_time is not None:
        lines.append(f"purgeTime: {queue.purge_time.isoformat()}")
    if queue.stats is not None:
        stats = queue.stats
        lines += [
            "stats:",
            f"  tasksCount: {stats.tasks_count}",
            f"  concurrentDispatchesCount: {stats.concurrent_dispatches_count}",
            f"  executedLastMinuteCount: {stats.executed_last_minute_count}",
        ]
        if stats.oldest_estimated_arrival_time is not None:
            lines.append(
                f"  oldestEstimatedArrivalTime: {stats.oldest_estimated_arrival_time.isoformat()}"
            )
    print("\n".join(lines), file=out)


async def run(args: argparse.Namespace, out: TextIO) -> int:
    backend = open_task_queue(resolve_url(args.url))
    try:
        if args.command == "apply":
            await apply(backend, load_queue_configs(args.file), out)
        elif args.command == "list":
            print(
                f"{'QUEUE_NAME':<40} {'STATE':<9} {'MAX_RATE (/sec)':>15} "
                f"{'MAX_CONCURRENT':>14} {'MAX_ATTEMPTS':>12}",
                file=out,
            )
            for queue in await backend.list_queues():
                rate, retry = queue.config.rate_limits, queue.config.retry_config
                print(
                    f"{queue.name:<40} {queue.state.value:<9} "
                    f"{rate.max_dispatches_per_second:>15g} "
                    f"{rate.max_concurrent_dispatches:>14} {retry.max_attempts:>12}",
                    file=out,
                )
        elif args.command == "describe":
            describe(await backend.get_queue(args.name), out)
        elif args.command in ("pause", "resume", "purge"):
            operation = getattr(backend, f"{args.command}_queue")
            changed: Queue = await operation(args.name)
            done = {"pause": "paused", "resume": "resumed", "purge": "purged"}[args.command]
            print(f"{done} {changed.name} (state {changed.state.value})", file=out)
        elif args.command == "tasks":
            print(
                f"{'TASK_NAME':<40} {'SCHEDULE_TIME':<32} {'DISPATCH_ATTEMPTS':>17} "
                f"{'RESPONSE_ATTEMPTS':>17} LAST_ATTEMPT_STATUS",
                file=out,
            )
            for task in await backend.list_tasks(args.name):
                last = task.last_attempt
                status = (
                    ""
                    if last is None or last.response_code is None
                    else (f"{last.response_code} {last.response_message}")
                )
                print(
                    f"{task.name:<40} {task.schedule_time.isoformat():<32} "
                    f"{task.dispatch_count:>17} {task.response_count:>17} {status}",
                    file=out,
                )
        return 0
    finally:
        await backend.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="daygen-queue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="emulator: | cloudtasks://PROJECT/LOCATION")
    commands = parser.add_subparsers(dest="command", required=True)
    apply_cmd = commands.add_parser("apply", help="create or update every queue of a TOML file")
    apply_cmd.add_argument("file")
    commands.add_parser("list", help="list queues")
    for name in ("describe", "pause", "resume", "purge", "tasks"):
        commands.add_parser(name, help=f"{name} a queue").add_argument("name")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    stream = out or sys.stdout
    try:
        return asyncio.run(run(args, stream))
    except QueueError as error:
        print(f"daygen-queue: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"daygen-queue: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
