"""The page names a query the model cannot see (issue 20, case 13): "😀" on all-MiniLM-L6-v2
becomes [UNK]; the page shows a notice naming the text and marks the chip, in the neighbours
and compare views, and shows none for a text the model sees. Same server, browser and style as
tests/test_serve_browser.py (headless Debian Chromium via Playwright, or a skip)."""

from __future__ import annotations

import re
from typing import Any

import test_serve_browser as shared

# The same fixtures (module-scoped here too: one server and one browser for this file).
chromium, server, browser, ok = shared.chromium, shared.server, shared.browser, shared.ok
SHARED_CACHE = True


def test_the_page_says_when_a_query_became_the_unknown_token(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    notice = page.locator("#notice")

    # The server's JSON first: the field, and where it points.
    answer = ok(server, "neighbors", q="king 😀")
    assert answer["query_unknown"] == [1] and answer["query_tokens"][1] == "[UNK]"
    assert "query_unknown" not in ok(server, "neighbors", q="king")

    page.goto(server + "?q=" + "king%20%F0%9F%98%80")
    expect(page.locator("#neighbors tr.neighbor")).to_have_count(20)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text('"king 😀"')
    expect(notice).to_contain_text("[UNK]")
    expect(page.locator("#tokens .chip.unknown")).to_have_count(1)
    expect(page.locator("#tokens .chip.unknown .chip-id")).to_have_text(
        [str(answer["query_ids"][1])])

    # A query the model sees: no notice, no marked chip.
    page.fill("#query", "king")
    page.press("#query", "Enter")
    expect(page).to_have_url(re.compile(r"/\?q=king$"))
    expect(page.locator("#tokens .chip")).to_have_count(1)
    expect(notice).to_be_hidden()
    expect(page.locator("#tokens .chip.unknown")).to_have_count(0)

    # Compare two texts the model cannot see: the answer (cosine 1) and a notice for each.
    page.click("[data-view=compare]")
    page.fill("#compare-a", "😀")
    page.fill("#compare-b", "🎉")
    page.press("#compare-b", "Enter")
    compared = ok(server, "compare", a="😀", b="🎉")
    assert compared["a"]["unknown"] == [0] and compared["b"]["unknown"] == [0]
    expect(page.locator("#compare-result [data-measure=cosine]")).to_have_text(
        f"{compared['cosine']:.3f}")
    expect(notice.locator("p")).to_have_count(2)
    expect(notice.locator("p").nth(0)).to_contain_text('"😀"')
    expect(notice.locator("p").nth(1)).to_contain_text('"🎉"')
    expect(page.locator("#compare-result .chip.unknown")).to_have_count(2)

    # Analogy with an unknown term.
    page.click("[data-view=analogy]")
    page.fill("#analogy-a", "😀")
    page.fill("#analogy-b", "king")
    page.fill("#analogy-c", "woman")
    page.press("#analogy-c", "Enter")
    expect(page.locator("#analogy-result tr.neighbor").first).to_be_visible()
    expect(notice.locator("p")).to_have_count(1)
    expect(notice).to_contain_text('"😀"')
    assert failures == []
    page.close()
