"""Long-running operations of the batch RPCs, kept for GetOperation.

A batch runs to its end before its RPC answers, so its operation is done at once and the
client's ``operation.result()`` needs no poll. ``pending_polls`` (``--operation-polls``)
makes the emulator report an operation as still RUNNING to its first answers (the batch's own
reply counts as one), as Cloud Tasks may while a batch is in progress: that exercises a
client's polling path. Operations are kept for ``retention`` (24 hours by default) on the
engine's clock; a ``request_id`` reused within that time returns the same operation and
creates or deletes nothing again.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from google.longrunning import operations_pb2

from emulator.clock import Clock
from emulator.errors import ENTITY_MISSING, InvalidArgument, NotFound

DEFAULT_RETENTION: Final = timedelta(hours=24)
OPERATION_NAME_RE: Final = re.compile(
    r"^projects/[A-Za-z0-9:.\-]+/locations/[A-Za-z0-9\-]+/operations/[A-Za-z0-9_\-]+$"
)


@dataclass(slots=True)
class _Kept:
    final: operations_pb2.Operation  # done, with its response or error
    running: operations_pb2.Operation  # what is answered while polls are pending
    polls_left: int
    expires: datetime
    request_key: tuple[str, str, str] | None


class OperationStore:
    def __init__(
        self, clock: Clock, *, retention: timedelta = DEFAULT_RETENTION, pending_polls: int = 0
    ) -> None:
        self._clock = clock
        self.retention = retention
        self.pending_polls = pending_polls
        self._kept: dict[str, _Kept] = {}
        self._order: deque[str] = deque()  # by creation: the retention is fixed
        self._by_request: dict[tuple[str, str, str], str] = {}

    @staticmethod
    def new_name(location: str) -> str:
        return f"{location}/operations/{uuid.uuid4().hex}"

    def _expire(self, now: datetime) -> None:
        while self._order and self._kept[self._order[0]].expires <= now:
            kept = self._kept.pop(self._order.popleft())
            if kept.request_key is not None:
                self._by_request.pop(kept.request_key, None)

    def replay(
        self, location: str, method: str, request_id: str
    ) -> operations_pb2.Operation | None:
        """The operation an earlier call with this ``request_id`` started, if it is kept."""
        if not request_id:
            return None
        self._expire(self._clock.now())
        name = self._by_request.get((location, method, request_id))
        return None if name is None else self._answer(self._kept[name])

    def keep(
        self,
        final: operations_pb2.Operation,
        running: operations_pb2.Operation,
        *,
        location: str,
        method: str,
        request_id: str,
    ) -> operations_pb2.Operation:
        """Keep a finished operation; returns the first answer to give for it."""
        now = self._clock.now()
        self._expire(now)
        key = (location, method, request_id) if request_id else None
        kept = _Kept(final, running, self.pending_polls, now + self.retention, key)
        self._kept[final.name] = kept
        self._order.append(final.name)
        if key is not None:
            self._by_request[key] = final.name
        return self._answer(kept)

    def get(self, name: str) -> operations_pb2.Operation:
        if OPERATION_NAME_RE.match(name) is None:
            raise InvalidArgument(
                f'Invalid resource field value in the request: "{name}" is not an operation '
                "name (projects/*/locations/*/operations/*)."
            )
        self._expire(self._clock.now())
        kept = self._kept.get(name)
        if kept is None:
            raise NotFound(ENTITY_MISSING)
        return self._answer(kept)

    @staticmethod
    def _answer(kept: _Kept) -> operations_pb2.Operation:
        answer = operations_pb2.Operation()
        if kept.polls_left > 0:
            kept.polls_left -= 1
            answer.CopyFrom(kept.running)
        else:
            answer.CopyFrom(kept.final)
        return answer
