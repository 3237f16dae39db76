"""A tiny read-only HTML page on the HTTP port (``/``): queues with their config and live
stats, and the most recent events from the engine's observer stream. It refreshes itself;
there is nothing to click, because every change goes through the API like in Cloud Tasks."""

from __future__ import annotations

import html
from typing import Final

from aiohttp import web

from emulator.service import CloudTasksService

RECENT_EVENTS: Final = 50
_STYLE: Final = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:2em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f3f3f3}.PAUSED{color:#b60}.DISABLED{color:#999}"
)


def render(service: CloudTasksService) -> str:
    engine = service.engine
    rows = []
    for parent in service.known_parents():
        for record in engine.list_queues(parent):
            stats = engine.queue_stats(record.name)
            rate, retry = record.rate_limits, record.retry_config
            rows.append(
                "<tr>"
                f"<td>{html.escape(record.name)}</td>"
                f"<td class={record.state.name}>{record.state.name}</td>"
                f"<td>{rate.max_dispatches_per_second:g}/s, burst {rate.max_burst_size}, "
                f"{rate.max_concurrent_dispatches} concurrent</td>"
                f"<td>{retry.max_attempts} attempts, {retry.min_backoff.total_seconds():g}s"
                f"&ndash;{retry.max_backoff.total_seconds():g}s, "
                f"{retry.max_retry_duration.total_seconds():g}s max</td>"
                f"<td>{stats.tasks_count}</td><td>{stats.concurrent_dispatches_count}</td>"
                f"<td>{stats.executed_last_minute_count}</td>"
                "</tr>"
            )
    events = list(engine.events)[-RECENT_EVENTS:]
    event_rows = [
        "<tr>"
        f"<td>{event.time.isoformat(timespec='milliseconds')}</td>"
        f"<td>{event.kind.value}</td><td>{html.escape(event.queue)}</td>"
        f"<td>{html.escape(event.task or '')}</td><td>{event.attempt or ''}</td>"
        f"<td>{'' if event.status is None else event.status}</td>"
        f"<td>{html.escape(event.detail)}</td>"
        "</tr>"
        for event in reversed(events)
    ]
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        "<meta http-equiv=refresh content=2><title>Cloud Tasks emulator</title>"
        f"<style>{_STYLE}</style></head><body><h1>Cloud Tasks emulator</h1>"
        "<h2>Queues</h2><table><tr><th>queue</th><th>state</th><th>rate limits</th>"
        "<th>retry</th><th>tasks</th><th>in flight</th><th>done last minute</th></tr>"
        + ("".join(rows) or "<tr><td colspan=7>no queues yet</td></tr>")
        + "</table><h2>Recent events</h2><table><tr><th>time</th><th>event</th><th>queue</th>"
        "<th>task</th><th>attempt</th><th>status</th><th>detail</th></tr>"
        + "".join(event_rows)
        + "</table></body></html>"
    )


def add_routes(app: web.Application, service: CloudTasksService) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render(service), content_type="text/html")

    app.router.add_get("/", page)
