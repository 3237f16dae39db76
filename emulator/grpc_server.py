"""``google.cloud.tasks.v2.CloudTasks`` (and the Locations mixin) over grpc.aio.

No generated stubs: generic method handlers with the raw protobuf classes behind
google-cloud-tasks' proto-plus types as (de)serializers, so unmodified official clients (Python,
Node, Go...) talk to the engine. Every handler runs on the server's event loop, the engine's
loop, so the engine needs no locking.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

import grpc
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from emulator.errors import EmulatorError, rpc_status_of
from emulator.service import CloudTasksService

log = logging.getLogger(__name__)

SERVICE: Final = "google.cloud.tasks.v2.CloudTasks"
BETA_SERVICE: Final = "google.cloud.tasks.v2beta3.CloudTasks"
LOCATIONS_SERVICE: Final = "google.cloud.location.Locations"
# Far above the 1 MiB task limit, so that an oversized task reaches validation and gets
# Cloud Tasks' INVALID_ARGUMENT instead of gRPC's RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
SERVER_OPTIONS: Final = [
    ("grpc.so_reuseport", 0),  # else a second server silently shares the port
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

Handler = Callable[[Any], Awaitable[Any]]


def _pb(proto_plus_type: Any) -> Any:
    return proto_plus_type.pb()


# method name -> (service method attribute, request class, response class)
_TASKS_METHODS: Final[dict[str, tuple[str, Any, Any]]] = {
    "ListQueues": (
        "list_queues",
        _pb(tasks_v2.ListQueuesRequest),
        _pb(tasks_v2.ListQueuesResponse),
    ),
    "GetQueue": ("get_queue", _pb(tasks_v2.GetQueueRequest), _pb(tasks_v2.Queue)),
    "CreateQueue": ("create_queue", _pb(tasks_v2.CreateQueueRequest), _pb(tasks_v2.Queue)),
    "UpdateQueue": ("update_queue", _pb(tasks_v2.UpdateQueueRequest), _pb(tasks_v2.Queue)),
    "DeleteQueue": ("delete_queue", _pb(tasks_v2.DeleteQueueRequest), empty_pb2.Empty),
    "PurgeQueue": ("purge_queue", _pb(tasks_v2.PurgeQueueRequest), _pb(tasks_v2.Queue)),
    "PauseQueue": ("pause_queue", _pb(tasks_v2.PauseQueueRequest), _pb(tasks_v2.Queue)),
    "ResumeQueue": ("resume_queue", _pb(tasks_v2.ResumeQueueRequest), _pb(tasks_v2.Queue)),
    "GetIamPolicy": ("get_iam_policy", iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
    "SetIamPolicy": ("set_iam_policy", iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
    "TestIamPermissions": (
        "test_iam_permissions",
        iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse,
    ),
    "ListTasks": ("list_tasks", _pb(tasks_v2.ListTasksRequest), _pb(tasks_v2.ListTasksResponse)),
    "GetTask": ("get_task", _pb(tasks_v2.GetTaskRequest), _pb(tasks_v2.Task)),
    "CreateTask": ("create_task", _pb(tasks_v2.CreateTaskRequest), _pb(tasks_v2.Task)),
    "DeleteTask": ("delete_task", _pb(tasks_v2.DeleteTaskRequest), empty_pb2.Empty),
    "RunTask": ("run_task", _pb(tasks_v2.RunTaskRequest), _pb(tasks_v2.Task)),
}
# v2beta3: only GetQueue, the one read v2 lacks (queue stats).
_BETA_METHODS: Final[dict[str, tuple[str, Any, Any]]] = {
    "GetQueue": (
        "get_queue_v2beta3",
        _pb(tasks_v2beta3.GetQueueRequest),
        _pb(tasks_v2beta3.Queue),
    ),
}
_LOCATION_METHODS: Final[dict[str, tuple[str, Any, Any]]] = {
    "ListLocations": (
        "list_locations",
        locations_pb2.ListLocationsRequest,
        locations_pb2.ListLocationsResponse,
    ),
    "GetLocation": ("get_location", locations_pb2.GetLocationRequest, locations_pb2.Location),
}


Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _unary(call: Handler) -> Callable[[Any, Context], Awaitable[Any]]:
    async def handler(request: Any, context: Context) -> Any:
        failure: status_pb2.Status | None = None
        try:
            return await call(request)
        except EmulatorError as error:
            failure = rpc_status_of(error)
        except Exception:  # never let one bad request take the server down
            log.exception("internal error in %s", getattr(call, "__name__", call))
            failure = status_pb2.Status(code=code_pb2.INTERNAL, message="Internal error.")
        # Outside the try: abort() raises, and the except above must not swallow it.
        await context.abort_with_status(rpc_status.to_status(failure))

    return handler


def _generic_handler(
    service_name: str, methods: dict[str, tuple[str, Any, Any]], service: CloudTasksService
) -> grpc.GenericRpcHandler:
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method, (attribute, request_class, response_class) in methods.items():
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            _unary(getattr(service, attribute)),
            request_deserializer=request_class.FromString,
            response_serializer=response_class.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service_name, handlers)


def build_server(service: CloudTasksService, address: str) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server serving Cloud Tasks on ``address`` (``host:port``; port 0 picks a
    free one). Returns the server, not started, and the bound port."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers(
        (
            _generic_handler(SERVICE, _TASKS_METHODS, service),
            _generic_handler(BETA_SERVICE, _BETA_METHODS, service),
            _generic_handler(LOCATIONS_SERVICE, _LOCATION_METHODS, service),
        )
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {address}")
    return server, port
