"""``GET /api/jobs/{jobId}/events``: one job's updates as server-sent events, for clients that
only have curl (``curl -N -H 'Authorization: Bearer ...'``).

The first event is the job's current state, then every update until the job is finished, then
the stream ends. Comment lines (``: heartbeat``) keep idle proxies from closing the stream.
The handler subscribes before it reads the current state, so no update can fall in between,
and drops an update older than the one it last sent (the snapshot may already be newer).

The framing is these few lines rather than aiohttp-sse's ``sse_response``: that one keeps the
stream alive with ``: ping`` comments, and clients of this endpoint read ``: heartbeat``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.api import authenticated_user
from app.api_errors import ApiError
from app.events import JOB_UPDATE_EVENT
from app.jobs.store import JobStore
from app.jobs.views import JobView, signed_job_view
from app.models import FINISHED, MAX_JOB_ID_LENGTH
from app.realtime.streams import StreamClosed, UpdateStreams
from app.services import SERVICES

SSE_ROUTE = "/api/jobs/{job_id}/events"
HEARTBEAT = b": heartbeat\n\n"


def sse_event(update: JobView) -> bytes:
    """One ``jobUpdate`` event; the id lets a client tell repeats apart."""
    data = json.dumps(update, separators=(",", ":"))
    return f"event: {JOB_UPDATE_EVENT}\nid: {update['updatedAt']}\ndata: {data}\n\n".encode()


def is_finished(update: JobView) -> bool:
    return update["status"] in FINISHED


def is_stale(update: JobView, last: JobView) -> bool:
    """Older than (or the same as) what the client already has."""
    if update == last:
        return True
    return update["updatedAt"] < last["updatedAt"]


def sse_handler(
    streams: UpdateStreams, store: JobStore, heartbeat_seconds: float
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def job_events(request: web.Request) -> web.StreamResponse:
        user_id = await authenticated_user(request)
        job_id = request.match_info["job_id"]
        with streams.subscribe(job_id) as stream:
            job = (
                await store.get_user_job(user_id, job_id)
                if len(job_id) <= MAX_JOB_ID_LENGTH
                else None
            )
            if job is None:
                raise ApiError(404, "not_found", f"no job {job_id!r}")
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
                }
            )
            await response.prepare(request)
            last = await signed_job_view(job, request.app[SERVICES].storage)
            await response.write(sse_event(last))
            try:
                while not is_finished(last):
                    try:
                        update = await stream.get(heartbeat_seconds)
                    except TimeoutError:
                        await response.write(HEARTBEAT)
                        continue
                    if is_stale(update, last):
                        continue
                    last = update
                    await response.write(sse_event(update))
            except (StreamClosed, ConnectionResetError):
                return response
            await response.write_eof()
            return response

    return job_events
