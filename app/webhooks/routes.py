"""The webhook routes: the owner's signing secret (read, rotate) and the internal endpoint
where ``webhook-delivery-queue`` delivers its tasks."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from app.api import authenticated_user
from app.outbound import OutboundHttp
from app.providers.guard import FetchGuard
from app.services import SERVICES
from app.webhooks import delivery, secrets
from daygen_queue import InvalidDelivery, TaskDelivery


async def get_secret(request: web.Request) -> web.Response:
    """``GET /api/webhooks/secret``: ``{"key": "whsec_..."}``, made on first request."""
    user_id = await authenticated_user(request)
    store = request.app[SERVICES].store
    key = await secrets.current_secret(store.db, user_id, store.clock.now())
    return web.json_response({"key": key}, headers={"Cache-Control": "no-store"})


async def rotate_secret(request: web.Request) -> web.Response:
    """``POST /api/webhooks/secret/rotate``: a new secret; the old one signs beside it for
    24 hours."""
    user_id = await authenticated_user(request)
    store = request.app[SERVICES].store
    key = await secrets.rotate_secret(store.db, user_id, store.clock.now())
    return web.json_response({"key": key}, headers={"Cache-Control": "no-store"})


async def handle_delivery(request: web.Request, outbound: OutboundHttp) -> web.Response:
    """``POST /internal/webhooks/deliver``: one attempt of one delivery task."""
    services = request.app[SERVICES]
    refused = await services.internal.refusal(request.headers)
    if refused is not None:
        return refused
    try:
        attempt = TaskDelivery.from_headers(request.headers).attempt
        task = delivery.DeliveryTask.model_validate_json(await request.read())
    except (InvalidDelivery, ValidationError) as error:
        return web.json_response({"error": "invalid_task", "message": str(error)}, status=400)
    store = services.store
    keys = await secrets.signing_secrets(store.db, task.user_id, store.clock.now())
    outcome = await delivery.deliver(
        task,
        attempt=attempt,
        secrets=keys,
        guard=FetchGuard.from_settings(services.settings),
        session=outbound.session,
    )
    services.metrics.webhook_delivery(outcome.result)
    body: dict[str, str] = {"result": outcome.result}
    if outcome.detail:
        body["detail"] = outcome.detail
    return web.json_response(body, status=outcome.status)


def webhook_routes(outbound: OutboundHttp) -> list[web.RouteDef]:
    """The routes; deliveries go out on ``outbound``'s session (the app's shared one)."""

    async def deliver(request: web.Request) -> web.Response:
        return await handle_delivery(request, outbound)

    return [
        web.get("/api/webhooks/secret", get_secret),
        web.post("/api/webhooks/secret/rotate", rotate_secret),
        web.post(delivery.DELIVER_PATH, deliver),
    ]
