"""``OutboundHttp``: the app's one aiohttp session for calls that leave the service.

Cloud Storage (through ``gcloud-aio-storage``) and the provider adapters share it, so the
number of open connections is bounded by one connector however many jobs wait on a provider.
The session is created on first use, inside the running event loop (``create_app`` builds the
holder before any loop runs), and closed with the app. Source-image fetches keep their own
session: they pin checked IP addresses per request (``app.providers.fetch``).
"""

from __future__ import annotations

import aiohttp

__all__ = ["OutboundHttp"]

USER_AGENT = "daygen-queue/0.1"


class OutboundHttp:
    """A lazily opened, shared ``aiohttp.ClientSession``.

    ``trust_env=False``: no proxy or ``.netrc`` from the environment (a ``.netrc`` entry would
    attach credentials to requests we did not mean to authenticate).
    """

    def __init__(self, *, limit: int = 100, limit_per_host: int = 0) -> None:
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, limit_per_host=self._limit_per_host
                ),
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
