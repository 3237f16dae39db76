"""The in-process emulator keeps its queue journal beside the app's database by default: a
restarted process gets every task back, an attempt cut off in flight included, delivered as
the next attempt. Memory only when asked for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import emulator as emu
from app.settings import Settings
from daygen_queue import HttpRequest, NewTask, QueueConfig, VirtualClock, open_task_queue
from daygen_queue.backends.emulator import EmulatorBackend, JournalInUse

QUEUE = "image-generation-queue"


def settings(**values: str) -> Settings:
    return Settings(app_env="test", jwt_secret="s" * 40, internal_api_key="k", **values)


def test_the_journal_lives_beside_the_database_unless_memory_is_asked_for() -> None:
    on_file = settings(database_url="sqlite+aiosqlite:////srv/data/app.db")
    assert on_file.emulator_journal == "/srv/data/app-tasks.db"
    assert on_file.task_queue_url == "emulator:?db=/srv/data/app-tasks.db"
    postgres = settings(database_url="postgresql+asyncpg://u@db/jobs")
    assert postgres.emulator_journal == "./var/daygen-tasks.db"
    assert settings(database_url="sqlite+aiosqlite://").task_queue_url == "emulator:"
    assert settings(emulator_db="memory").task_queue_url == "emulator:"
    assert settings(emulator_db="/tmp/q.db").task_queue_url == "emulator:?db=/tmp/q.db"
    assert settings(queue_backend="cloud-tasks").task_queue_url.startswith("cloudtasks://")


def test_an_emulator_url_with_a_db_opens_a_journaled_backend(tmp_path: Path) -> None:
    queue = open_task_queue(f"emulator:?db={tmp_path / 'q.db'}")
    assert isinstance(queue, EmulatorBackend) and queue.journal_lock is not None
    with pytest.raises(ValueError, match="db=PATH"):
        open_task_queue("emulator:?store=x")


def task(name: str) -> NewTask:
    return NewTask(name=name, http_request=HttpRequest(url="http://127.0.0.1:9/t", body=b"{}"))


async def test_a_restarted_process_gets_every_task_back(tmp_path: Path) -> None:
    journal = tmp_path / "tasks.db"
    received: list[tuple[str, str]] = []
    entered = asyncio.Event()

    async def hangs(request: emu.DispatchRequest) -> int:
        entered.set()
        await asyncio.Event().wait()  # the process dies before it answers
        return 200

    first = EmulatorBackend(
        clock=VirtualClock(), dispatcher=emu.CallableDispatcher(hangs), db=journal
    )
    await first.ensure_queue(QueueConfig(name=QUEUE))
    await first.create_task(QUEUE, task("in-flight"))
    await first.create_task(QUEUE, task("waiting"))  # virtual time: nothing runs by itself
    await first.run_task(QUEUE, "in-flight")
    await entered.wait()
    # A second process on the same journal is refused while the first lives.
    with pytest.raises(JournalInUse, match="EMULATOR_DB"):
        EmulatorBackend(db=journal)

    # The first process dies: its journal is as the last flush left it, its lock is gone.
    await first.engine._store.flush()
    assert first.journal_lock is not None
    first.journal_lock.release()

    async def answers(request: emu.DispatchRequest) -> int:
        headers = request.headers
        received.append((headers["X-CloudTasks-TaskName"], headers["X-CloudTasks-TaskRetryCount"]))
        return 200

    second = EmulatorBackend(
        clock=VirtualClock(), dispatcher=emu.CallableDispatcher(answers), db=journal
    )
    try:
        names = sorted(t.name.rsplit("/", 1)[-1] for t in await second.list_tasks(QUEUE))
        assert names == ["in-flight", "waiting"]
        await second.run_until_idle()
        # The attempt cut off in flight counted as one: its task comes back as retry 1.
        assert sorted(received) == [("in-flight", "1"), ("waiting", "0")]
        assert await second.list_tasks(QUEUE) == []
    finally:
        await second.close()
        for delivery in list(first.engine.deliveries):
            delivery.cancel()
