"""``CloudTasksRpc``: the narrow seam under ``CloudTasksQueue``, one method per Cloud Tasks RPC.

Requests and responses are the *raw* protobuf messages of ``google.cloud.tasks_v2`` (the upb
classes behind proto-plus: ``tasks_v2.CreateTaskRequest.pb()``), so a transport has nothing
to convert. A failed call raises a ``google.api_core.exceptions.GoogleAPICallError`` whose
class is the gRPC status of the failure and whose ``details`` hold the unpacked
``google.rpc`` detail messages (``ResourceInfo``...), whatever the wire: that is what lets one
``translate_error`` serve every transport. ``RetryError`` may also escape when a retry
policy gave up.

The method names and shapes are those of ``emulator.service.CloudTasksService`` and, request
for request, of Google's ``CloudTasksAsyncClient``. Transports:
``daygen_queue.backends.cloud_tasks`` (Google's clients, over gRPC or REST) and
``daygen_queue.backends.emulator`` (the emulator's service in process).

The messages are typed ``Any``: the generated classes are built at import time and carry no
static types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from google.protobuf import any_pb2, descriptor_pool, message, message_factory


class CloudTasksRpc(Protocol):
    """``google.cloud.tasks.v2.CloudTasks`` (plus v2beta3's GetQueue, the only way to read
    queue statistics) as coroutines over raw protobuf messages."""

    async def list_queues(self, request: Any) -> Any:
        """``ListQueuesRequest`` -> ``ListQueuesResponse``: one page; the caller follows
        ``next_page_token``."""
        ...

    async def get_queue(self, request: Any) -> Any:
        """``GetQueueRequest`` -> ``Queue``."""
        ...

    async def get_queue_v2beta3(self, request: Any) -> Any:
        """v2beta3 ``GetQueueRequest`` -> v2beta3 ``Queue``, with ``stats`` when the read
        mask names them."""
        ...

    async def create_queue(self, request: Any) -> Any:
        """``CreateQueueRequest`` -> ``Queue``."""
        ...

    async def update_queue(self, request: Any) -> Any:
        """``UpdateQueueRequest`` -> ``Queue`` (an upsert)."""
        ...

    async def delete_queue(self, request: Any) -> Any:
        """``DeleteQueueRequest`` -> ``Empty``."""
        ...

    async def purge_queue(self, request: Any) -> Any:
        """``PurgeQueueRequest`` -> ``Queue``."""
        ...

    async def pause_queue(self, request: Any) -> Any:
        """``PauseQueueRequest`` -> ``Queue``."""
        ...

    async def resume_queue(self, request: Any) -> Any:
        """``ResumeQueueRequest`` -> ``Queue``."""
        ...

    async def list_tasks(self, request: Any) -> Any:
        """``ListTasksRequest`` -> ``ListTasksResponse``: one page."""
        ...

    async def get_task(self, request: Any) -> Any:
        """``GetTaskRequest`` -> ``Task``."""
        ...

    async def create_task(self, request: Any) -> Any:
        """``CreateTaskRequest`` -> ``Task``."""
        ...

    async def batch_create_tasks(self, request: Any) -> Any:
        """``BatchCreateTasksRequest`` -> the ``google.longrunning.Operation`` as first
        answered (done or not: the caller polls ``get_operation``)."""
        ...

    async def get_operation(self, request: Any) -> Any:
        """``google.longrunning.GetOperationRequest`` -> ``Operation``."""
        ...

    async def delete_task(self, request: Any) -> Any:
        """``DeleteTaskRequest`` -> ``Empty``."""
        ...

    async def run_task(self, request: Any) -> Any:
        """``RunTaskRequest`` -> ``Task``."""
        ...

    async def close(self) -> None:
        """Release what the transport holds (channels, sessions, the in-process engine)."""
        ...


def unpack_details(details: Iterable[any_pb2.Any]) -> list[message.Message]:
    """A ``google.rpc.Status``'s packed details as messages (``ResourceInfo``, ``Help``...),
    which is how api_core hands them over for a gRPC error; types found in protobuf's default
    pool (importing ``error_details_pb2`` registers the standard ones). A detail of an unknown
    type stays packed, as api_core leaves it."""
    unpacked: list[message.Message] = []
    for detail in details:
        try:
            descriptor = descriptor_pool.Default().FindMessageTypeByName(detail.TypeName())
        except KeyError:
            unpacked.append(detail)
            continue
        target = message_factory.GetMessageClass(descriptor)()
        detail.Unpack(target)
        unpacked.append(target)
    return unpacked
