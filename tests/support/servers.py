"""Starting a local aiohttp server and waiting for a service to be healthy: the two things
every test fixture and benchmark that runs a server needs, written once.

Everything binds 127.0.0.1 (tests and benchmarks never leave loopback); port 0 lets the
kernel pick a free port, read back through aiohttp's public ``AppRunner.addresses``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web


async def start_site(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port``; returns the runner (``await runner.cleanup()`` stops
    it) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound: int = runner.addresses[0][1]
    return runner, bound


async def wait_healthy(
    url: str,
    *,
    timeout: float = 30.0,
    alive: Callable[[], bool] = lambda: True,
    path: str = "/healthz",
) -> None:
    """Until ``url + path`` answers 200, bounded by ``timeout`` seconds. ``alive`` says whether
    the process behind it still runs: a server that exited fails at once instead of after the
    timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while loop.time() < deadline:
            if not alive():
                raise RuntimeError(f"the server behind {url} exited before it was healthy")
            try:
                async with http.get(url + path) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            # A bounded readiness poll: a starting process offers nothing to wait on.
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url}{path} did not answer 200 within {timeout:g}s")
