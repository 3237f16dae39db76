"""What a crash costs: ``kill -9`` (and SIGTERM) of a real ``python -m app`` in the middle of
300 mixed jobs, then a restart; how long until every job is final, and whether every promise
held (true final states, credits, nothing redone, nothing charged twice).

    .venv/bin/python -m benchmarks.crash_recovery [--quick] [--json PATH]

The same harness as ``tests/crash`` (``tests/crash/harness.py``), at full size: each mode
(SQLite / PostgreSQL, in-process emulator with its default journal / ``python -m emulator
--db``), a SIGTERM with 100 jobs unfinished (Cloud Run's way of stopping, default grace),
and for comparison the in-process emulator kept in memory only (``EMULATOR_DB=memory``),
whose jobs cut short wait for their dispatch deadline (10 min and more), so that run reports
how many are still unfinished after the 60 s limit.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import parser, print_table, write_json
from tests.crash.harness import DbKind, QueueMode, Stop, run_scenario

JOBS = 300
RUNNING_AT_SIGTERM = 100
RATE = 20
"""Dispatches per second of each queue: slow enough that the stop finds the mix mid-way."""


async def main() -> int:
    args = parser(__doc__ or "").parse_args()
    jobs = 60 if args.quick else JOBS
    running = 20 if args.quick else RUNNING_AT_SIGTERM
    plans: list[tuple[DbKind, QueueMode, Stop, dict[str, Any]]] = [
        ("sqlite", "in-process", "kill", {}),
        ("postgres", "in-process", "kill", {}),
        ("sqlite", "standalone", "kill", {}),
        ("postgres", "standalone", "kill", {}),
        ("sqlite", "in-process", "term", {"busy_fraction": 0.0, "busy_unfinished": running}),
        ("postgres", "in-process", "term", {"busy_fraction": 0.0, "busy_unfinished": running}),
        ("sqlite", "in-process", "kill", {"env": {"EMULATOR_DB": "memory"}}),
    ]
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for db, queue, stop, options in plans:
        label = "in-process, memory only" if "env" in options else queue
        with tempfile.TemporaryDirectory() as folder:
            figures = await run_scenario(
                Path(folder), db=db, queue=queue, stop=stop, jobs=jobs, rate=RATE, **options
            )
        row = {**figures.row(), "queue": label}
        rows.append(row)
        details.append({**row, "problems": figures.problems[:20]})
        print(f"{db} {label} {stop}: {figures.row()}", flush=True)
    print_table(f"Stop and restart mid-run ({jobs} jobs + 1 source image)", rows)
    for detail in details:
        if detail["problems"]:
            print(f"\n{detail['db']} {detail['queue']} {detail['stop']}: first problems")
            for problem in detail["problems"][:5]:
                print("  " + problem)
    write_json(args.json, {"jobs": jobs, "runs": details})
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
