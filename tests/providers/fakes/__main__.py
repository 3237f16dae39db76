"""``python -m tests.providers.fakes``: the three fake providers and fake-gcs-server, standalone
on 127.0.0.1, for running the app against them by hand.

Prints the environment block that points the app at them, then serves until interrupted.
With ``--run-app`` (``make run-fakes``) it also starts ``python -m app`` with that block (the
three keys set, results in the fake bucket) and stops both together. Every task succeeds with
the default scripts; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys

from tests.providers.fakes.bfl import FakeBfl
from tests.providers.fakes.gcs import FakeGcsServer
from tests.providers.fakes.replicate import FakeReplicate
from tests.providers.fakes.runway import FakeRunway


async def serve(args: argparse.Namespace) -> None:
    bfl, runway, replicate = FakeBfl(), FakeRunway(), FakeReplicate()
    await bfl.start(args.bfl_port)
    await runway.start(args.runway_port)
    await replicate.start(args.replicate_port)
    gcs = None
    if not args.no_gcs:
        gcs = FakeGcsServer(args.gcs_port)
        gcs.start()
        gcs.create_bucket(args.bucket)
    lines = [
        f"BFL_API_KEY={bfl.api_key}",
        f"BFL_API_URL={bfl.url}",
        f"RUNWAYML_API_SECRET={runway.api_secret}",
        f"RUNWAYML_BASE_URL={runway.url}",
        f"REPLICATE_API_TOKEN={replicate.api_token}",
        f"REPLICATE_BASE_URL={replicate.url}",
    ]
    # The fakes serve result files on loopback: exempt them from the private-address refusal.
    hosts = [fake.url.removeprefix("http://") for fake in (bfl, runway, replicate)]
    lines.append(f"FETCH_ALLOW_HOSTS={','.join(hosts)}")
    if gcs is not None:
        lines += [f"STORAGE_URL=gs://{args.bucket}/media", f"STORAGE_EMULATOR_HOST={gcs.url}"]
    print("\n".join(f"export {line}" for line in lines), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = start_app(lines) if args.run_app else None
    try:
        if app is None:
            await stop.wait()
        else:
            exited = asyncio.ensure_future(asyncio.to_thread(app.wait))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
    finally:
        if app is not None and app.poll() is None:
            app.terminate()
            await asyncio.to_thread(app.wait, 30)
        for fake in (bfl, runway, replicate):
            await fake.stop()
        if gcs is not None:
            gcs.stop()


def start_app(lines: list[str]) -> subprocess.Popen[bytes]:
    """``python -m app`` with the block's variables added to this environment."""
    env = dict(os.environ)
    for line in lines:
        name, value = line.split("=", 1)
        env[name] = value
    return subprocess.Popen([sys.executable, "-m", "app"], env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bfl-port", type=int, default=8701)
    parser.add_argument("--runway-port", type=int, default=8702)
    parser.add_argument("--replicate-port", type=int, default=8703)
    parser.add_argument("--gcs-port", type=int, default=8704)
    parser.add_argument("--bucket", default="daygen-local")
    parser.add_argument("--no-gcs", action="store_true", help="no fake-gcs-server")
    parser.add_argument(
        "--run-app", action="store_true", help="also run python -m app against the fakes"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
