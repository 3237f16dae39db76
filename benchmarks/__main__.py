"""Run every benchmark in turn: ``python -m benchmarks [--quick]`` (``make bench``).

Each one also runs alone (``python -m benchmarks.engine`` ...) and writes JSON with ``--json``;
here each writes ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODULES = [
    "engine",
    "grpc_emulator",
    "providers",
    "app_create",
    "app_end_to_end",
    "providers_e2e",
    "socketio_latency",
    "priority",
    "idempotency",
    "metrics",
]


def main() -> int:
    extra = sys.argv[1:]
    results = Path(__file__).parent / "results"
    failures = 0
    for name in MODULES:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        command = [
            sys.executable,
            "-m",
            f"benchmarks.{name}",
            "--json",
            str(results / f"{name}.json"),
        ]
        failures += subprocess.run([*command, *extra], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
