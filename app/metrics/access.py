"""Who may read ``/metrics``: the bearer token ``METRICS_TOKEN``, or a peer in
``METRICS_ALLOWED_NETWORKS``; with neither, open outside production and closed in it."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from app.metrics.registry import AppMetrics
from app.settings import Settings

METRICS_PATH = "/metrics"


def may_read(settings: Settings, remote: str | None, authorization: str | None) -> bool:
    """The access rule of ``/metrics``: the bearer token ``METRICS_TOKEN``, or a peer address
    in ``METRICS_ALLOWED_NETWORKS``. With neither configured it is open outside production
    and closed in production."""
    token = settings.metrics_token
    networks = settings.metrics_allowed_networks
    if token is None and not networks:
        return not settings.is_production
    if token is not None and authorization is not None:
        scheme, _, given = authorization.partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return True
    if networks and remote:
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in networks)
    return False


def metrics_handler(
    settings: Settings, metrics: AppMetrics
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def scrape(request: web.Request) -> web.StreamResponse:
        if not may_read(settings, request.remote, request.headers.get("Authorization")):
            return _refused(settings)
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response

    return scrape


def _refused(settings: Settings) -> web.Response:
    if settings.metrics_token is None and not settings.metrics_allowed_networks:
        message = "metrics are closed in production: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS"
        return web.json_response({"error": "forbidden", "message": message}, status=403)
    if settings.metrics_token is not None:
        return web.json_response(
            {"error": "unauthorized", "message": "a valid METRICS_TOKEN bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return web.json_response(
        {"error": "forbidden", "message": "this address may not read metrics"}, status=403
    )


def add_metrics_route(app: web.Application, settings: Settings, metrics: AppMetrics) -> None:
    app.router.add_get(METRICS_PATH, metrics_handler(settings, metrics))
