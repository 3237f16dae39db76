"""What an ``Idempotency-Key`` costs on job creation.

    python -m benchmarks.idempotency [--quick] [--repeat N] [--json PATH]

``POST /api/jobs/image-generation`` requests/s, 50 concurrent clients, against one app process
on SQLite (its queues paused, as in ``benchmarks.app_create``), in three workloads measured
in the same run: no key (the baseline), a new key on every request (one more INSERT and, for
the group of concurrent creations, nothing else), and the same key sent again (a replay: the
key row and the job read back, nothing created). Ratios are against the baseline.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from typing import Any

import aiohttp

from benchmarks.app_create import BODY, CLIENTS, start
from benchmarks.common import (
    free_port,
    median,
    parser,
    print_table,
    user_tokens,
    wait_ready,
    write_json,
)


async def hammer(base: str, tokens: list[str], count: int, mode: str) -> float:
    """``count`` creations from one client per token; returns requests/s."""
    remaining = count
    replay_keys = {token: f"replay-{uuid.uuid4()}" for token in tokens}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def post(token: str, key: str | None, replay: bool = False) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            if key is not None:
                headers["Idempotency-Key"] = key
            url = f"{base}/api/jobs/image-generation"
            async with http.post(url, json=BODY, headers=headers) as response:
                await response.read()
                if response.status != 202:
                    raise RuntimeError(f"create answered {response.status}")
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                if replay and not replayed:
                    raise RuntimeError("a replay was not answered as one")

        if mode == "replay":  # each client's key made once, before the clock starts
            await asyncio.gather(*(post(token, replay_keys[token]) for token in tokens))

        async def client(token: str) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                key = {"none": None, "new": str(uuid.uuid4()), "replay": replay_keys[token]}[mode]
                await post(token, key, replay=mode == "replay")

        started = time.perf_counter()
        await asyncio.gather(*(client(token) for token in tokens))
        return count / (time.perf_counter() - started)


async def run(requests: int, repeat: int) -> dict[str, Any]:

    tokens = user_tokens(CLIENTS)
    runs: dict[str, list[float]] = {"none": [], "new": [], "replay": []}
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        process = start("app", port, workdir)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base, process)
            await hammer(base, tokens, max(200, requests // 10), "none")  # warm-up
            for _ in range(repeat):
                for mode in runs:  # interleaved, so drift hits every workload alike
                    runs[mode].append(await hammer(base, tokens, requests, mode))
        finally:
            process.terminate()
            process.wait(timeout=30)
    medians = {mode: median(values) for mode, values in runs.items()}
    return {
        "clients": CLIENTS,
        "requests_per_run": requests,
        "repeat": repeat,
        "rps_runs": runs,
        "rps": medians,
        "ratio_new_key": medians["new"] / medians["none"],
        "ratio_replay": medians["replay"] / medians["none"],
    }


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    requests = 500 if args.quick else 3000
    result = asyncio.run(run(requests, args.repeat))
    rps = result["rps"]
    print_table(
        f"Job creation with Idempotency-Key, {CLIENTS} concurrent clients, SQLite, queues paused "
        f"(median of {args.repeat})",
        [
            {"workload": "no key (baseline)", "requests/s": rps["none"], "ratio": 1.0},
            {
                "workload": "a new key per request",
                "requests/s": rps["new"],
                "ratio": result["ratio_new_key"],
            },
            {
                "workload": "the same key again (replay)",
                "requests/s": rps["replay"],
                "ratio": result["ratio_replay"],
            },
        ],
    )
    write_json(args.json, {"idempotency": result})


if __name__ == "__main__":
    main()
