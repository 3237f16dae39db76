"""``CloudTasksBackend``: ``CloudTasksQueue`` over Google's own ``google-cloud-tasks`` clients.

The same code talks to Google Cloud Tasks (Application Default Credentials) and to
``python -m emulator`` (``emulator_host="127.0.0.1:8123"``: no credentials, no metadata-server
probe). Two transports, both ``CloudTasksRpc``:

- ``GrpcRpc`` (the default): ``CloudTasksAsyncClient`` over gRPC (an insecure channel to an
  emulator host);
- ``RestRpc`` (``transport="rest"``): google-cloud-tasks ships REST only in its synchronous
  ``CloudTasksClient`` (there is no asyncio REST transport in 2.26), so each call runs that
  client in a worker thread. ``emulator_host`` is then the emulator's HTTP address.

Queue statistics are not part of Cloud Tasks v2: ``get_queue`` reads them from v2beta3's
GetQueue with a ``stats`` read mask, which Google serves for the same queues (and so does the
emulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, Final, Literal

import grpc
import requests
from google.api_core import exceptions as google_errors
from google.api_core import gapic_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.tasks_v2.services.cloud_tasks import transports as v2_transports
from google.cloud.tasks_v2beta3.services.cloud_tasks import transports as beta_transports
from google.protobuf import any_pb2, empty_pb2, json_format

from daygen_queue.client import CloudTasksQueue
from daygen_queue.rpc import unpack_details

Transport = Literal["grpc", "rest"]

# Far above the 1 MiB task limit, so that an oversized task reaches the service's validation
# and gets Cloud Tasks' INVALID_ARGUMENT instead of gRPC's RESOURCE_EXHAUSTED.
_MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
_CHANNEL_OPTIONS: Final = [
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
]
_GRPC_TRANSPORTS: Final = {
    tasks_v2: v2_transports.CloudTasksGrpcAsyncIOTransport,
    tasks_v2beta3: beta_transports.CloudTasksGrpcAsyncIOTransport,
}

__all__ = ["CloudTasksBackend", "GrpcRpc", "RestRpc", "grpc_coded"]


def _raw(reply: Any) -> Any:
    """The raw protobuf behind a proto-plus reply (``Empty`` for the RPCs that return none)."""
    return empty_pb2.Empty() if reply is None else type(reply).pb(reply)


class _GapicRpc:
    """``CloudTasksRpc`` on a pair of Google's generated clients (v2, and v2beta3 for the
    statistics). Subclasses say how a call is made; the clients are built lazily, on first
    use, inside the running event loop (as grpc.aio requires)."""

    def __init__(
        self,
        *,
        emulator_host: str | None = None,
        client: Any = None,
        beta_client: Any = None,
        credentials: Any = None,
        timeout: float = 30.0,
    ) -> None:
        self.emulator_host = emulator_host
        self._clients: dict[Any, Any] = {tasks_v2: client, tasks_v2beta3: beta_client}
        self._credentials = credentials
        self._timeout = timeout
        # Against the emulator no call is retried (a test must fail fast, never hang on a
        # server that is down); against Google the client's published retry policy applies.
        self._retry: Any = None if emulator_host else gapic_v1.method.DEFAULT

    def _make_client(self, module: Any) -> Any:
        raise NotImplementedError

    def _client(self, module: Any) -> Any:
        client = self._clients[module]
        if client is None:
            client = self._clients[module] = self._make_client(module)
        return client

    async def _call(self, module: Any, method: str, request: Any, *, first_page: bool) -> Any:
        """``method`` of ``module``'s client with ``request`` (proto-plus): its reply, or for
        a List call the first page of its pager (``CloudTasksQueue`` follows the tokens)."""
        raise NotImplementedError

    async def _unary(self, method: str, request_type: Any, request: Any) -> Any:
        module = tasks_v2beta3 if request_type is tasks_v2beta3.GetQueueRequest else tasks_v2
        reply = await self._call(module, method, request_type.wrap(request), first_page=False)
        return _raw(reply)

    async def _first_page(self, method: str, request_type: Any, request: Any) -> Any:
        reply = await self._call(tasks_v2, method, request_type.wrap(request), first_page=True)
        return _raw(reply)

    async def list_queues(self, request: Any) -> Any:
        return await self._first_page("list_queues", tasks_v2.ListQueuesRequest, request)

    async def get_queue(self, request: Any) -> Any:
        return await self._unary("get_queue", tasks_v2.GetQueueRequest, request)

    async def get_queue_v2beta3(self, request: Any) -> Any:
        return await self._unary("get_queue", tasks_v2beta3.GetQueueRequest, request)

    async def create_queue(self, request: Any) -> Any:
        return await self._unary("create_queue", tasks_v2.CreateQueueRequest, request)

    async def update_queue(self, request: Any) -> Any:
        return await self._unary("update_queue", tasks_v2.UpdateQueueRequest, request)

    async def delete_queue(self, request: Any) -> Any:
        return await self._unary("delete_queue", tasks_v2.DeleteQueueRequest, request)

    async def purge_queue(self, request: Any) -> Any:
        return await self._unary("purge_queue", tasks_v2.PurgeQueueRequest, request)

    async def pause_queue(self, request: Any) -> Any:
        return await self._unary("pause_queue", tasks_v2.PauseQueueRequest, request)

    async def resume_queue(self, request: Any) -> Any:
        return await self._unary("resume_queue", tasks_v2.ResumeQueueRequest, request)

    async def list_tasks(self, request: Any) -> Any:
        return await self._first_page("list_tasks", tasks_v2.ListTasksRequest, request)

    async def get_task(self, request: Any) -> Any:
        return await self._unary("get_task", tasks_v2.GetTaskRequest, request)

    async def create_task(self, request: Any) -> Any:
        return await self._unary("create_task", tasks_v2.CreateTaskRequest, request)

    async def batch_create_tasks(self, request: Any) -> Any:
        """The raw Operation of the operation future the client returns (the caller polls
        with ``get_operation``, which also reads operations whose every request failed)."""
        wrapped = tasks_v2.BatchCreateTasksRequest.wrap(request)
        future = await self._call(tasks_v2, "batch_create_tasks", wrapped, first_page=False)
        return future.operation

    async def get_operation(self, request: Any) -> Any:
        return await self._call(tasks_v2, "get_operation", request, first_page=False)

    async def delete_task(self, request: Any) -> Any:
        return await self._unary("delete_task", tasks_v2.DeleteTaskRequest, request)

    async def run_task(self, request: Any) -> Any:
        return await self._unary("run_task", tasks_v2.RunTaskRequest, request)

    async def close(self) -> None:
        raise NotImplementedError


class GrpcRpc(_GapicRpc):
    """``CloudTasksRpc`` over ``CloudTasksAsyncClient`` and gRPC. ``client`` /
    ``beta_client`` inject ready-made async clients (tests, custom transports)."""

    _channel: grpc.aio.Channel | None = None  # to an emulator host, shared by both clients

    def _make_client(self, module: Any) -> Any:
        if not self.emulator_host:
            return module.CloudTasksAsyncClient(credentials=self._credentials)
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.emulator_host, options=_CHANNEL_OPTIONS)
        transport = _GRPC_TRANSPORTS[module](channel=self._channel)
        return module.CloudTasksAsyncClient(transport=transport)

    async def _call(self, module: Any, method: str, request: Any, *, first_page: bool) -> Any:
        call = getattr(self._client(module), method)
        reply = await call(request=request, retry=self._retry, timeout=self._timeout)
        if first_page:
            async for page in reply.pages:
                return page
        return reply

    async def close(self) -> None:
        for module, client in self._clients.items():
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.transport.close()
            self._clients[module] = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class RestRpc(_GapicRpc):
    """``CloudTasksRpc`` over the synchronous ``CloudTasksClient(transport="rest")``, one
    worker thread per call. ``client`` / ``beta_client`` inject ready-made sync clients.

    api_core classes a REST error by its HTTP status, and HTTP folds several gRPC codes into
    one (FAILED_PRECONDITION and INVALID_ARGUMENT are both 400). Google's JSON error body
    names the gRPC status and carries the details, so each error is rebuilt from it: the
    same class and details a gRPC client would have raised.
    """

    def _make_client(self, module: Any) -> Any:
        if not self.emulator_host:
            return module.CloudTasksClient(transport="rest", credentials=self._credentials)
        return module.CloudTasksClient(
            transport="rest",
            client_options=ClientOptions(api_endpoint=f"http://{self.emulator_host}"),
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )

    async def _call(self, module: Any, method: str, request: Any, *, first_page: bool) -> Any:
        call = functools.partial(
            getattr(self._client(module), method),
            request=request,
            retry=self._retry,
            timeout=self._timeout,
        )
        try:
            reply = await asyncio.to_thread(call)
        except google_errors.GoogleAPICallError as error:
            raise grpc_coded(error) from None
        except requests.RequestException as error:  # refused, reset, timed out
            raise google_errors.ServiceUnavailable(str(error)) from None  # type: ignore[no-untyped-call]
        return next(iter(reply.pages)) if first_page else reply

    async def close(self) -> None:
        for module, client in self._clients.items():
            if client is not None:
                client.transport.close()
            self._clients[module] = None


def grpc_coded(error: google_errors.GoogleAPICallError) -> google_errors.GoogleAPICallError:
    """A REST error rebuilt from its JSON body (``{"error": {"status": "NOT_FOUND",
    "message": ..., "details": [...]}}``) as the exception of that gRPC status, with the
    details unpacked and the bare message (api_core prefixes it with the method and URL).
    Returned unchanged when the body is not Google's error shape."""
    try:
        body = error.response.json()["error"]
        code = grpc.StatusCode[body["status"]]
    except (AttributeError, KeyError, TypeError, ValueError):
        return error
    packed: list[any_pb2.Any] = []
    for detail in body.get("details", ()):
        with contextlib.suppress(json_format.ParseError, TypeError, KeyError):
            packed.append(json_format.ParseDict(detail, any_pb2.Any()))
    rebuilt: google_errors.GoogleAPICallError = google_errors.from_grpc_status(  # type: ignore[no-untyped-call]
        code,
        body.get("message", error.message),
        details=unpack_details(packed),
        response=error.response,
    )
    return rebuilt


class CloudTasksBackend(CloudTasksQueue):
    """A ``TaskQueue`` on Cloud Tasks v2 through Google's clients, Google's service or the
    emulator's.

    ``emulator_host`` (``host:port``) selects ``python -m emulator``: its gRPC address, or its
    HTTP address with ``transport="rest"``; otherwise the client uses Application Default
    Credentials (``credentials=`` overrides). ``client`` / ``beta_client`` inject ready-made
    clients (async ones for gRPC, sync ones for REST).
    """

    def __init__(
        self,
        *,
        project: str,
        location: str,
        emulator_host: str | None = None,
        client: Any = None,
        beta_client: Any = None,
        credentials: Any = None,
        timeout: float = 30.0,
        transport: Transport = "grpc",
    ) -> None:
        kind = {"grpc": GrpcRpc, "rest": RestRpc}.get(transport)
        if kind is None:
            raise ValueError(f"unknown transport {transport!r}: use 'grpc' or 'rest'")
        rpc = kind(
            emulator_host=emulator_host,
            client=client,
            beta_client=beta_client,
            credentials=credentials,
            timeout=timeout,
        )
        super().__init__(rpc, project=project, location=location)
        self.emulator_host = emulator_host
        self.transport: Transport = transport
