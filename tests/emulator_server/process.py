"""``python -m emulator`` as a real subprocess on free loopback ports, for tests and
benchmarks: started with a bounded wait for its ready line, always killed on exit."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_READY = re.compile(r"ready grpc=(?P<grpc>\S+) http=(?P<http>\S+)")


@dataclass
class EmulatorProcess:
    args: Sequence[str] = ()
    python: str = sys.executable
    startup_timeout: float = 20.0
    process: subprocess.Popen[str] | None = None
    grpc_address: str = ""
    http_address: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    def start(self) -> EmulatorProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [self.python, "-m", "emulator", "--port", "0", "--http-port", "0", *self.args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                line = self.process.stdout.readline()
                if not line:
                    break
                self.output.append(line)
                match = _READY.search(line)
                if match is not None:
                    self.grpc_address = match["grpc"]
                    self.http_address = match["http"]
                    return self
        finally:
            selector.close()
        self.kill()
        raise RuntimeError("emulator did not start:\n" + "".join(self.output))

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (clean shutdown), then SIGKILL if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._close_pipes()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the emulator can tell."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def running_emulator(*args: str) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(args=args).start()
    try:
        yield emulator
    finally:
        emulator.stop()
