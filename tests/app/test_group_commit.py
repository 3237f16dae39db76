"""GroupCommit on its own: what waits during a commit goes in the next one, in arrival order,
and each item gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.jobs.group_commit import GroupCommit


class HeldCommit:
    """Records each group; the first commit waits until ``release()``."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    def release(self) -> None:
        self.gate.set()

    async def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        self.groups.append(list(items))
        self.started.set()
        if len(self.groups) == 1:
            await self.gate.wait()
        if any(item < 0 for item in items):
            raise RuntimeError("the database went away")
        return [item * 10 if item % 2 == 0 else ValueError(f"odd {item}") for item in items]


async def test_waiting_items_share_the_next_commits_in_arrival_order() -> None:
    commit = HeldCommit()
    group_commit = GroupCommit(commit, max_group=3)
    first = asyncio.create_task(group_commit.submit(0))
    await commit.started.wait()
    waiting = [asyncio.create_task(group_commit.submit(n)) for n in (1, 2, 3, 4)]
    commit.release()

    results = await asyncio.gather(first, *waiting, return_exceptions=True)

    assert commit.groups == [[0], [1, 2, 3], [4]]
    assert results[0] == 0 and results[2] == 20 and results[4] == 40
    assert [str(results[1]), str(results[3])] == ["odd 1", "odd 3"]


async def test_a_failed_commit_fails_its_group_only() -> None:
    commit = HeldCommit()
    group_commit = GroupCommit(commit, max_group=2)
    first = asyncio.create_task(group_commit.submit(2))
    await commit.started.wait()
    doomed = [asyncio.create_task(group_commit.submit(n)) for n in (-1, 4)]
    later = asyncio.create_task(group_commit.submit(6))
    commit.release()

    assert await first == 20
    for task in doomed:
        with pytest.raises(RuntimeError, match="went away"):
            await task
    assert await later == 60
    assert commit.groups == [[2], [-1, 4], [6]]
