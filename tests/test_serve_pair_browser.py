"""The two-model page (`tokneigh serve --against B`) in headless Chromium: A's and B's columns,
the shared tokens linked, the Drift view, the URL and back. A is all-MiniLM-L6-v2, B a renamed,
permuted, rotated copy of its first tokens with a few rows noised (tests/align_refs.py); what
the page shows is checked against the server's JSON (tests/test_serve_pair.py checks that
against each model alone and ``Embeddings.align``)."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import align_refs as ref
import browser as shared_browser
import numpy as np
import pytest
from test_serve_browser import api, ok

# The fixtures (one browser per module; chromium found, or a skip/fail).
chromium, browser = shared_browser.chromium, shared_browser.browser

SUBSET = 6000
NOISED_WORDS = ("king", "water", "house", "music", "city")


@pytest.fixture(scope="module")
def noised() -> list[int]:
    vocab = ref.minilm_vocab()
    return [vocab.index(word) for word in NOISED_WORDS]


@pytest.fixture(scope="module")
def server(
    minilm_dir: Path, module_cache: Path, tmp_path_factory: pytest.TempPathFactory, noised
) -> Iterator[str]:
    """`tokneigh serve --against B` on a free port; yields its URL. The alignment is computed
    here first (kept in the cache), so the page's Drift view reads it at once."""
    from tokneigh.api import loading as api

    permutation = np.random.default_rng(11).permutation(SUBSET)
    folder = ref.drifted_copy(
        tmp_path_factory.mktemp("b") / "ckpt", ref.minilm_weights(), permutation, noised
    )
    a = api.load(str(minilm_dir), cache_dir=module_cache, report=lambda _: None)
    a.align(api.load(str(folder), cache_dir=module_cache, report=lambda _: None), top=0)
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    args = ["--model", str(minilm_dir), "--against", str(folder), "--metric", "cosine"]
    with shared_browser.served(args, module_cache, log) as url:
        yield url


def ids_of(rows: Any) -> list[int]:
    return [int(i) for i in rows.evaluate_all("els => els.map(e => e.dataset.id)")]


def test_two_columns_shared_links_and_the_drift_view(server: str, browser: Any, noised) -> None:
    from playwright.sync_api import expect

    base = server
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    health = ok(base, "health")
    assert health["against"]["vocab_size"] == SUBSET

    # The alignment runs on its own thread from the server's start: the drift facts below are
    # there once it is done (until then the page says "computing"; a loaded machine is slow).
    deadline = time.monotonic() + 180
    while api(base, "drift", top=1)[0] == 202 and time.monotonic() < deadline:
        time.sleep(0.5)

    # queen: A's list and B's side by side, as /api/pair/neighbors gives them.
    page.goto(base + "?q=queen")
    expect(page.locator("#tab-drift")).to_be_visible()
    expect(page.locator("#pair-col")).to_be_visible()
    pair = ok(base, "pair/neighbors", q="queen", k=20, metric="cosine")
    rows_a = page.locator("#neighbors tr.neighbor")
    rows_b = page.locator("#neighbors-b tr.neighbor")
    expect(rows_b).to_have_count(len(pair["b"]["neighbors"]))
    assert ids_of(rows_a) == [n["id"] for n in pair["a"]["neighbors"]]
    assert ids_of(rows_b) == [n["id"] for n in pair["b"]["neighbors"]]
    # B's tokens link to A's list of the same text (B's ids are not A's).
    hrefs = rows_b.locator("a.token-link").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    asked = [urllib.parse.parse_qs(urllib.parse.urlsplit(h).query)["q"][0] for h in hrefs]
    assert asked == [n["token"] for n in pair["b"]["neighbors"]]

    # The shared tokens are marked in both lists; hovering one lights its counterpart.
    shared = pair["shared"]
    assert len(shared) >= 3
    assert ids_of(page.locator("#neighbors tr.shared")) == [s["a"] for s in shared]
    assert sorted(ids_of(page.locator("#neighbors-b tr.shared"))) == sorted(s["b"] for s in shared)
    page.locator(f'#neighbors tr.neighbor[data-id="{shared[1]["a"]}"]').hover()
    expect(page.locator("#neighbors-b tr.linked")).to_have_count(1)
    assert ids_of(page.locator("#neighbors-b tr.linked")) == [shared[1]["b"]]
    page.locator(f'#neighbors-b tr.neighbor[data-id="{shared[2]["b"]}"]').hover()
    assert ids_of(page.locator("#neighbors tr.linked")) == [shared[2]["a"]]
    drift = pair["drift"]
    expect(page.locator("#pair-drift")).to_contain_text(
        f"moved {drift['drift']:.3f} (1 − cos), rank {drift['rank']:,}"
    )

    # The Drift view: the noised tokens first, as /api/drift ranks them.
    page.click("#tab-drift")
    expect(page).to_have_url(re.compile(r"/\?view=drift$"))
    ranked = ok(base, "drift", top=50)
    drift_rows = page.locator("#drift-result tr.drift-row")
    expect(drift_rows).to_have_count(50)
    assert ids_of(drift_rows) == [r["id_a"] for r in ranked["rows"]]
    assert sorted(ids_of(drift_rows)[: len(noised)]) == sorted(noised)

    # A token's link goes to its Neighbours view (A's id; B's column its counterpart's list).
    first = ranked["rows"][0]
    drift_rows.first.locator("a.token-link").click()
    expect(page).to_have_url(re.compile(rf"/\?q=%23{first['id_a']}$"))
    expect(page.locator("#query")).to_have_value(f"#{first['id_a']}")
    moved = ok(base, "pair/neighbors", q=f"#{first['id_a']}", k=20, metric="cosine")
    assert moved["b"]["query_id"] == first["id_b"]
    expect(rows_b.first.locator("td.id")).to_have_text(str(moved["b"]["neighbors"][0]["id"]))
    assert ids_of(rows_b) == [n["id"] for n in moved["b"]["neighbors"]]
    expect(page.locator("#pair-drift")).to_contain_text("rank 1 of")

    # Back: the Drift view again; its next page is in the URL, and survives a reload.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?view=drift$"))
    expect(drift_rows).to_have_count(50)
    page.click("#drift-next")
    expect(page).to_have_url(re.compile(r"/\?view=drift&offset=50$"))
    expect(drift_rows.first.locator("td.rank")).to_have_text("51")
    page.reload()
    expect(drift_rows.first.locator("td.rank")).to_have_text("51")
    assert ids_of(drift_rows) == [r["id_a"] for r in ok(base, "drift", top=50, offset=50)["rows"]]
    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?view=drift$"))
    expect(drift_rows.first.locator("td.rank")).to_have_text("1")
    assert failures == []
    page.close()
