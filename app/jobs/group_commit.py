"""``GroupCommit``: concurrent submissions committed together, each answered on its own.

SQLite has one writer, so one transaction per request would cap throughput at one commit's
latency. Instead, submissions that arrive while a commit is running wait for the next one, and
that commit takes all of them (up to ``max_group``) in arrival order. The commit function
returns one outcome per item, a result or an exception, so a group never decides for its
members: each is accepted or refused as if it had been alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Commit = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, commit: Commit[T, R], *, max_group: int) -> None:
        """``commit(items)`` runs one transaction for ``items`` and returns, for each item in
        order, its result or the exception its submitter gets. An exception raised by
        ``commit`` itself fails every item of the group."""
        self._commit = commit
        self._max_group = max_group
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Wait for the commit that includes ``item``; its result, or raises its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Commit waiting items, group after group, until none is left."""
        while self._pending:
            group = self._pending[: self._max_group]
            del self._pending[: self._max_group]
            try:
                outcomes = await self._commit([item for item, _ in group])
            except Exception as error:
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():  # its submitter was cancelled
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
