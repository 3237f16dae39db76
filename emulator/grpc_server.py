"""``google.cloud.tasks.v2.CloudTasks`` and ``google.cloud.tasks.v2beta3.CloudTasks`` (with
the Locations and Operations mixins) over grpc.aio; any other method is UNIMPLEMENTED with a
message naming it.

No generated stubs: generic method handlers with the raw protobuf classes behind
google-cloud-tasks' proto-plus types as (de)serializers, so unmodified official clients (Python,
Node, Go...) talk to the engine. Every handler runs on the server's event loop, the engine's
loop, so the engine needs no locking.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

import grpc
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from emulator.apis import APIS, V2, Api
from emulator.errors import EmulatorError, rpc_status_of
from emulator.service import CloudTasksService

log = logging.getLogger(__name__)

SERVICE: Final = "google.cloud.tasks.v2.CloudTasks"
BETA_SERVICE: Final = "google.cloud.tasks.v2beta3.CloudTasks"
LOCATIONS_SERVICE: Final = "google.cloud.location.Locations"
OPERATIONS_SERVICE: Final = "google.longrunning.Operations"
# Far above the 1 MiB task limit, so that an oversized task reaches validation and gets
# Cloud Tasks' INVALID_ARGUMENT instead of gRPC's RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
SERVER_OPTIONS: Final = [
    ("grpc.so_reuseport", 0),  # else a second server silently shares the port
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

Handler = Callable[[Any], Awaitable[Any]]


# method name -> (service method attribute, request class name, response class or name)
_TASKS_METHODS: Final[dict[str, tuple[str, str, Any]]] = {
    "ListQueues": ("list_queues", "ListQueuesRequest", "ListQueuesResponse"),
    "GetQueue": ("get_queue", "GetQueueRequest", "Queue"),
    "CreateQueue": ("create_queue", "CreateQueueRequest", "Queue"),
    "UpdateQueue": ("update_queue", "UpdateQueueRequest", "Queue"),
    "DeleteQueue": ("delete_queue", "DeleteQueueRequest", empty_pb2.Empty),
    "PurgeQueue": ("purge_queue", "PurgeQueueRequest", "Queue"),
    "PauseQueue": ("pause_queue", "PauseQueueRequest", "Queue"),
    "ResumeQueue": ("resume_queue", "ResumeQueueRequest", "Queue"),
    "GetIamPolicy": ("get_iam_policy", iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy),
    "SetIamPolicy": ("set_iam_policy", iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy),
    "TestIamPermissions": (
        "test_iam_permissions",
        iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse,
    ),
    "ListTasks": ("list_tasks", "ListTasksRequest", "ListTasksResponse"),
    "GetTask": ("get_task", "GetTaskRequest", "Task"),
    "CreateTask": ("create_task", "CreateTaskRequest", "Task"),
    "DeleteTask": ("delete_task", "DeleteTaskRequest", empty_pb2.Empty),
    "RunTask": ("run_task", "RunTaskRequest", "Task"),
    "BatchCreateTasks": (
        "batch_create_tasks",
        "BatchCreateTasksRequest",
        operations_pb2.Operation,
    ),
    "BatchDeleteTasks": (
        "batch_delete_tasks",
        "BatchDeleteTasksRequest",
        operations_pb2.Operation,
    ),
    "GetCmekConfig": ("get_cmek_config", "GetCmekConfigRequest", "CmekConfig"),
    "UpdateCmekConfig": ("update_cmek_config", "UpdateCmekConfigRequest", "CmekConfig"),
}
_LOCATION_METHODS: Final[dict[str, tuple[str, Any, Any]]] = {
    "ListLocations": (
        "list_locations",
        locations_pb2.ListLocationsRequest,
        locations_pb2.ListLocationsResponse,
    ),
    "GetLocation": ("get_location", locations_pb2.GetLocationRequest, locations_pb2.Location),
}
_OPERATION_METHODS: Final[dict[str, tuple[str, Any, Any]]] = {
    "GetOperation": (
        "get_operation",
        operations_pb2.GetOperationRequest,
        operations_pb2.Operation,
    ),
}


def _message_class(api: Api, spec: Any) -> Any:
    """A class given as such, or by its name in the API version's module."""
    return api.request(spec) if isinstance(spec, str) else spec


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


def _method_handlers(
    methods: dict[str, tuple[str, Any, Any]],
    service: CloudTasksService,
    api: Api = V2,
) -> dict[str, grpc.RpcMethodHandler]:
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method, (attribute, request_spec, response_spec) in methods.items():
        call = getattr(service, attribute)
        if method == "CreateTask":
            # The request was deserialized for this call alone: the answer may reuse it.
            bound = functools.partial(call, api=api, owned=True)
        else:
            bound = call if api is V2 else functools.partial(call, api=api)
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            _unary(bound),
            request_deserializer=_message_class(api, request_spec).FromString,
            response_serializer=_message_class(api, response_spec).SerializeToString,
        )
    return handlers


def unimplemented_message(method: str) -> str:
    """``/google.cloud.tasks.v2beta2.CloudTasks/LeaseTasks`` -> Cloud Tasks' style of
    refusal, naming the method."""
    service, _, name = method.strip("/").rpartition("/")
    return f"Method {service}.{name} is not implemented by the Cloud Tasks emulator."


class _Unimplemented(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers every method no other handler serves with UNIMPLEMENTED naming it (gRPC's own
    answer is a bare "Method not found!")."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        message = unimplemented_message(method)

        async def refuse(request: bytes, context: Context) -> bytes:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
            raise AssertionError("abort() returned")  # pragma: no cover

        return grpc.unary_unary_rpc_method_handler(refuse)


def build_server(service: CloudTasksService, address: str) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server serving Cloud Tasks v2 and v2beta3 (plus the Locations and
    Operations mixins) on ``address`` (``host:port``; port 0 picks a free one). Returns the
    server, not started, and the bound port."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    # Generic handlers: grpc.aio's registered ones (add_registered_method_handlers) measured
    # more CPU per CreateTask here (benchmarks/grpc_emulator.py), not less.
    handlers: list[grpc.GenericRpcHandler] = [
        grpc.method_handlers_generic_handler(
            api.service_name, _method_handlers(_TASKS_METHODS, service, api)
        )
        for api in APIS
    ]
    handlers.append(
        grpc.method_handlers_generic_handler(
            LOCATIONS_SERVICE, _method_handlers(_LOCATION_METHODS, service)
        )
    )
    handlers.append(
        grpc.method_handlers_generic_handler(
            OPERATIONS_SERVICE, _method_handlers(_OPERATION_METHODS, service)
        )
    )
    handlers.append(_Unimplemented())
    server.add_generic_rpc_handlers(handlers)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {address}")
    return server, port
