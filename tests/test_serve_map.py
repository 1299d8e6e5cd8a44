"""The page's Map view in a real browser: headless Chromium (Debian's) driven by Playwright,
against `tokneigh serve --map pca` on all-MiniLM-L6-v2's real weights.

One server and one browser for the module; one scenario walks the view: the point count the
page reports, a search, a click on a token and its neighbour list (== /api/neighbors, fetched
here with urllib), through to the Neighbours view and back, a colour switch in the URL. The
references are the checkpoint's own tokenizer (explore_refs.Reference) and the server's JSON.
A model over the page's budget is refused in one line before any layout is fetched.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser as shared_browser
import pytest
from test_serve_browser import ok

# The fixtures (one browser per module; chromium found, or a skip/fail).
chromium, browser = shared_browser.chromium, shared_browser.browser
PNG = shared_browser.PNG


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for both map test modules (this and test_serve_map{,_api}.py): the map and
    the graph under it, the costly part, are computed once a session (per xdist worker)."""
    path = tmp_path_factory.getbasetemp() / "serve-map-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(
    minilm_dir: Path, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`tokneigh serve --map pca` on a free port; yields its URL (its first line of stdout)."""
    log = tmp_path_factory.mktemp("serve-map") / "stderr.txt"
    args = ["--model", str(minilm_dir), "--metric", "cosine", "--map", "pca"]
    with shared_browser.served(args, module_cache, log) as url:
        yield url


def test_the_map_view_walks_through(server: str, browser: Any, minilm_dir: Path) -> None:
    from explore_refs import Reference
    from playwright.sync_api import expect

    ref = Reference(minilm_dir)
    base = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    stage = page.locator("#map-stage")

    # Every token is a point: the page reports as many as the checkpoint has rows.
    page.goto(base + "?view=map")
    expect(page.locator("#tab-map")).to_have_attribute("aria-selected", "true")
    expect(stage).to_have_attribute("data-points", str(ref.raw.shape[0]), timeout=120_000)
    assert ref.raw.shape[0] == 30522
    assert page.evaluate("tokneighMap.painted()") > 5000  # points are drawn, not just counted
    expect(page.locator("#map-legend")).to_contain_text("cluster")

    # A search lights up every token holding the word, as the tokenizer names them.
    page.fill("#map-find", "king")
    page.click("#map-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/\?view=map&find=king$"))
    holding = [i for i in range(ref.size) if "king" in ref.token_text(i)[0].lower()]
    assert len(holding) > 10
    expect(stage).to_have_attribute("data-matches", str(len(holding)))
    expect(page.locator("#map-summary")).to_contain_text(f'{len(holding)} tokens hold "king"')

    # Zoomed in on "king" (the camera is in the URL), a click on it selects it: its
    # neighbour list is /api/neighbors' for #2332, and each neighbour is joined to it.
    [king] = ref.ids("king")
    facts = ok(base, "layout")
    x, y = facts_position(base, facts, king)
    page.goto(base + f"?view=map&find=king&cam={x:.6g},{y:.6g},40")
    expect(stage).to_have_attribute("data-points", "30522")
    px, py = page.evaluate(f"tokneighMap.screenOf({king})")
    page.mouse.move(px, py)  # hovering names the token under the pointer
    expect(stage).to_have_attribute("data-hover", str(king))
    page.mouse.click(px, py)
    expect(page).to_have_url(re.compile(rf"[?&]sel={king}(&|$)"))
    expect(stage).to_have_attribute("data-selected", str(king))
    listed = ok(base, "neighbors", q=f"#{king}")["neighbors"]
    rows = page.locator("#map-neighbors tbody tr")
    expect(rows.locator("td.id")).to_have_text([str(n["id"]) for n in listed])
    shown = rows.locator("td.sim .value").all_text_contents()
    assert shown == [f"{n['similarity']:.3f}" for n in listed]
    expect(stage).to_have_attribute("data-lines", str(len(listed)))
    expect(page.locator("#map-selected")).to_contain_text(f"#{king} king")

    # Wheel and drag move the camera (kept in the URL), not the selection.
    page.mouse.move(px, py)
    for _ in range(4):
        page.mouse.wheel(0, 300)
    zoom_of = "Number(new URLSearchParams(location.search).get('cam').split(',')[2])"
    page.wait_for_function(f"() => {zoom_of} < 10")  # the camera is stored once it rests
    assert 1 < page.evaluate(f"() => {zoom_of}") < 10
    camera = page.url
    page.mouse.move(px, py)
    page.mouse.down()
    page.mouse.move(px - 120, py + 40, steps=4)
    page.mouse.up()
    expect(page).not_to_have_url(camera)
    expect(page).to_have_url(re.compile(rf"[?&]sel={king}(&|$)"))
    moved = page.evaluate(f"tokneighMap.screenOf({king})")
    assert moved == pytest.approx([px - 120, py + 40], abs=2)
    page.mouse.move(2, 2)  # no hover label over the selected token's
    if os.environ.get("TOKNEIGH_SCREENSHOTS"):
        folder = Path(os.environ["TOKNEIGH_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "map.png"))
        assert (folder / "map.png").read_bytes().startswith(PNG)
    selected_url = page.url

    # Through to the Neighbours view, and back to the map as it was.
    page.click("#map-open")
    expect(page).to_have_url(re.compile(rf"/\?q=%23{king}$"))
    expect(page.locator("#query")).to_have_value(f"#{king}")
    expect(page.locator("#neighbors tbody tr td.id")).to_have_text([str(n["id"]) for n in listed])
    page.go_back()
    assert page.url == selected_url
    expect(page.locator("#panel-map")).to_be_visible()
    expect(rows.locator("td.id")).to_have_text([str(n["id"]) for n in listed])

    # Another colour is another URL, and another picture.
    before = page.locator("#map-canvas").screenshot()
    page.select_option("#map-colour", "norm")
    expect(page).to_have_url(re.compile(r"[?&]colour=norm(&|$)"))
    expect(page.locator("#map-legend")).to_contain_text("norm (raw row)")
    assert page.locator("#map-canvas").screenshot() != before
    page.select_option("#map-colour", "special")
    expect(page).to_have_url(re.compile(r"[?&]colour=special(&|$)"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]colour=norm(&|$)"))
    expect(page.locator("#map-colour")).to_have_value("norm")
    assert failures == []
    page.close()


def facts_position(base: str, facts: dict, token_id: int) -> tuple[float, float]:
    """A token's place on the map, read from /api/layout.bin by hand."""
    import urllib.request

    import numpy as np

    with urllib.request.urlopen(base + "api/layout.bin", timeout=30) as response:
        body = response.read()
    n = facts["count"]
    names = [a["name"] for a in facts["arrays"]]
    column = {
        name: np.frombuffer(body, "<f4" if name in ("x", "y") else "<i4", n, 4 * n * i)
        for i, name in enumerate(names)
        if name in ("ids", "x", "y")
    }
    [i] = np.flatnonzero(column["ids"] == token_id)
    return float(column["x"][i]), float(column["y"][i])


def test_a_map_over_the_budget_is_refused_in_one_line(server: str, browser: Any) -> None:
    """The page learns the map's size from /api/health and refuses before asking for it."""
    from playwright.sync_api import expect

    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(urllib.parse.urlsplit(r.url).path))

    def huge(route: Any) -> None:
        answer = route.fetch()
        health = answer.json()
        health["map"] |= {"points": 400_000, "max_points": 300_000}
        route.fulfill(response=answer, body=json.dumps(health))

    page.route("**/api/health", huge)
    page.goto(server + "?view=map")
    error = page.locator("#error")
    expect(error).to_have_text("the map would hold 400,000 points; the page draws at most 300,000")
    assert "/api/layout" not in asked and "/api/layout.bin" not in asked
    expect(page.locator("#map-stage")).to_be_hidden()
    page.close()
