"""The database handle: run a function in a transaction, the cheapest way for each database.

Store operations are plain synchronous functions of a SQLAlchemy ``Connection`` (one
transaction each). ``Database.write(fn)`` / ``read(fn)`` run them:

- PostgreSQL (asyncpg): on the async engine via ``run_sync``, statements awaited underneath.
- SQLite: a local library call, so the whole transaction runs in one worker thread: one thread
  hop per transaction instead of three or four per statement (the cost of driving SQLite
  through an async adapter, each hop waiting for a turn of a busy event loop). Writes go
  through a single writer thread and start with ``BEGIN IMMEDIATE`` (SQLite has one writer; a
  deferred transaction that reads then writes can fail with SQLITE_BUSY instead of waiting),
  reads through a few reader threads (WAL: readers never block the writer). ``busy_timeout``
  covers other processes on the same file. Checkpoints (copying the WAL back into the
  database file, with an fsync that can take long on a slow disk) run in a thread of their
  own every second instead of inside whichever commit crosses the WAL size limit, so a
  checkpoint never stalls the writer.

``DATABASE_URL`` may name either driver (``sqlite+aiosqlite://`` is the documented form).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger("app.db")

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_READERS = 4
SQLITE_CHECKPOINT_SECONDS = 1.0

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Connection, P], T]


class Database:
    """Owns the engine(s). ``write(fn, ...)`` for anything that changes rows, ``read``
    otherwise; ``fn(connection, ...)`` runs inside one transaction, committed on return."""

    def __init__(self, url: URL, *, echo: bool = False, schema: str | None = None) -> None:
        self.url = url
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.async_engine: AsyncEngine | None = None
        self.sync_engine: Engine | None = None
        if self.is_sqlite:
            self.sync_engine = _sqlite_engine(url, echo=echo)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="sqlite-reader")
            self._checkpoints = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
            self._checkpointer: asyncio.Task[None] | None = None
        else:
            options: dict[str, Any] = {
                "echo": echo,
                "pool_size": 10,
                "max_overflow": 20,
                "pool_pre_ping": True,
            }
            if schema is not None:
                options["connect_args"] = {"server_settings": {"search_path": schema}}
            self.async_engine = create_async_engine(url, **options)

    async def write(self, fn: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.sync_engine is not None:
            if self._checkpointer is None:
                self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint())
            call = functools.partial(
                _in_transaction, self.sync_engine, "IMMEDIATE", fn, *args, **kwargs
            )
            return await asyncio.get_running_loop().run_in_executor(self._writer, call)
        assert self.async_engine is not None
        async with self.async_engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def read(self, fn: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.sync_engine is not None:
            call = functools.partial(
                _in_transaction, self.sync_engine, "DEFERRED", fn, *args, **kwargs
            )
            return await asyncio.get_running_loop().run_in_executor(self._readers, call)
        assert self.async_engine is not None
        async with self.async_engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file now and then, off the writer's path."""
        assert self.sync_engine is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SQLITE_CHECKPOINT_SECONDS)
            try:
                await loop.run_in_executor(self._checkpoints, _checkpoint, self.sync_engine)
            except Exception:
                log.exception("SQLite checkpoint failed; will try again")

    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    async def close(self) -> None:
        if self.sync_engine is not None:
            if self._checkpointer is not None:
                self._checkpointer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._checkpointer
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._writer, self.sync_engine.dispose)
            self._writer.shutdown(wait=False)
            self._readers.shutdown(wait=False)
            self._checkpoints.shutdown(wait=False)
        if self.async_engine is not None:
            await self.async_engine.dispose()


def _in_transaction(
    engine: Engine, begin: str, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin=begin)
        with conn.begin():
            return fn(conn, *args, **kwargs)


def _checkpoint(engine: Engine) -> None:
    # On the raw connection: outside any transaction (a reader's snapshot would pin frames).
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cursor.close()
    finally:
        connection.close()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is switched off: ``_sqlite_begin`` emits it, choosing
    # IMMEDIATE for write transactions (SQLAlchemy's recipe for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # see Database._checkpoint
    cursor.execute("PRAGMA journal_size_limit=67108864")  # WAL file kept <= 64 MiB when reset
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        echo=echo,
        pool_size=SQLITE_READERS + 2,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_database(url: str, *, echo: bool = False, schema: str | None = None) -> Database:
    """SQLite (WAL, busy timeout; its folder created) or PostgreSQL (asyncpg).

    ``schema`` puts every table in that PostgreSQL schema via ``search_path`` (tests use one
    schema per test so that runs never see each other's rows).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() != "asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("DATABASE_URL: in-memory SQLite is not supported, name a file")
    elif backend not in ("sqlite", "postgresql"):
        raise ValueError(f"DATABASE_URL must be SQLite or PostgreSQL, got {backend!r}")
    return Database(parsed, echo=echo, schema=schema)
