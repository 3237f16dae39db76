"""A real headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot be fetched here (and ``playwright install`` is never
run): Playwright launches the system binary through ``executable_path``. The flags keep the
browser off the network (without ``--disable-background-networking`` and friends it tries
Google's services at start and its connections are refused here) and out of any profile
(Playwright gives each launch a fresh temporary user-data directory).

What a test needs beyond the fixtures in ``conftest.py``: ``BrowserLog`` (every console
error and uncaught exception of a page, failing the test unless it was expected) and
``screenshot_path`` (where a README screenshot goes).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from playwright.async_api import ConsoleMessage, Error, Page

REPO: Final = Path(__file__).resolve().parents[2]
CHROMIUM_VARIABLE: Final = "CHROMIUM"
DEFAULT_CHROMIUM: Final = "/usr/bin/chromium"
LAUNCH_ARGS: Final = (
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
INSTALL_HINT: Final = (
    "apt-get update && apt-get install -y chromium   (CI does this in .ci/run; "
    f"or point {CHROMIUM_VARIABLE}= at another Chromium binary)"
)
SCREENSHOTS: Final = REPO / "docs" / "screenshots"
UPDATE_SCREENSHOTS_VARIABLE: Final = "UPDATE_SCREENSHOTS"


def chromium_executable() -> str:
    """The browser binary, or a failure that says how to install it: browser tests are never
    skipped, a machine without Chromium fails them."""
    path = os.environ.get(CHROMIUM_VARIABLE, DEFAULT_CHROMIUM)
    found = shutil.which(path)
    if found is None:
        raise FileNotFoundError(f"Chromium not found at {path}. Install it: {INSTALL_HINT}")
    return found


@dataclass
class BrowserLog:
    """Console errors and uncaught page errors, as the page's tests must have none.

    ``expect(pattern)`` declares one the test provokes on purpose (Chromium logs every 4xx
    answer to ``fetch`` as "Failed to load resource: ... 400"), so a test of a refusal can
    still pass while any other error fails it."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})"
            self.errors.append(message.text + where)

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error.message}\n{error.stack or ''}")

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


def screenshot_path(name: str, scratch: Path) -> Path:
    """``docs/screenshots/NAME.png`` when ``UPDATE_SCREENSHOTS=1`` (``make screenshots``), else
    a scratch file: every run takes the screenshot and checks it, and only a deliberate run
    changes the committed one (its pixels differ on every run: times, ids)."""
    if os.environ.get(UPDATE_SCREENSHOTS_VARIABLE) == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / f"{name}.png"
    return scratch / f"{name}.png"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
