"""The Cloud Tasks v2 REST surface (``--http-port``), the OIDC discovery document and JWKS.

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
from google.cloud import tasks_v2, tasks_v2beta3
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from emulator.errors import EmulatorError, InvalidArgument, NotFound, rpc_status_of
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


_V2 = tasks_v2
_IAM = iam_policy_pb2
_LOC = locations_pb2
ROUTES: Final[list[Route]] = [
    _route("GET", _P + "|/locations", "list_locations", _LOC.ListLocationsRequest, "name", None),
    _route("GET", _L, "get_location", _LOC.GetLocationRequest, "name", None),
    _route("GET", _L + "|/queues", "list_queues", _V2.ListQueuesRequest.pb(), "parent", None),
    _route("POST", _L + "|/queues", "create_queue", _V2.CreateQueueRequest.pb(), "parent", "queue"),
    _route("GET", _Q, "get_queue", _V2.GetQueueRequest.pb(), "name", None),
    _route("PATCH", _Q, "update_queue", _V2.UpdateQueueRequest.pb(), "queue.name", "queue"),
    _route("DELETE", _Q, "delete_queue", _V2.DeleteQueueRequest.pb(), "name", None),
    _route("POST", _Q + "|:purge", "purge_queue", _V2.PurgeQueueRequest.pb(), "name", "*"),
    _route("POST", _Q + "|:pause", "pause_queue", _V2.PauseQueueRequest.pb(), "name", "*"),
    _route("POST", _Q + "|:resume", "resume_queue", _V2.ResumeQueueRequest.pb(), "name", "*"),
    _route(
        "POST", _Q + "|:getIamPolicy", "get_iam_policy", _IAM.GetIamPolicyRequest, "resource", "*"
    ),
    _route(
        "POST", _Q + "|:setIamPolicy", "set_iam_policy", _IAM.SetIamPolicyRequest, "resource", "*"
    ),
    _route(
        "POST",
        _Q + "|:testIamPermissions",
        "test_iam_permissions",
        _IAM.TestIamPermissionsRequest,
        "resource",
        "*",
    ),
    _route("GET", _Q + "|/tasks", "list_tasks", _V2.ListTasksRequest.pb(), "parent", None),
    _route("POST", _Q + "|/tasks", "create_task", _V2.CreateTaskRequest.pb(), "parent", "*"),
    _route("GET", _T, "get_task", _V2.GetTaskRequest.pb(), "name", None),
    _route("DELETE", _T, "delete_task", _V2.DeleteTaskRequest.pb(), "name", None),
    _route("POST", _T + "|:run", "run_task", _V2.RunTaskRequest.pb(), "name", "*"),
]

# v2beta3: only GetQueue, the one read v2 lacks (queue stats), as on the gRPC face.
BETA_ROUTES: Final[list[Route]] = [
    _route("GET", _Q, "get_queue_v2beta3", tasks_v2beta3.GetQueueRequest.pb(), "name", None),
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


def _set_path(message: Any, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


class RestGateway:
    """aiohttp handlers for the REST API, OIDC discovery and the JWKS."""

    def __init__(self, service: CloudTasksService, issuer: OidcIssuer | None = None) -> None:
        self.service = service
        self.issuer = issuer

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/v2/{path:.*}", self.handle)
        app.router.add_route("*", "/v2beta3/{path:.*}", self.handle_beta)
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/oauth2/v3/certs", self.jwks)  # Google's JWKS path, for symmetry

    async def handle(self, request: web.Request, routes: list[Route] = ROUTES) -> web.Response:
        path = request.match_info["path"]
        for route in routes:
            if route.method != request.method:
                continue
            match = route.pattern.match(path)
            if match is None:
                continue
            return await self._call(route, match["r"], request)
        return error_of(NotFound(f"No Cloud Tasks REST method {request.method} {request.path}."))

    async def handle_beta(self, request: web.Request) -> web.Response:
        return await self.handle(request, BETA_ROUTES)

    async def _call(self, route: Route, resource: str, request: web.Request) -> web.Response:
        message = route.request()
        try:
            json_format.ParseDict(
                _query_dict(route.request, request.query), message, ignore_unknown_fields=True
            )
            if route.body is not None and request.can_read_body:
                raw = await request.read()
                if raw.strip():
                    target = message if route.body == "*" else getattr(message, route.body)
                    json_format.Parse(raw, target, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, UnicodeDecodeError) as error:
            return error_of(InvalidArgument(f"Invalid JSON payload: {error}"))
        _set_path(message, route.path_field, resource)
        call: Callable[[Any], Awaitable[Any]] = getattr(self.service, route.rpc)
        try:
            reply = await call(message)
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
    RestGateway(service, issuer).add_routes(app)
    metrics.add_routes(app, service)
    return app
