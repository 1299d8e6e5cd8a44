"""The page of `tokneigh serve` in a real browser: headless Chromium (Debian's, not Playwright's
download) driven by Playwright, against a real server on all-MiniLM-L6-v2.

One server and one browser per module, and one scenario that walks through the views, so the
file stays cheap. What the page shows is checked against independent references: the Python
API for the first list, the server's JSON (fetched with urllib) for the rest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import browser as shared_browser
import pytest

PNG = shared_browser.PNG
# The fixtures (one browser per module; chromium found, or a skip/fail).
chromium, browser = shared_browser.chromium, shared_browser.browser


@pytest.fixture(scope="module")
def server(minilm_dir: Path, module_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """`tokneigh serve` on a free port; yields its URL (the first line of its stdout)."""
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    args = ["--model", str(minilm_dir), "--metric", "cosine", "--metric", "centered"]
    with shared_browser.served(args, module_cache, log) as url:
        yield url


def api(base: str, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """The server's own answer (status, JSON), as the page fetches it."""
    url = f"{base}api/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ok(base: str, path: str, **params: Any) -> dict[str, Any]:
    status, data = api(base, path, **params)
    assert status == 200, data
    return data


def expect_rows(rows: Any, neighbors: list[dict[str, Any]]) -> None:
    """The rows show exactly these neighbours, in order: ids, real texts (the link titles),
    similarities to 3 decimals, and links that query each by id."""
    from playwright.sync_api import expect

    expect(rows.locator("td.id")).to_have_text([str(n["id"]) for n in neighbors])
    links = rows.locator("a.token-link")
    assert links.evaluate_all("els => els.map(e => e.title)") == [n["token"] for n in neighbors]
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    asked = [urllib.parse.parse_qs(urllib.parse.urlsplit(h).query)["q"] for h in hrefs]
    assert asked == [[f"#{n['id']}"] for n in neighbors]
    shown = rows.locator("td.sim .value").all_text_contents()
    assert shown == [f"{n['similarity']:.3f}" for n in neighbors]


def test_the_page_walks_through_every_view(
    server: str, browser: Any, minilm_dir: Path, module_cache: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    import tokneigh
    from tokneigh.analyses.filters import Filters

    base = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    page.on("dialog", lambda dialog: failures.append(f"dialog {dialog.message}"))
    health = ok(base, "health")

    # The header and the metric select come from /api/health.
    page.goto(base)
    shape = f"{health['vocab_size']:,} tokens × {health['dim']} dims"
    expect(page.locator("#model-info")).to_contain_text(shape)
    expect(page.locator("#model-info")).to_contain_text(f"{health['embeddings']} embeddings")
    expect(page.locator("#metric option")).to_have_text(health["metrics"])

    # king: the neighbour list equals the Python API's, special tokens hidden as the server does.
    page.fill("#query", "king")
    page.press("#query", "Enter")
    expect(page).to_have_url(re.compile(r"/\?q=king$"))
    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    ref = emb.neighbors("king", k=20, filters=Filters(skip_special=True)).to_json()["neighbors"]
    rows = page.locator("#neighbors tr.neighbor")
    expect_rows(rows, ref)
    # One model: no second column, no Drift view (those are --against's).
    expect(page.locator("#pair-col")).to_be_hidden()
    expect(page.locator("#tab-drift")).to_be_hidden()
    tokenized = ok(base, "tokenize", q="king")
    chips = page.locator("#tokens .chip")
    expect(chips).to_have_count(len(tokenized["ids"]))
    expect(chips.locator(".chip-id")).to_have_text([str(i) for i in tokenized["ids"]])

    # The map: one circle per neighbour (the query's own token left out), one query mark,
    # each point a link to the neighbour the map answer puts there.
    mapped = ok(base, "map", q="king", k=20, metric="cosine")["neighbors"]
    expect(page.locator("#map circle.point")).to_have_count(len(mapped))
    assert len(mapped) == 20
    expect(page.locator("#map .query-point")).to_have_count(1)
    hrefs = page.locator("#map a.map-link").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    assert sorted(hrefs) == sorted(f"?q=%23{n['id']}" for n in mapped)
    expect(page.locator("#map a.map-link title")).to_have_count(20)
    shot = tmp_path / "neighbors-king.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(PNG)
    if os.environ.get("TOKNEIGH_SCREENSHOT"):
        shutil.copy(shot, os.environ["TOKNEIGH_SCREENSHOT"])

    # Clicking the 2nd neighbour makes it the query, by id, without reloading the page.
    page.evaluate("window.__same_document = true")
    second = ref[1]
    rows.nth(1).locator("a.token-link").click()
    expect(page).to_have_url(re.compile(rf"/\?q=%23{second['id']}$"))
    expect(page.locator("#query")).to_have_value(f"#{second['id']}")
    expect_rows(rows, ok(base, "neighbors", q=f"#{second['id']}", k=20)["neighbors"])
    expect(chips).to_have_count(1)
    expect(chips.locator(".chip-id")).to_have_text([str(second["id"])])

    # Back: king's list again, the box shows king, still the same document.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?q=king$"))
    expect(page.locator("#query")).to_have_value("king")
    expect_rows(rows, ref)
    assert page.evaluate("window.__same_document") is True

    # A map point is a link too: the one farthest from the query mark, which nothing covers.
    star = page.locator("#map .query-point").bounding_box()
    boxes = page.locator("#map circle.point").evaluate_all(
        "els => els.map(e => { const b = e.getBoundingClientRect();"
        " return [b.x + b.width / 2, b.y + b.height / 2]; })"
    )
    sx, sy = star["x"] + star["width"] / 2, star["y"] + star["height"] / 2
    far = max(range(len(boxes)), key=lambda i: (boxes[i][0] - sx) ** 2 + (boxes[i][1] - sy) ** 2)
    far_href = page.locator("#map a.map-link").nth(far).get_attribute("href")
    page.locator("#map circle.point").nth(far).click()
    expect(page).to_have_url(re.compile(re.escape(far_href) + "$"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?q=king$"))

    # Controls: k and dedupe change the list and the URL (defaults stay out of it).
    page.fill("#k", "5")
    page.press("#k", "Enter")
    page.check("#dedupe")
    expect(page).to_have_url(re.compile(r"/\?q=king&k=5&dedupe=1$"))
    expect_rows(rows, ok(base, "neighbors", q="king", k=5, dedupe=1)["neighbors"])
    expect(page.locator("#map circle.point")).to_have_count(5)
    page.fill("#k", "20")
    page.press("#k", "Enter")
    page.uncheck("#dedupe")
    expect(page).to_have_url(re.compile(r"/\?q=king$"))

    # Compare king and queen: the measures are the API's, the scatter has one point per
    # dimension, placed by the raw values.
    page.click("[data-view=compare]")
    page.fill("#compare-a", "king")
    page.fill("#compare-b", "queen")
    page.press("#compare-b", "Enter")
    expect(page).to_have_url(re.compile(r"/\?view=compare&a=king&b=queen$"))
    compared = ok(base, "compare", a="king", b="queen")
    dots = page.locator("#scatter circle.dim")
    expect(dots).to_have_count(health["dim"])
    result = page.locator("#compare-result")
    expect(result.locator("[data-measure=cosine]")).to_have_text(f"{compared['cosine']:.3f}")
    expect(result.locator("[data-measure=rank]")).to_have_text(f"{compared['rank_of_b']:,}")
    cx = dots.evaluate_all("els => els.map(e => Number(e.getAttribute('cx')))")
    cy = dots.evaluate_all("els => els.map(e => Number(e.getAttribute('cy')))")
    xa = ok(base, "vector", q="king")["values"]
    xb = ok(base, "vector", q="queen")["values"]
    assert cx.index(max(cx)) == xa.index(max(xa))
    assert cy.index(min(cy)) == xb.index(max(xb))  # SVG's y runs down
    # Another metric: its score is shown, and named in the URL.
    page.select_option("#metric", "centered")
    expect(page).to_have_url(re.compile(r"/\?view=compare&a=king&b=queen&metric=centered$"))
    centered = ok(base, "compare", a="king", b="queen", metric="centered")
    expect(result.locator("[data-measure=similarity]")).to_have_text(
        f"{centered['similarity']:.3f}"
    )
    page.select_option("#metric", "cosine")
    expect(page).to_have_url(re.compile(r"/\?view=compare&a=king&b=queen$"))

    # Analogy: man is to king as woman is to ?; its rows link the same way.
    page.click("[data-view=analogy]")
    page.fill("#analogy-a", "man")
    page.fill("#analogy-b", "king")
    page.fill("#analogy-c", "woman")
    page.press("#analogy-c", "Enter")
    expect(page).to_have_url(re.compile(r"/\?view=analogy&a=man&b=king&c=woman$"))
    solved = ok(base, "analogy", a="man", b="king", c="woman", k=20)["neighbors"]
    expect_rows(page.locator("#analogy-result tr.neighbor"), solved)
    page.locator("#analogy-result a.token-link").first.click()
    expect(page).to_have_url(re.compile(rf"/\?q=%23{solved[0]['id']}$"))
    expect(page.locator("[data-view=neighbors]")).to_have_attribute("aria-selected", "true")
    expect_rows(rows, ok(base, "neighbors", q=f"#{solved[0]['id']}", k=20)["neighbors"])

    # Errors are text: an unknown id (the API's message), an empty query (no request).
    error = page.locator("#error")
    page.fill("#query", "#99999999")
    page.press("#query", "Enter")
    status, refused = api(base, "neighbors", q="#99999999", k=20)
    assert status == 404 and refused["error"]
    expect(error).to_be_visible()
    expect(error).to_have_text(refused["error"])
    page.fill("#query", "")
    page.press("#query", "Enter")
    expect(error).to_have_text("type a word or #id")

    # A token that is markup stays text.
    page.fill("#query", "<img src=x onerror=alert(1)>")
    page.press("#query", "Enter")
    expect(error).to_be_hidden()
    expect(chips.first).to_have_text(re.compile("^<"))
    expect(page.locator("#tokens img, #neighbors img")).to_have_count(0)

    # A loaded URL reproduces its view: compare, and an API refusal (a 400) shown as text.
    page.goto(f"{base}?view=compare&a=king&b=queen")
    expect(page.locator("[data-view=compare]")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#compare-a")).to_have_value("king")
    expect(page.locator("#compare-b")).to_have_value("queen")
    expect(dots).to_have_count(health["dim"])
    expect(result.locator("[data-measure=cosine]")).to_have_text(f"{compared['cosine']:.3f}")
    page.goto(f"{base}?q=king&min_sim=5")
    status, refused = api(base, "neighbors", q="king", k=20, min_sim=5)
    assert status == 400
    expect(error).to_have_text(refused["error"])
    assert failures == []
    page.close()


def test_the_page_reads_ids_and_the_literal_escape_as_the_server_does(
    server: str, browser: Any, minilm_dir: Path, module_cache: Path
) -> None:
    """#N: token N, its list and its one chip; \\#5: the text "#5", its list and its chips
    ("#" + "5", as the tokenizer splits it), not token 5's."""
    from playwright.sync_api import expect

    import tokneigh
    from tokneigh.analyses.filters import Filters

    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    page.goto(server)
    for typed, asked in (("#2332", 2332), ("\\#5", "\\#5")):
        page.fill("#query", typed)
        page.press("#query", "Enter")
        ref = emb.neighbors(asked, k=20, filters=Filters(skip_special=True)).to_json()
        expect_rows(page.locator("#neighbors tr.neighbor"), ref["neighbors"])
        chips = page.locator("#tokens .chip")
        if isinstance(asked, int):
            expect(chips.locator(".chip-id")).to_have_text([str(asked)])
        else:
            ids = emb.tokenize("#5").ids
            assert ref["query_ids"] == ids and len(ids) == 2
            expect(chips.locator(".chip-id")).to_have_text([str(i) for i in ids])
    assert not failures, failures
    page.close()
