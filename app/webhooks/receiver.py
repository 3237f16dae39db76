"""``python -m app.webhooks.receiver``: a webhook receiver for trying webhooks locally.

It listens on ``--host``/``--port`` (``127.0.0.1:8099``), verifies each POST with the
``standardwebhooks`` package and the secret in ``WEBHOOK_SECRET`` (from
``GET /api/webhooks/secret``; an environment variable, so it never shows in a process list),
prints one line per delivery and answers 204, or 400 when the signature does not verify (the
service then retries). ``--fail N`` answers 500 to the first N deliveries, to watch retries.
"""

from __future__ import annotations

import argparse
import os
import sys

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


def receiver_app(secret: str, *, fail: int = 0) -> web.Application:
    webhook = Webhook(secret)
    failures = {"left": fail}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "?")
        if failures["left"] > 0:
            failures["left"] -= 1
            print(f"answered 500 to {webhook_id} (as asked by --fail)", flush=True)
            return web.Response(status=500)
        try:
            event = webhook.verify(body, dict(request.headers))
        except WebhookVerificationError as error:
            print(f"rejected {webhook_id}: {error}", flush=True)
            return web.Response(status=400)
        data = event.get("data", {})
        print(
            f"verified {event.get('type')} job {data.get('jobId')} {data.get('status')}"
            f" progress {data.get('progress')} (webhook-id {webhook_id})",
            flush=True,
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.webhooks.receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--fail", type=int, default=0, help="answer 500 to the first N")
    args = parser.parse_args(argv)
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        print("set WEBHOOK_SECRET to the key of GET /api/webhooks/secret", file=sys.stderr)
        return 2
    web.run_app(
        receiver_app(secret, fail=args.fail),
        host=args.host,
        port=args.port,
        print=lambda text: print(text, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
