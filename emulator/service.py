"""The Cloud Tasks v2 service over the engine, in protobuf terms: one method per RPC, taking
and returning raw protobuf messages and raising ``EmulatorError``.

The gRPC server and the REST gateway both call this, so the two wire formats cannot drift
apart: they differ only in how a message and an error travel.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from google.cloud import tasks_v2
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, field_mask_pb2

from emulator import conversions as conv
from emulator import rules
from emulator.engine import Engine
from emulator.errors import Aborted, InvalidArgument, NotFound
from emulator.model import QueueRecord, QueueState, RateLimits, RetryConfig
from emulator.validation import split_queue_name, validate_parent

ListQueuesResponsePb: Final[Any] = tasks_v2.ListQueuesResponse.pb()
ListTasksResponsePb: Final[Any] = tasks_v2.ListTasksResponse.pb()

_PROJECT_RE = re.compile(r"^projects/[A-Za-z0-9:.\-]+$")
_LOCATION_RE = re.compile(
    r"^projects/(?P<project>[A-Za-z0-9:.\-]+)/locations/(?P<location>[A-Za-z0-9\-]+)$"
)
_FILTER_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z_.]+)\s*(?P<op>!=|=|:)\s*(?P<value>.+?)\s*$")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
# A filter's state, by name or number.
_FILTER_STATES: Final[dict[str, str]] = {state.name: state.name for state in QueueState} | {
    str(state.value): state.name for state in QueueState
}

# UpdateQueue paths the engine applies. The other Queue fields are accepted and ignored:
# output only (state, purge_time, rate_limits.max_burst_size) or not modelled (App Engine
# routing, the queue-level HTTP target, logging). A whole group is replaced, as a path to a
# message field means.
SETTABLE_QUEUE_PATHS: Final = frozenset(
    {
        "rate_limits",
        "rate_limits.max_dispatches_per_second",
        "rate_limits.max_concurrent_dispatches",
        "retry_config",
        "retry_config.max_attempts",
        "retry_config.max_retry_duration",
        "retry_config.min_backoff",
        "retry_config.max_backoff",
        "retry_config.max_doublings",
    }
)
# An empty update_mask means every field.
_EVERY_FIELD: Final = ("rate_limits", "retry_config")


@dataclass(frozen=True, slots=True)
class _Clause:
    field: str
    op: str
    value: str

    def matches(self, record: QueueRecord) -> bool:
        if self.field == "state":
            equal = record.state.name == _FILTER_STATES[self.value.upper()]
        else:  # name
            equal = self.value in record.name if self.op == ":" else record.name == self.value
        return not equal if self.op == "!=" else equal


def parse_queue_filter(text: str) -> Callable[[QueueRecord], bool]:
    """ListQueues' filter, the subset that makes sense for a local queue set:
    ``state: PAUSED``, ``state = RUNNING``, ``state != PAUSED``, ``name: image`` (substring),
    joined with AND. Anything else is INVALID_ARGUMENT rather than silently ignored."""
    if not text.strip():
        return lambda record: True
    clauses: list[_Clause] = []
    for part in _AND.split(text.strip()):
        match = _FILTER_CLAUSE.match(part)
        if match is None or match["field"] not in ("state", "name"):
            raise InvalidArgument(f"Invalid filter: {text!r}. Supported: state and name.")
        value = match["value"].strip("\"'")
        if match["field"] == "state" and value.upper() not in _FILTER_STATES:
            raise InvalidArgument(f"Invalid filter: unknown queue state {value!r}.")
        clauses.append(_Clause(match["field"], match["op"], value))
    return lambda record: all(clause.matches(record) for clause in clauses)


def encode_page_token(scope: str, after: str) -> str:
    """Opaque token: the filter it belongs to and the last name returned (names are sorted,
    so paging is stable under concurrent inserts and deletes)."""
    raw = f"{scope}\x00{after}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, scope: str) -> str:
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("Invalid page token.") from None
    token_scope, sep, after = raw.partition("\x00")
    if not sep:
        raise InvalidArgument("Invalid page token.")
    if token_scope != scope:
        raise InvalidArgument("The filter must not change between pages of a list request.")
    return after


def page_size(requested: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative.")
    return maximum if requested == 0 else min(requested, maximum)


class CloudTasksService:
    """``google.cloud.tasks.v2.CloudTasks`` plus the Locations mixin, on an engine.

    ``default_location`` is always listed by ListLocations (Cloud Tasks accepts any location;
    the emulator reports the configured one plus every location that holds a queue).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        default_location: str = "local",
        task_tombstone_ttl: timedelta = rules.DEFAULT_TASK_TOMBSTONE_TTL,
    ) -> None:
        self.engine = engine
        self.task_tombstone_ttl = task_tombstone_ttl
        self.default_location = default_location
        self._policies: dict[str, Any] = {}
        # Locations named by requests; the engine's list is per parent, so ListLocations
        # reports these plus the default (Cloud Tasks accepts any location id).
        self._seen_locations: dict[str, set[str]] = {}
        self._seen_parents: set[str] = set()

    def known_parents(self) -> list[str]:
        """``projects/P/locations/L`` of every location a request named, plus the default
        location of every project seen (what the dashboard lists)."""
        parents = set()
        for project, locations in self._seen_locations.items():
            for location in {*locations, self.default_location}:
                parents.add(f"projects/{project}/locations/{location}")
        return sorted(parents)

    def note_parent(self, parent: str) -> None:
        """Remember a location a request named (cheap when already known: every CreateTask
        calls this)."""
        if parent in self._seen_parents:
            return
        match = _LOCATION_RE.match(parent)
        if match is not None:
            self._seen_parents.add(parent)
            self._seen_locations.setdefault(match["project"], set()).add(match["location"])

    # ------------------------------------------------------------------ queues

    async def list_queues(self, request: Any) -> Any:
        validate_parent(request.parent)
        self.note_parent(request.parent)
        keep = parse_queue_filter(request.filter)
        size = page_size(request.page_size, rules.MAX_LIST_QUEUES_PAGE)
        after = decode_page_token(request.page_token, "q:" + request.filter)
        records = self.engine.list_queues(request.parent)  # sorted by name
        start = bisect.bisect_right([r.name for r in records], after) if after else 0
        response = ListQueuesResponsePb()
        last = ""
        index = start
        while index < len(records) and len(response.queues) < size:
            record = records[index]
            index += 1
            if keep(record):
                response.queues.append(conv.queue_to_pb(record))
                last = record.name
        if index < len(records) and last:
            response.next_page_token = encode_page_token("q:" + request.filter, last)
        return response

    async def get_queue(self, request: Any) -> Any:
        return conv.queue_to_pb(self.engine.get_queue(request.name))

    async def get_queue_v2beta3(self, request: Any) -> Any:
        """v2beta3 GetQueue: the only way to read queue stats (``read_mask`` with ``stats``
        or ``*``; without a mask every field but stats, as documented)."""
        paths = set(request.read_mask.paths)
        record = self.engine.get_queue(request.name)
        stats = self.engine.queue_stats(request.name) if paths & {"stats", "*"} else None
        return conv.queue_to_v2beta3_pb(
            record,
            stats,
            task_ttl=timedelta(days=31),
            tombstone_ttl=self.task_tombstone_ttl,
        )

    async def create_queue(self, request: Any) -> Any:
        validate_parent(request.parent)
        spec = conv.queue_spec_from_pb(request.queue)
        split_queue_name(spec.name)
        if not spec.name.startswith(request.parent + "/queues/"):
            raise InvalidArgument(
                f"The queue name ('{spec.name}') must be in the parent ('{request.parent}')."
            )
        record = await self.engine.create_queue(spec)
        self.note_parent(request.parent)
        return conv.queue_to_pb(record)

    async def update_queue(self, request: Any) -> Any:
        """An upsert: the masked fields of ``request.queue`` over the current queue, or over
        a queue with every default when there is none; an empty mask means every field."""
        name = request.queue.name
        split_queue_name(name)
        mask = request.update_mask
        if not mask.IsValidForDescriptor(conv.QueuePb.DESCRIPTOR):
            wrong = [path for path in mask.paths if not _names_a_queue_field(path)] or mask.paths
            raise InvalidArgument(f"Invalid update_mask path {wrong[0]!r}: not a Queue field.")
        paths = [path for path in mask.paths if path in SETTABLE_QUEUE_PATHS]
        settable = field_mask_pb2.FieldMask(paths=paths if mask.paths else _EVERY_FIELD)
        self.note_parent(name.rsplit("/queues/", 1)[0])
        try:
            current = conv.queue_to_pb(self.engine.get_queue(name))
        except NotFound:
            current = conv.queue_to_pb(QueueRecord(name, RateLimits(), RetryConfig()))
        settable.MergeMessage(
            _with_masked_groups(request.queue, settable.paths),
            current,
            replace_message_field=True,
        )
        return conv.queue_to_pb(await self.engine.update_queue(conv.queue_spec_from_pb(current)))

    async def delete_queue(self, request: Any) -> Any:
        await self.engine.delete_queue(request.name)
        self._policies.pop(request.name, None)
        return empty_pb2.Empty()

    async def purge_queue(self, request: Any) -> Any:
        return conv.queue_to_pb(await self.engine.purge_queue(request.name))

    async def pause_queue(self, request: Any) -> Any:
        return conv.queue_to_pb(await self.engine.pause_queue(request.name))

    async def resume_queue(self, request: Any) -> Any:
        return conv.queue_to_pb(await self.engine.resume_queue(request.name))

    # ------------------------------------------------------------------ IAM (in memory)

    def _require_queue(self, resource: str) -> None:
        self.engine.get_queue(resource)

    async def get_iam_policy(self, request: Any) -> Any:
        self._require_queue(request.resource)
        stored = self._policies.get(request.resource)
        policy = policy_pb2.Policy()
        if stored is not None:
            policy.CopyFrom(stored)
        return policy

    async def set_iam_policy(self, request: Any) -> Any:
        """Replaces the policy (Cloud Tasks' semantics); the etag changes on every write."""
        self._require_queue(request.resource)
        current = self._policies.get(request.resource)
        if request.policy.etag and current is not None and request.policy.etag != current.etag:
            raise Aborted("The policy was changed concurrently (etag mismatch).")
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        previous = int.from_bytes(current.etag, "big") if current is not None else 0
        policy.etag = (previous + 1).to_bytes(8, "big")
        self._policies[request.resource] = policy
        return policy

    async def test_iam_permissions(self, request: Any) -> Any:
        """Everything is allowed locally; a missing resource answers an empty set (not
        NOT_FOUND), as the API documents."""
        response = iam_policy_pb2.TestIamPermissionsResponse()
        try:
            self._require_queue(request.resource)
        except (NotFound, InvalidArgument):
            return response
        response.permissions.extend(request.permissions)
        return response

    # ------------------------------------------------------------------ tasks

    async def list_tasks(self, request: Any) -> Any:
        size = page_size(request.page_size, rules.MAX_LIST_TASKS_PAGE)
        after = decode_page_token(request.page_token, "t:")
        records = sorted(self.engine.list_tasks(request.parent), key=_task_name)
        start = bisect.bisect_right(records, after, key=_task_name) if after else 0
        chunk = records[start : start + size]
        view = request.response_view
        response = ListTasksResponsePb()
        response.tasks.extend([conv.task_to_pb(record, view) for record in chunk])
        if start + size < len(records) and chunk:
            response.next_page_token = encode_page_token("t:", chunk[-1].name)
        return response

    async def get_task(self, request: Any) -> Any:
        return conv.task_to_pb(self.engine.get_task(request.name), request.response_view)

    async def create_task(self, request: Any) -> Any:
        self.note_parent(request.parent.rsplit("/queues/", 1)[0])
        spec = conv.new_task_from_pb(request.task)
        record = await self.engine.create_task(request.parent, spec)
        return conv.created_task_to_pb(request.task, record, request.response_view)

    async def delete_task(self, request: Any) -> Any:
        await self.engine.delete_task(request.name)
        return empty_pb2.Empty()

    async def run_task(self, request: Any) -> Any:
        return conv.task_to_pb(await self.engine.run_task(request.name), request.response_view)

    # ------------------------------------------------------------------ locations mixin

    def _locations(self, project: str) -> list[str]:
        return sorted({self.default_location, *self._seen_locations.get(project, ())})

    async def list_locations(self, request: Any) -> Any:
        if _PROJECT_RE.match(request.name) is None:
            raise InvalidArgument(f'Invalid resource name "{request.name}": expected projects/*.')
        project = request.name.split("/", 1)[1]
        response = locations_pb2.ListLocationsResponse()
        for location in self._locations(project):
            response.locations.append(_location(project, location))
        return response

    async def get_location(self, request: Any) -> Any:
        match = _LOCATION_RE.match(request.name)
        if match is None:
            raise InvalidArgument(
                f'Invalid resource name "{request.name}": expected projects/*/locations/*.'
            )
        return _location(match["project"], match["location"])


def _names_a_queue_field(path: str) -> bool:
    one = field_mask_pb2.FieldMask(paths=[path])
    return bool(one.IsValidForDescriptor(conv.QueuePb.DESCRIPTOR))


def _with_masked_groups(queue: Any, paths: Iterable[str]) -> Any:
    """``queue``, with every group a masked sub-path reaches into present.

    protobuf's Python ``MergeMessage`` skips ``retry_config.max_attempts`` when the source has
    no ``retry_config``; its C++ implementation, which Google's servers use, merges from the
    group's defaults instead: the field becomes zero, which UpdateQueue reads as "the server
    default". Presenting the group makes the two agree.
    """
    groups = {path.split(".", 1)[0] for path in paths if "." in path}
    missing = [group for group in groups if not queue.HasField(group)]
    if not missing:
        return queue
    source = conv.QueuePb()
    source.CopyFrom(queue)
    for group in missing:
        getattr(source, group).SetInParent()
    return source


def _task_name(record: Any) -> str:
    name: str = record.name
    return name


def _location(project: str, location: str) -> locations_pb2.Location:
    return locations_pb2.Location(
        name=f"projects/{project}/locations/{location}",
        location_id=location,
        display_name=location,
    )


__all__ = [
    "CloudTasksService",
    "decode_page_token",
    "encode_page_token",
    "parse_queue_filter",
]
