"""``kill -9`` (and, separately, SIGTERM) of a real ``python -m app`` in the middle of its work,
then a restart: every job reaches its true final state within 60 s, credits balance, nothing
finished before the stop runs again, no job is charged twice. On SQLite and PostgreSQL, with
the in-process emulator (its journal beside the database, the default) and with
``python -m emulator --db``.

A smaller mix than ``benchmarks/crash_recovery.py`` (300 jobs) so the suite stays quick; the
harness and its checks are the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.harness import DbKind, QueueMode, run_scenario

pytestmark = pytest.mark.slow

JOBS = 20


@pytest.mark.parametrize("queue", ["in-process", "standalone"])
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_kill_9_mid_run_loses_nothing(tmp_path: Path, db: DbKind, queue: QueueMode) -> None:
    figures = await run_scenario(tmp_path, db=db, queue=queue, stop="kill", jobs=JOBS)
    assert figures.at_stop.get("PROCESSING", 0) > 0  # the kill did cut attempts short
    assert figures.exit_code == -9
    assert figures.problems == []
    # The source image, and every job but the upscales of a missing image (1 in 10).
    assert figures.final == {"COMPLETED": JOBS * 9 // 10 + 1, "FAILED": JOBS // 10}


async def test_sigterm_mid_run_exits_in_time_and_loses_nothing(tmp_path: Path) -> None:
    # Few deliveries at once and no grace: at SIGTERM some jobs are still queued, and those
    # running are handed back (503) rather than waited for.
    figures = await run_scenario(
        tmp_path,
        db="sqlite",
        queue="in-process",
        stop="term",
        jobs=JOBS,
        env={"SHUTDOWN_GRACE_SECONDS": "0", "QUEUE_MAX_CONCURRENT_DISPATCHES": "3"},
    )
    assert figures.at_stop.get("PENDING", 0) > 0
    assert figures.at_stop.get("PROCESSING", 0) > 0
    assert "deliveries still running: handed back to the queue" in figures.log
    assert figures.exit_code == 0
    assert figures.stop_seconds < 10  # Cloud Run's grace period
    assert figures.problems == []
    assert figures.final == {"COMPLETED": JOBS * 9 // 10 + 1, "FAILED": JOBS // 10}
