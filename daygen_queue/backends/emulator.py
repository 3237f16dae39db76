"""``EmulatorBackend``: ``CloudTasksQueue`` over the emulator's Cloud Tasks service, in process.

``InProcessRpc`` is to ``CloudTasksQueue`` what httpx's ``MockTransport`` is to its client: a
complete, documented transport that needs no network service, not a test double. It hands the
client's protobuf requests to ``emulator.service.CloudTasksService`` (the very object the
emulator's gRPC and REST faces call), so requests are validated, converted and refused exactly
as over the wire. Deliveries are real (HTTP by default, with real bodies and headers); on a
``VirtualClock`` time only moves through ``run_until_idle()`` and ``advance()``.

This module (with ``daygen_queue.queues_file``) is the only place ``daygen_queue`` imports
``emulator``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from google.api_core import exceptions as google_errors

import emulator as emu
from daygen_queue.client import CloudTasksQueue
from daygen_queue.clock import Clock
from daygen_queue.rpc import unpack_details
from emulator.errors import rpc_status_of
from emulator.service import CloudTasksService

DEFAULT_PROJECT = "local-project"
DEFAULT_LOCATION = "local"


def api_error(error: emu.EmulatorError) -> google_errors.GoogleAPICallError:
    """The emulator's refusal as the api_core exception Google's gRPC client would raise for
    it: the same class, message and unpacked details (``ResourceInfo``...)."""
    status = rpc_status_of(error)
    translated: google_errors.GoogleAPICallError = google_errors.from_grpc_status(  # type: ignore[no-untyped-call]
        status.code, status.message, details=unpack_details(status.details)
    )
    return translated


class InProcessRpc:
    """``CloudTasksRpc`` on an in-process ``emulator.Engine``. Starts the engine on first
    use (inside the running loop) and closes it on ``close()``."""

    def __init__(
        self,
        engine: emu.Engine,
        *,
        default_location: str = DEFAULT_LOCATION,
        pending_operation_polls: int = 0,
    ) -> None:
        self.engine = engine
        self.service = CloudTasksService(
            engine,
            default_location=default_location,
            pending_operation_polls=pending_operation_polls,
        )
        self._started = False

    async def _call(self, method: Callable[[Any], Awaitable[Any]], request: Any) -> Any:
        if not self._started:  # the engine's start() is idempotent; this skips its await
            await self.engine.start()
            self._started = True
        try:
            return await method(request)
        except emu.EmulatorError as error:
            raise api_error(error) from None

    async def list_queues(self, request: Any) -> Any:
        return await self._call(self.service.list_queues, request)

    async def get_queue(self, request: Any) -> Any:
        return await self._call(self.service.get_queue, request)

    async def get_queue_v2beta3(self, request: Any) -> Any:
        return await self._call(self.service.get_queue_v2beta3, request)

    async def create_queue(self, request: Any) -> Any:
        return await self._call(self.service.create_queue, request)

    async def update_queue(self, request: Any) -> Any:
        return await self._call(self.service.update_queue, request)

    async def delete_queue(self, request: Any) -> Any:
        return await self._call(self.service.delete_queue, request)

    async def purge_queue(self, request: Any) -> Any:
        return await self._call(self.service.purge_queue, request)

    async def pause_queue(self, request: Any) -> Any:
        return await self._call(self.service.pause_queue, request)

    async def resume_queue(self, request: Any) -> Any:
        return await self._call(self.service.resume_queue, request)

    async def list_tasks(self, request: Any) -> Any:
        return await self._call(self.service.list_tasks, request)

    async def get_task(self, request: Any) -> Any:
        return await self._call(self.service.get_task, request)

    async def create_task(self, request: Any) -> Any:
        # ``_call`` written out: the hot path (every job) saves a coroutine per task.
        if not self._started:
            await self.engine.start()
            self._started = True
        try:
            return await self.service.create_task(request)
        except emu.EmulatorError as error:
            raise api_error(error) from None

    async def batch_create_tasks(self, request: Any) -> Any:
        return await self._call(self.service.batch_create_tasks, request)

    async def get_operation(self, request: Any) -> Any:
        return await self._call(self.service.get_operation, request)

    async def delete_task(self, request: Any) -> Any:
        return await self._call(self.service.delete_task, request)

    async def run_task(self, request: Any) -> Any:
        return await self._call(self.service.run_task, request)

    async def close(self) -> None:
        await self.engine.close()


class JournalInUse(RuntimeError):
    """Another process already runs an emulator on this journal file."""


class JournalLock:
    """An exclusive lock on ``PATH.lock`` while an engine journals to ``PATH``: two engines on
    one journal would each dispatch the other's tasks, so the second one is refused."""

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalInUse(
                f"the queue journal {self.path.with_suffix('')} is in use by another process "
                "(give each instance its own EMULATOR_DB, or EMULATOR_DB=memory)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


class EmulatorBackend(CloudTasksQueue):
    """A ``TaskQueue`` backed by an in-process ``emulator.Engine``.

    Testing surface, on this backend only (like dramatiq's stub broker): ``run_until_idle()``,
    ``advance()``, ``events`` (every state change, with its clock time), ``clock`` and
    ``engine``. ``engine_options`` go to ``emulator.Engine`` (``event_history=``...);
    ``pending_operation_polls`` makes batch operations answer "not done" that many times
    first (what exercises ``create_tasks``' polling).

    ``db=PATH`` journals queues and tasks to that SQLite file (``emulator.sqlite_store``, the
    store of ``python -m emulator --db``): a restarted process loads them and dispatches
    again every task, those cut off in flight included. Without it (and without ``store``)
    nothing outlives the process. One process at a time may use a journal (``JournalInUse``).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        dispatcher: emu.Dispatcher | None = None,
        store: emu.Store | None = None,
        project: str = DEFAULT_PROJECT,
        location: str = DEFAULT_LOCATION,
        engine: emu.Engine | None = None,
        pending_operation_polls: int = 0,
        db: str | Path | None = None,
        **engine_options: Any,
    ) -> None:
        self.journal_lock: JournalLock | None = None
        if db is not None:
            if store is not None or engine is not None:
                raise ValueError("db= makes the store: pass db, store or engine, not several")
            from emulator.sqlite_store import SqliteStore

            self.journal_lock = JournalLock(Path(db))
            self.journal_lock.acquire()
            store = SqliteStore(db)
        self.engine = engine or emu.Engine(
            clock=clock, dispatcher=dispatcher, store=store, **engine_options
        )
        super().__init__(
            InProcessRpc(
                self.engine,
                default_location=location,
                pending_operation_polls=pending_operation_polls,
            ),
            project=project,
            location=location,
        )

    @property
    def events(self) -> emu.EventStream:
        return self.engine.events

    @property
    def clock(self) -> emu.Clock:
        return self.engine.clock

    async def start(self) -> None:
        """Load what the store kept and, on a real clock, start dispatching (also done by
        the first call)."""
        await self.engine.start()

    async def stop_dispatching(self) -> None:
        """Start no new delivery (the app is stopping); those in flight finish. What is left
        stays in the journal, if there is one, for the next start."""
        await self.engine.stop_dispatching()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self.journal_lock is not None:
                self.journal_lock.release()

    async def run_until_idle(self) -> None:
        await self.engine.start()
        await self.engine.run_until_idle()

    async def advance(self, delta: timedelta) -> None:
        await self.engine.start()
        await self.engine.advance(delta)

    async def __aenter__(self) -> Self:
        await self.engine.start()
        return self
