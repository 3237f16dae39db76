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

JOBS = 40


@pytest.mark.parametrize("queue", ["in-process", "standalone"])
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_kill_9_mid_run_loses_nothing(tmp_path: Path, db: DbKind, queue: QueueMode) -> None:
    figures = await run_scenario(tmp_path, db=db, queue=queue, stop="kill", jobs=JOBS)
    assert figures.at_stop.get("PROCESSING", 0) > 0  # the kill did cut attempts short
    assert figures.exit_code == -9
    assert figures.problems == []
    assert figures.final == {"COMPLETED": 37, "FAILED": 4}  # 4 upscales of a missing image
