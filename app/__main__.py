"""``python -m app`` runs the service (REST API, task processor, Socket.IO and SSE live updates);
``python -m app token USER_ID`` prints a development token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import sys
from datetime import timedelta

from pydantic import ValidationError

from app.auth import issue_dev_token
from app.lifecycle import serve
from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings


def _hours(text: str) -> float:
    """A token lifetime: a finite number of hours above 0, at most ten years."""
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 < hours <= 24 * 366 * 10:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 87840, not {text}")
    return hours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a development JWT for USER_ID")
    token.add_argument("user_id")
    token.add_argument(
        "--hours", type=_hours, default=24.0, help="lifetime, more than 0 (default 24)"
    )
    commands.add_parser("serve", help="run the service (the default)")
    args = parser.parse_args(argv)

    # A long-lived server holding many objects collects garbage far less often than CPython's
    # default (700, 10, 10) needs; the benchmarks measure with the same thresholds.
    gc.set_threshold(50_000, 20, 100)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']).upper() or 'settings'}: "
            f"{item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        )
        print(f"configuration error: {problems}", file=sys.stderr)
        return 2
    configure_logging(json_lines=settings.is_production, level=settings.log_level)
    if args.command == "token":
        try:
            print(issue_dev_token(settings, args.user_id, ttl=timedelta(hours=args.hours)))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    # The port is taken before anything starts, so a port in use is one line, not a start-up
    # (migrations, queues) followed by a traceback.
    try:
        listener = listening_socket(settings.bind_host, settings.port)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        print(
            f"error: cannot listen on {settings.bind_host} port {settings.port} ({reason}); "
            "set PORT to use another port",
            file=sys.stderr,
        )
        return 1
    # Serving until SIGTERM/SIGINT, then a graceful stop within Cloud Run's 10 s (app.lifecycle).
    asyncio.run(
        serve(
            create_app(settings),
            listener,
            grace=settings.shutdown_grace_seconds,
            announce=lambda message: print(message, file=sys.stderr),
        )
    )
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv4 or IPv6), as aiohttp's own site would bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


if __name__ == "__main__":
    sys.exit(main())
