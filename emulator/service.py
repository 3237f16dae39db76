"""The Cloud Tasks service (v2 and v2beta3) over the engine, in protobuf terms: one method per
RPC, taking and returning raw protobuf messages and raising ``EmulatorError``.

The gRPC server, the REST gateway and the in-process transport all call this, so the wire
formats cannot drift apart: they differ only in how a message and an error travel. Each
method takes ``api`` (``emulator.apis.V2`` by default, or ``V2BETA3``): the same behaviour,
answered in that version's messages. The batch RPCs, operations, CMEK and IAM live in modules
of their own; this class ties them to the engine.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Final

from google.cloud.location import locations_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, field_mask_pb2

from emulator import conversions as conv
from emulator import queue_pb, queue_updates, rules
from emulator.apis import V2, V2BETA3, Api
from emulator.batch import Batches
from emulator.cmek import CmekConfigs
from emulator.engine import Engine
from emulator.errors import FailedPrecondition, InvalidArgument, NotFound
from emulator.iam import IamPolicies
from emulator.listing import decode_page_token, encode_page_token, page_size, parse_queue_filter
from emulator.model import AppEngineRouting, HttpTarget, NewTaskSpec, QueueRecord, TaskRecord
from emulator.operations import DEFAULT_RETENTION, OperationStore
from emulator.targets import effective_routing
from emulator.validation import split_queue_name, validate_parent

_PROJECT_RE = re.compile(r"^projects/[A-Za-z0-9:.\-]+$")
_LOCATION_RE = re.compile(
    r"^projects/(?P<project>[A-Za-z0-9:.\-]+)/locations/(?P<location>[A-Za-z0-9\-]+)$"
)
MAX_BETA_BURST_SIZE: Final = 500
BUFFER_NEEDS_TARGET: Final = (
    "The queue must have an HTTP target with a host (Queue.httpTarget.uriOverride.host) to "
    "buffer tasks."
)
# How many queue names CreateTask remembers as noted (beyond that it parses each parent).
_NOTED_QUEUES_KEPT: Final = 10_000
# The Content-Type a buffered task gets when the buffering request has none.
BUFFER_CONTENT_TYPE: Final = "application/json"


class CloudTasksService:
    """``google.cloud.tasks.{v2,v2beta3}.CloudTasks`` plus the Locations and Operations
    mixins, on an engine.

    ``default_location`` is always listed by ListLocations (Cloud Tasks accepts any location;
    the emulator reports the configured one plus every location that holds a queue).
    ``operation_retention`` and ``pending_operation_polls`` shape the batch operations
    (``emulator.operations``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        default_location: str = "local",
        task_tombstone_ttl: timedelta = rules.DEFAULT_TASK_TOMBSTONE_TTL,
        operation_retention: timedelta = DEFAULT_RETENTION,
        pending_operation_polls: int = 0,
    ) -> None:
        self.engine = engine
        self.task_tombstone_ttl = task_tombstone_ttl
        self.default_location = default_location
        self.iam = IamPolicies(engine.get_queue)
        self.cmek = CmekConfigs()
        self.operations = OperationStore(
            engine.clock, retention=operation_retention, pending_polls=pending_operation_polls
        )
        self.batches = Batches(
            engine, self.operations, create_one=self._create_one, task_to_pb=self._task_pb
        )
        # Locations named by requests; the engine's list is per parent, so ListLocations
        # reports these plus the default (Cloud Tasks accepts any location id).
        self._seen_locations: dict[str, set[str]] = {}
        self._seen_parents: set[str] = set()
        self._noted_queues: set[str] = set()

    def known_parents(self) -> list[str]:
        """``projects/P/locations/L`` of every location a request named, plus the default
        location of every project seen (what the console lists)."""
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

    def _queue_pb(self, record: QueueRecord, api: Api, stats: bool = False) -> Any:
        if api is V2:
            return queue_pb.queue_to_pb(record)
        return queue_pb.queue_to_pb(
            record,
            api,
            stats=self.engine.queue_stats(record.name) if stats else None,
            tombstone_ttl=self.task_tombstone_ttl,
        )

    async def list_queues(self, request: Any, api: Api = V2) -> Any:
        """v2beta3's ``read_mask`` with ``stats`` (or ``*``) adds each queue's statistics."""
        validate_parent(request.parent)
        self.note_parent(request.parent)
        keep = parse_queue_filter(request.filter)
        size = page_size(request.page_size, rules.MAX_LIST_QUEUES_PAGE)
        after = decode_page_token(request.page_token, "q:" + request.filter)
        with_stats = api.beta and bool({"stats", "*"} & set(request.read_mask.paths))
        records = self.engine.list_queues(request.parent)  # sorted by name
        start = bisect.bisect_right([r.name for r in records], after) if after else 0
        response = api.ListQueuesResponse()
        last = ""
        index = start
        while index < len(records) and len(response.queues) < size:
            record = records[index]
            index += 1
            if keep(record):
                response.queues.append(self._queue_pb(record, api, with_stats))
                last = record.name
        if index < len(records) and last:
            response.next_page_token = encode_page_token("q:" + request.filter, last)
        return response

    async def get_queue(self, request: Any, api: Api = V2) -> Any:
        """v2beta3: without a ``read_mask`` every field but ``stats``; with one, the fields it
        names (``stats`` or ``*`` included), as documented."""
        record = self.engine.get_queue(request.name)
        if not api.beta or not request.read_mask.paths:
            return self._queue_pb(record, api)
        paths = list(request.read_mask.paths)
        full = self._queue_pb(record, api, stats=bool({"stats", "*"} & set(paths)))
        if "*" in paths:
            return full
        mask = field_mask_pb2.FieldMask(paths=paths)
        if not mask.IsValidForDescriptor(api.Queue.DESCRIPTOR):
            raise InvalidArgument(f"Invalid read_mask {paths}: not Queue fields.")
        shown = api.Queue()
        mask.MergeMessage(full, shown)
        return shown

    async def get_queue_v2beta3(self, request: Any) -> Any:
        """v2beta3 GetQueue (what ``daygen_queue`` reads queue statistics with)."""
        return await self.get_queue(request, V2BETA3)

    def _check_spec(self, spec: Any, request_queue: Any, api: Api, location: str) -> None:
        if spec.http_target is not None:
            self.cmek.check_routing_allowed(location)
        if api.beta and request_queue.rate_limits.max_burst_size > MAX_BETA_BURST_SIZE:
            raise InvalidArgument("RateLimits.maxBurstSize must be less than or equal to 500.")

    async def create_queue(self, request: Any, api: Api = V2) -> Any:
        validate_parent(request.parent)
        spec = queue_pb.queue_spec_from_pb(request.queue, api)
        split_queue_name(spec.name)
        if not spec.name.startswith(request.parent + "/queues/"):
            raise InvalidArgument(
                f"The queue name ('{spec.name}') must be in the parent ('{request.parent}')."
            )
        self._check_spec(spec, request.queue, api, request.parent)
        record = await self.engine.create_queue(spec)
        self.note_parent(request.parent)
        return self._queue_pb(record, api)

    async def update_queue(self, request: Any, api: Api = V2) -> Any:
        """An upsert: the masked fields of ``request.queue`` over the current queue, or over
        a queue with every default when there is none (``emulator.queue_updates``)."""
        name = request.queue.name
        split_queue_name(name)
        settable = queue_updates.settable_mask(request.update_mask, api)
        location = name.rsplit("/queues/", 1)[0]
        self.note_parent(location)
        try:
            existing: QueueRecord | None = self.engine.get_queue(name)
        except NotFound:
            existing = None
        current = queue_pb.queue_to_pb(existing or queue_pb.blank_queue(name), api)
        queue_updates.merge(request.queue, current, settable, api)
        spec = queue_pb.queue_spec_from_pb(current, api)
        if existing is not None and api.beta and spec.pull != existing.pull:
            raise InvalidArgument("Queue.type is immutable: it cannot change after creation.")
        self._check_spec(spec, request.queue, api, location)
        return self._queue_pb(await self.engine.update_queue(spec), api)

    async def delete_queue(self, request: Any, api: Api = V2) -> Any:
        await self.engine.delete_queue(request.name)
        self.iam.forget(request.name)
        return empty_pb2.Empty()

    async def purge_queue(self, request: Any, api: Api = V2) -> Any:
        return self._queue_pb(await self.engine.purge_queue(request.name), api)

    async def pause_queue(self, request: Any, api: Api = V2) -> Any:
        return self._queue_pb(await self.engine.pause_queue(request.name), api)

    async def resume_queue(self, request: Any, api: Api = V2) -> Any:
        return self._queue_pb(await self.engine.resume_queue(request.name), api)

    # ------------------------------------------------------------------ IAM (in memory)

    async def get_iam_policy(self, request: Any, api: Api = V2) -> Any:
        return await self.iam.get_iam_policy(request)

    async def set_iam_policy(self, request: Any, api: Api = V2) -> Any:
        return await self.iam.set_iam_policy(request)

    async def test_iam_permissions(self, request: Any, api: Api = V2) -> Any:
        return await self.iam.test_iam_permissions(request)

    # ------------------------------------------------------------------ tasks

    def _routing(self, record: TaskRecord) -> AppEngineRouting | None:
        """The routing an App Engine task is dispatched with, as GetTask reports it."""
        if record.http_request.app_engine is None:
            return None
        try:
            return effective_routing(self.engine.get_queue(record.queue), record)
        except NotFound:
            return record.http_request.app_engine

    def _task_pb(self, record: TaskRecord, view: int, api: Api) -> Any:
        return conv.task_to_pb(record, view, api, self._routing(record))

    async def list_tasks(self, request: Any, api: Api = V2) -> Any:
        size = page_size(request.page_size, rules.MAX_LIST_TASKS_PAGE)
        after = decode_page_token(request.page_token, "t:")
        records = sorted(self.engine.list_tasks(request.parent), key=_task_name)
        start = bisect.bisect_right(records, after, key=_task_name) if after else 0
        chunk = records[start : start + size]
        view = request.response_view
        response = api.ListTasksResponse()
        response.tasks.extend([self._task_pb(record, view, api) for record in chunk])
        if start + size < len(records) and chunk:
            response.next_page_token = encode_page_token("t:", chunk[-1].name)
        return response

    async def get_task(self, request: Any, api: Api = V2) -> Any:
        return self._task_pb(self.engine.get_task(request.name), request.response_view, api)

    async def _create_one(self, parent: str, task: Any, api: Api) -> TaskRecord:
        """CreateTask's work, shared by BatchCreateTasks (each request is one of these)."""
        return await self._create_spec(parent, conv.new_task_from_pb(task, api))

    def _create_spec(self, parent: str, spec: NewTaskSpec) -> Awaitable[TaskRecord]:
        """The engine's CreateTask, after the service's own checks (raised here, before it
        starts). Not a coroutine of its own: CreateTask is every job's call, and a frame
        less is a few per cent of it."""
        if parent not in self._noted_queues:
            self._note_queue(parent)
        if self.cmek.any_enabled:
            queue = self.engine.get_queue(parent)
            if queue.http_target is not None:
                self.cmek.check_routing_allowed(parent.rsplit("/queues/", 1)[0])
        return self.engine.create_task(parent, spec)

    def _note_queue(self, queue: str) -> None:
        """A queue's location, noted once per queue name (CreateTask's hot path skips the
        parsing)."""
        self.note_parent(queue.rsplit("/queues/", 1)[0])
        if len(self._noted_queues) < _NOTED_QUEUES_KEPT:
            self._noted_queues.add(queue)

    async def create_task(self, request: Any, api: Api = V2, *, owned: bool = False) -> Any:
        """``owned``: the caller made ``request`` for this call alone (the gRPC face: it was
        just deserialized), so the answer may be built in its ``task``, saving a copy."""
        sent = request.task
        record = await self._create_spec(request.parent, conv.new_task_from_pb(sent, api))
        if record.http_request.app_engine is None:  # the hot path: no queue lookup
            return conv.created_task_to_pb(sent, record, request.response_view, api, owned)
        return self._task_pb(record, request.response_view, api)

    async def delete_task(self, request: Any, api: Api = V2) -> Any:
        await self.engine.delete_task(request.name)
        return empty_pb2.Empty()

    async def run_task(self, request: Any, api: Api = V2) -> Any:
        record = await self.engine.run_task(request.name)
        return self._task_pb(record, request.response_view, api)

    async def buffer_task(
        self, queue: str, task_id: str, body: bytes, content_type: str, api: Api = V2
    ) -> Any:
        """BufferTask (REST only): a task from a raw HTTP body on a queue whose
        ``http_target`` supplies the URL (and method, headers, token). The body becomes the
        task's body and its Content-Type the task's, ``application/json`` when the request
        has none; nothing else of the buffering request is copied."""
        record = self.engine.get_queue(queue)
        if record.http_target is None or not record.http_target.has_routing:
            raise FailedPrecondition(BUFFER_NEEDS_TARGET, resource="queue")
        spec = NewTaskSpec(
            http_request=HttpTarget(
                url="",
                headers={"Content-Type": content_type or BUFFER_CONTENT_TYPE},
                body=body,
            ),
            name=f"{queue}/tasks/{task_id}" if task_id else None,
        )
        created = await self._create_spec(queue, spec)
        return conv.task_to_pb(created, conv.VIEW_BASIC, api)

    # ------------------------------------------------------------------ batches, operations

    async def batch_create_tasks(self, request: Any, api: Api = V2) -> Any:
        return await self.batches.create(request, api)

    async def batch_delete_tasks(self, request: Any, api: Api = V2) -> Any:
        return await self.batches.delete(request, api)

    async def get_operation(self, request: Any, api: Api = V2) -> Any:
        """``google.longrunning.Operations/GetOperation`` (the only Operations method Cloud
        Tasks has)."""
        operation: operations_pb2.Operation = self.operations.get(request.name)
        return operation

    # ------------------------------------------------------------------ CMEK

    async def get_cmek_config(self, request: Any, api: Api = V2) -> Any:
        return self.cmek.get(request, api)

    async def update_cmek_config(self, request: Any, api: Api = V2) -> Any:
        return self.cmek.update(request, api)

    # ------------------------------------------------------------------ locations mixin

    def _locations(self, project: str) -> list[str]:
        return sorted({self.default_location, *self._seen_locations.get(project, ())})

    async def list_locations(self, request: Any, api: Api = V2) -> Any:
        if _PROJECT_RE.match(request.name) is None:
            raise InvalidArgument(f'Invalid resource name "{request.name}": expected projects/*.')
        project = request.name.split("/", 1)[1]
        response = locations_pb2.ListLocationsResponse()
        for location in self._locations(project):
            response.locations.append(_location(project, location))
        return response

    async def get_location(self, request: Any, api: Api = V2) -> Any:
        match = _LOCATION_RE.match(request.name)
        if match is None:
            raise InvalidArgument(
                f'Invalid resource name "{request.name}": expected projects/*/locations/*.'
            )
        return _location(match["project"], match["location"])


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
