"""What the browser tests share: Debian's Chromium (not Playwright's download) found or the test
failed/skipped, one headless browser per module driven by Playwright, and `tokneigh serve` run
as a user runs it (``served``).

Import the fixtures into a test module (``from browser import browser, chromium``); ``chromium``
is autouse there, so a module without the browser skips, or fails under CI's
TOKNEIGH_REQUIRE_BROWSER=1 instead of passing silently.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """Debian's Chromium and Playwright, or a skip; CI sets TOKNEIGH_REQUIRE_BROWSER=1 so a
    missing browser fails there instead of passing silently."""
    path = shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        why = "needs Debian's chromium and the playwright package"
        if os.environ.get("TOKNEIGH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TOKNEIGH_REQUIRE_BROWSER=1, but this test {why}")
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a loaded CI machine: the default 5 s is tight
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def served(args: list[str], cache: Path, log: Path) -> Iterator[str]:
    """`tokneigh serve ARGS --port 0` with ``cache`` as its cache, its stderr in ``log``; yields
    its URL (the first line of its stdout), and stops it afterwards."""
    env = {**os.environ, "TOKNEIGH_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "tokneigh", "serve", *args, "--port", "0"]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # the server exited

    threading.Thread(target=pump, daemon=True).start()
    try:
        try:
            line = lines.get(timeout=120)
        except queue.Empty:
            line = None
        if line is None or not line.startswith("http://"):
            pytest.fail(f"tokneigh serve printed no URL: {line!r}\n{log.read_text()}")
        yield line.strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
