"""What the browser tests share: Debian's Chromium (not Playwright's download) found or the test
failed/skipped, and one headless browser per module driven by Playwright.

Import the fixtures into a test module (``from browser import browser, chromium``); ``chromium``
is autouse there, so a module without the browser skips, or fails under CI's
TOKNEIGH_REQUIRE_BROWSER=1 instead of passing silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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
