"""The Cloud Tasks v2 and v2beta3 REST surface (``--http-port``), the OIDC discovery document,
the JWKS and the OAuth tokeninfo.

The mapping is the API's published HTTP rules (``GET /v2/{name=projects/*/locations/*/queues/*}``
...), so ``transport="rest"`` clients work unchanged. Bodies are proto3 JSON, parsed and
printed with ``json_format`` into the same request messages the gRPC face receives, and
answered by the same ``CloudTasksService``; errors use Google's JSON error shape.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from aiohttp import web
from google.api_core.exceptions import exception_class_for_grpc_status
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from emulator.apis import APIS, Api
from emulator.errors import EmulatorError, InvalidArgument, NotFound, Unimplemented, rpc_status_of
from emulator.oauth import AccessTokens
from emulator.oidc import OidcIssuer
from emulator.service import CloudTasksService

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 32 * 1024 * 1024  # oversized tasks must reach validation

_P = r"projects/[^/:]+"
_L = _P + r"/locations/[^/:]+"
_Q = _L + r"/queues/[^/:]+"
_T = _Q + r"/tasks/[^/:]+"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    rpc: str  # CloudTasksService method
    request: Any  # raw request class
    path_field: str  # where the captured resource name goes
    body: str | None  # "*" = the whole request, "queue" = that field, None = no body


def _route(
    method: str, resource: str, rpc: str, request: Any, path_field: str, body: str | None
) -> Route:
    """``resource`` is ``RESOURCE_REGEX`` or ``RESOURCE_REGEX|suffix`` (``/tasks``,
    ``:run``); the resource part is what goes into ``path_field``."""
    regex, _, suffix = resource.partition("|")
    pattern = re.compile(f"^(?P<r>{regex}){re.escape(suffix)}$")
    return Route(method, pattern, rpc, request, path_field, body)


_IAM = iam_policy_pb2
_LOC = locations_pb2
_OPS = operations_pb2
_OPERATION = _L + r"/operations/[^/:]+"
_CMEK = _L + r"/cmekConfig"


def routes_for(api: Api) -> list[Route]:
    """The HTTP rules of one API version (the same under ``/v2/`` and ``/v2beta3/``)."""
    r = api.request
    return [
        _route(
            "GET", _P + "|/locations", "list_locations", _LOC.ListLocationsRequest, "name", None
        ),
        _route("GET", _L, "get_location", _LOC.GetLocationRequest, "name", None),
        _route("GET", _OPERATION, "get_operation", _OPS.GetOperationRequest, "name", None),
        _route("GET", _CMEK, "get_cmek_config", r("GetCmekConfigRequest"), "name", None),
        _route(
            "PATCH",
            _CMEK,
            "update_cmek_config",
            r("UpdateCmekConfigRequest"),
            "cmek_config.name",
            "cmek_config",
        ),
        _route("GET", _L + "|/queues", "list_queues", r("ListQueuesRequest"), "parent", None),
        _route("POST", _L + "|/queues", "create_queue", r("CreateQueueRequest"), "parent", "queue"),
        _route("GET", _Q, "get_queue", r("GetQueueRequest"), "name", None),
        _route("PATCH", _Q, "update_queue", r("UpdateQueueRequest"), "queue.name", "queue"),
        _route("DELETE", _Q, "delete_queue", r("DeleteQueueRequest"), "name", None),
        _route("POST", _Q + "|:purge", "purge_queue", r("PurgeQueueRequest"), "name", "*"),
        _route("POST", _Q + "|:pause", "pause_queue", r("PauseQueueRequest"), "name", "*"),
        _route("POST", _Q + "|:resume", "resume_queue", r("ResumeQueueRequest"), "name", "*"),
        _route(
            "POST",
            _Q + "|:getIamPolicy",
            "get_iam_policy",
            _IAM.GetIamPolicyRequest,
            "resource",
            "*",
        ),
        _route(
            "POST",
            _Q + "|:setIamPolicy",
            "set_iam_policy",
            _IAM.SetIamPolicyRequest,
            "resource",
            "*",
        ),
        _route(
            "POST",
            _Q + "|:testIamPermissions",
            "test_iam_permissions",
            _IAM.TestIamPermissionsRequest,
            "resource",
            "*",
        ),
        _route("GET", _Q + "|/tasks", "list_tasks", r("ListTasksRequest"), "parent", None),
        _route("POST", _Q + "|/tasks", "create_task", r("CreateTaskRequest"), "parent", "*"),
        _route(
            "POST",
            _Q + "|/tasks:batchCreate",
            "batch_create_tasks",
            r("BatchCreateTasksRequest"),
            "parent",
            "*",
        ),
        _route(
            "POST",
            _Q + "|/tasks:batchDelete",
            "batch_delete_tasks",
            r("BatchDeleteTasksRequest"),
            "parent",
            "*",
        ),
        _route("GET", _T, "get_task", r("GetTaskRequest"), "name", None),
        _route("DELETE", _T, "delete_task", r("DeleteTaskRequest"), "name", None),
        _route("POST", _T + "|:run", "run_task", r("RunTaskRequest"), "name", "*"),
    ]


ROUTES: Final[dict[str, list[Route]]] = {api.version: routes_for(api) for api in APIS}
APIS_BY_VERSION: Final[dict[str, Api]] = {api.version: api for api in APIS}
# BufferTask: ``POST {queue}/tasks/{taskId}:buffer`` and ``POST {queue}/tasks:buffer``.
_BUFFER = re.compile(f"^(?P<queue>{_Q})/tasks(?:/(?P<task>[^/:]+))?:buffer$")
# Methods of the Operations mixin Cloud Tasks does not have (only GetOperation).
_UNSERVED_OPERATIONS: Final = [
    ("GET", re.compile(f"^{_L}/operations$"), "google.longrunning.Operations.ListOperations"),
    ("POST", re.compile(f"^{_OPERATION}:cancel$"), "google.longrunning.Operations.CancelOperation"),
    ("DELETE", re.compile(f"^{_OPERATION}$"), "google.longrunning.Operations.DeleteOperation"),
    ("POST", re.compile(f"^{_OPERATION}:wait$"), "google.longrunning.Operations.WaitOperation"),
]


def http_status(code: int) -> int:
    """The HTTP status Google's REST APIs answer for a google.rpc code (api_core's table;
    500 for the codes it maps to none: UNKNOWN, DATA_LOSS)."""
    exception = exception_class_for_grpc_status(  # type: ignore[no-untyped-call]
        grpc.StatusCode[code_pb2.Code.Name(code)]
    )
    status: int | None = exception.code
    return status or 500


def error_response(status: status_pb2.Status) -> web.Response:
    """Google's JSON error shape, carrying the same details as the gRPC face's status
    (a ResourceInfo naming the kind of resource, Help links)."""
    code = http_status(status.code)
    body = {
        "error": {
            "code": code,
            "message": status.message,
            "status": code_pb2.Code.Name(status.code),
            "details": [json_format.MessageToDict(detail) for detail in status.details],
        }
    }
    return web.json_response(body, status=code)


def error_of(error: EmulatorError) -> web.Response:
    return error_response(rpc_status_of(error))


def _query_dict(request_class: Any, query: Any) -> dict[str, Any]:
    """Query parameters (camelCase, Google's system parameters skipped) as a JSON dict that
    ``json_format`` merges into the request: it knows FieldMask strings and enum names."""
    fields = {field.json_name: field for field in request_class.DESCRIPTOR.fields}
    fields.update({field.name: field for field in request_class.DESCRIPTOR.fields})
    result: dict[str, Any] = {}
    for key, value in query.items():
        if key.startswith("$") or key in ("alt", "prettyPrint", "key", "fields"):
            continue
        field = fields.get(key)
        if field is None:
            continue
        if field.enum_type is not None and value.lstrip("-").isdigit():
            result[field.json_name] = int(value)
        else:
            result[field.json_name] = value
    return result


def _get_path(message: Any, path: str) -> Any:
    for part in path.split("."):
        message = getattr(message, part)
    return message


def unimplemented_message(method: str) -> str:
    return f"Method {method} is not implemented by the Cloud Tasks emulator."


def _set_path(message: Any, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


class RestGateway:
    """aiohttp handlers for the REST API (v2 and v2beta3), OIDC discovery, the JWKS and the
    tokeninfo of the OAuth access tokens the emulator mints."""

    def __init__(
        self,
        service: CloudTasksService,
        issuer: OidcIssuer | None = None,
        access_tokens: AccessTokens | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.access_tokens = access_tokens

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{version:v2|v2beta3}/{path:.*}", self.handle)
        app.router.add_route("*", "/{version:v[0-9][a-z0-9]*}/{path:.*}", self.unserved_version)
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/oauth2/v3/certs", self.jwks)  # Google's JWKS path, for symmetry
        app.router.add_route("*", "/oauth2/v3/tokeninfo", self.tokeninfo)

    async def handle(self, request: web.Request) -> web.Response:
        api = APIS_BY_VERSION[request.match_info["version"]]
        path = request.match_info["path"]
        for route in ROUTES[api.version]:
            if route.method != request.method:
                continue
            match = route.pattern.match(path)
            if match is None:
                continue
            return await self._call(route, match["r"], request, api)
        buffer = _BUFFER.match(path)
        if buffer is not None and request.method == "POST":
            return await self._buffer(buffer["queue"], buffer["task"] or "", request, api)
        for method, pattern, rpc in _UNSERVED_OPERATIONS:
            if method == request.method and pattern.match(path):
                return error_of(Unimplemented(unimplemented_message(rpc)))
        return error_of(NotFound(f"No Cloud Tasks REST method {request.method} {request.path}."))

    async def unserved_version(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        return error_of(
            Unimplemented(
                f"The Cloud Tasks {version} API is not implemented by the Cloud Tasks emulator "
                f"({request.method} {request.path}); it serves v2 and v2beta3."
            )
        )

    async def _buffer(
        self, queue: str, task_id: str, request: web.Request, api: Api
    ) -> web.Response:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        try:
            task = await self.service.buffer_task(queue, task_id, body, content_type, api)
        except EmulatorError as error:
            return error_of(error)
        numeric = "enum-encoding=int" in request.query.get("$alt", "")
        payload = json_format.MessageToDict(task, use_integers_for_enums=numeric)
        return web.json_response({"task": payload})

    async def _call(
        self, route: Route, resource: str, request: web.Request, api: Api
    ) -> web.Response:
        message = route.request()
        try:
            json_format.ParseDict(
                _query_dict(route.request, request.query), message, ignore_unknown_fields=True
            )
            if route.body is not None and request.can_read_body:
                raw = await request.read()
                if raw.strip():
                    target = message if route.body == "*" else _get_path(message, route.body)
                    json_format.Parse(raw, target, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, UnicodeDecodeError) as error:
            return error_of(InvalidArgument(f"Invalid JSON payload: {error}"))
        _set_path(message, route.path_field, resource)
        call: Callable[..., Awaitable[Any]] = getattr(self.service, route.rpc)
        try:
            reply = await call(message, api=api)
        except EmulatorError as error:
            return error_of(error)
        except Exception:  # one bad request must not take the server down
            log.exception("internal error in REST %s", route.rpc)
            return error_response(
                status_pb2.Status(code=code_pb2.INTERNAL, message="Internal error.")
            )
        # Google's clients ask ``$alt=json;enum-encoding=int``: enums as numbers, not names.
        numeric = "enum-encoding=int" in request.query.get("$alt", "")
        text = json_format.MessageToJson(reply, indent=None, use_integers_for_enums=numeric)
        return web.Response(text=text, content_type="application/json")

    async def tokeninfo(self, request: web.Request) -> web.Response:
        """Google's ``tokeninfo`` for the opaque access tokens of ``oauth_token`` tasks."""
        token = request.query.get("access_token", "")
        if not token and request.can_read_body:
            token = (await request.post()).get("access_token", "")  # type: ignore[assignment]
        info = self.access_tokens.info(str(token)) if self.access_tokens is not None else None
        if info is None:
            return web.json_response(
                {"error": "invalid_token", "error_description": "Invalid Value"}, status=400
            )
        return web.json_response(info)

    async def discovery(self, request: web.Request) -> web.Response:
        if self.issuer is None:
            return error_of(NotFound("OIDC is not enabled."))
        base = f"{request.scheme}://{request.host}"
        return web.json_response(self.issuer.discovery(base))

    async def jwks(self, request: web.Request) -> web.Response:
        if self.issuer is None:
            return error_of(NotFound("OIDC is not enabled."))
        return web.Response(text=json.dumps(self.issuer.jwks()), content_type="application/json")


def build_app(service: CloudTasksService, issuer: OidcIssuer | None = None) -> web.Application:
    """REST API, OIDC discovery and JWKS, and Prometheus metrics at ``/metrics``."""
    from emulator import metrics

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    RestGateway(service, issuer, service.engine.access_tokens).add_routes(app)
    metrics.add_routes(app, service)
    return app
