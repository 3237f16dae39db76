"""``python -m emulator``: a local Google Cloud Tasks on gRPC (and REST), for development and
for testing any official client against the same engine as the in-process backend.

    python -m emulator --port 8123 --http-port 8124 --db var/tasks.db --queues queues.toml

The HTTP port also serves the console at ``/`` (queues, tasks, live events, actions) and
Prometheus metrics at ``/metrics``.

Prints one ready line (``cloud-tasks-emulator ready grpc=HOST:PORT http=HOST:PORT``) once
both ports accept requests; stops cleanly on SIGTERM / SIGINT (flushing the store). A port
that cannot be listened on (already in use) is one line on stderr naming the port and the
flag that sets it, and exit status 2, as for a bad ``--queues`` file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

import grpc
from aiohttp import web

from emulator import console, rules
from emulator.dispatch import HttpDispatcher
from emulator.engine import DEFAULT_APP_ENGINE_HOST, Engine
from emulator.errors import NotFound
from emulator.grpc_server import build_server
from emulator.oidc import GOOGLE_ISSUER, OidcIssuer
from emulator.operations import DEFAULT_RETENTION
from emulator.queues_file import QueuesFileError, load_queue_specs
from emulator.rest import build_app
from emulator.service import CloudTasksService
from emulator.store import MemoryStore, Store

log = logging.getLogger("emulator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cloud-tasks-emulator",
        description="A local Google Cloud Tasks (v2 and v2beta3 APIs).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8123, help="gRPC port (0 = any free port)")
    parser.add_argument(
        "--http-port",
        type=int,
        default=8124,
        help="REST + OIDC discovery/JWKS port (0 = any free port, -1 = off)",
    )
    parser.add_argument("--db", default=None, help="SQLite file to keep state across restarts")
    parser.add_argument("--queues", default=None, help="TOML file of queues to create or update")
    parser.add_argument("--project", default="local-project", help="project for --queues")
    parser.add_argument("--location", default="local", help="location for --queues")
    parser.add_argument(
        "--task-tombstone-ttl",
        type=float,
        default=rules.DEFAULT_TASK_TOMBSTONE_TTL.total_seconds(),
        help="seconds a finished or deleted task's name stays reserved (default 3600)",
    )
    parser.add_argument(
        "--queue-tombstone-ttl",
        type=float,
        default=rules.DEFAULT_QUEUE_TOMBSTONE_TTL.total_seconds(),
        help="seconds a deleted queue's name stays reserved (default 7 days)",
    )
    parser.add_argument("--oidc-issuer", default=GOOGLE_ISSUER, help="iss of minted OIDC tokens")
    parser.add_argument(
        "--app-engine-host",
        default=DEFAULT_APP_ENGINE_HOST,
        help="where App Engine tasks are delivered (default http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--operation-retention",
        type=float,
        default=DEFAULT_RETENTION.total_seconds(),
        help="seconds a batch operation stays readable by GetOperation (default 86400)",
    )
    parser.add_argument(
        "--operation-polls",
        type=int,
        default=0,
        help="answers that report a batch operation still RUNNING before it is done "
        "(default 0: done at once)",
    )
    parser.add_argument(
        "--no-batch-scheduling",
        action="store_true",
        help="leave the process on the default CPU scheduling policy (see batch_scheduling)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def apply_queues_file(engine: Engine, path: str, parent: str) -> list[str]:
    """Create or update every queue of the file (UpdateQueue is an upsert). Returns names."""
    names = []
    for spec in load_queue_specs(path, parent):
        try:
            engine.get_queue(spec.name)
        except NotFound:
            await engine.create_queue(spec)
        else:
            await engine.update_queue(spec)
        names.append(spec.name)
    return names


class PortUnavailable(Exception):
    """A port given on the command line cannot be listened on; the message names the port
    and the flag that sets it."""


async def listen(
    service: CloudTasksService, issuer: OidcIssuer, args: argparse.Namespace
) -> tuple[grpc.aio.Server, int, web.AppRunner | None, int]:
    """Start the gRPC server and, unless ``--http-port -1``, the REST one. Returns both and
    their bound ports (-1: no REST)."""
    address = f"{args.host}:{args.port}"
    grpc_refused = PortUnavailable(
        f"cannot listen for gRPC on {address} (in use, or not an address of this host); "
        "choose another with --port (0 picks a free port)"
    )
    # Tried here first: gRPC's core would log its own multi-line error before failing.
    if args.port and not _can_listen(args.host, args.port):
        raise grpc_refused
    try:
        server, grpc_port = build_server(service, address)
    except (OSError, RuntimeError):  # grpc.aio raises RuntimeError("Failed to bind ...")
        raise grpc_refused from None
    await server.start()
    if args.http_port < 0:
        return server, grpc_port, None, -1
    app = build_app(service, issuer)
    console.add_routes(app, service)  # the console at /, beside the REST face it calls
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.http_port, reuse_port=False)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        await server.stop(None)
        raise PortUnavailable(
            f"cannot listen for REST on {args.host}:{args.http_port} "
            f"({error.strerror or error}); choose another with --http-port "
            "(0 picks a free port, -1 turns REST off)"
        ) from None
    http_port: int = runner.addresses[0][1]
    return server, grpc_port, runner, http_port


def _can_listen(host: str, port: int) -> bool:
    try:
        socket.create_server((host, port)).close()
    except OSError:
        return False
    return True


async def serve(args: argparse.Namespace) -> int:
    store: Store
    if args.db:
        from emulator.sqlite_store import SqliteStore

        store = SqliteStore(args.db)
    else:
        store = MemoryStore()
    issuer = OidcIssuer(issuer=args.oidc_issuer)
    tombstone_ttl = timedelta(seconds=args.task_tombstone_ttl)
    engine = Engine(
        dispatcher=HttpDispatcher(),
        store=store,
        token_minter=issuer,
        task_tombstone_ttl=tombstone_ttl,
        queue_tombstone_ttl=timedelta(seconds=args.queue_tombstone_ttl),
        app_engine_host=args.app_engine_host,
        event_history=10_000,
    )
    await engine.start()
    service = CloudTasksService(
        engine,
        default_location=args.location,
        task_tombstone_ttl=tombstone_ttl,
        operation_retention=timedelta(seconds=args.operation_retention),
        pending_operation_polls=args.operation_polls,
    )
    parent = f"projects/{args.project}/locations/{args.location}"
    service.note_parent(parent)
    if args.queues:
        try:
            await apply_queues_file(engine, args.queues, parent)
        except (QueuesFileError, OSError) as error:
            print(f"cloud-tasks-emulator: {error}", file=sys.stderr)
            await engine.close()
            return 2
    try:
        server, grpc_port, runner, http_port = await listen(service, issuer, args)
    except PortUnavailable as error:
        print(f"cloud-tasks-emulator: {error}", file=sys.stderr)
        await engine.close()
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    http = f"{args.host}:{http_port}" if http_port >= 0 else "off"
    print(
        f"cloud-tasks-emulator ready grpc={args.host}:{grpc_port} http={http}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop(grace=1.0)
        if runner is not None:
            await runner.cleanup()
        await engine.close()
    return 0


# A long-lived server holding many tasks: collect garbage far less often than CPython's
# default (700, 10, 10), which otherwise rescans every pending task thousands of times.
GC_THRESHOLDS = (50_000, 20, 100)


def batch_scheduling() -> bool:
    """Put the process on Linux's SCHED_BATCH policy before any thread starts (threads
    inherit it). Returns whether it took.

    grpc.aio completes RPCs on threads of its own (a completion-queue poller and the
    EventEngine's pool) and hands each completion to the event loop's thread. On the default
    policy every hand-off lets the woken thread preempt the loop mid-handler: about 14
    context switches per CreateTask, measured with ``benchmarks/grpc_emulator.py``. A batch
    thread never preempts on waking, so completions wait for the loop to block and are taken
    several at a time: about 3 switches per CreateTask, and a third less CPU for the gRPC
    stack. The cost is latency when the machine's CPUs are all busy: a woken thread waits
    for the running one's time slice (milliseconds) instead of cutting in. Same nice value,
    same share of the CPU."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:  # not Linux
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    gc.set_threshold(*GC_THRESHOLDS)
    if not args.no_batch_scheduling:
        batch_scheduling()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    code = 1
    with contextlib.suppress(KeyboardInterrupt):
        code = run(serve(args))
    sys.exit(code)


def run(main: Coroutine[Any, Any, int]) -> int:
    """On uvloop when it is installed: grpc.aio spends ~20% less CPU per RPC on it (measured
    by ``benchmarks/grpc_emulator.py``); plain asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: int = uvloop.run(main)
    return result


if __name__ == "__main__":
    main()
