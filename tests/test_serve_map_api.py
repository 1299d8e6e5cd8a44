"""The Map view's API in `tokneigh serve`, without a browser: /api/layout (JSON facts) and
/api/layout.bin (raw little-endian arrays) on all-MiniLM-L6-v2's real weights, checked against
the layout itself, the checkpoint read by hand (norms, texts, special tokens) and formulas
written out (N_k); and the refusals: unknown parameters, a map over the budget, arrays asked
for before the map exists, and a layout still computing while other requests are answered.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

SHARED_CACHE = True


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for both map test modules (this and test_serve_map{,_api}.py): the map and
    the graph under it, the costly part, are computed once a session (per xdist worker)."""
    path = tmp_path_factory.getbasetemp() / "serve-map-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def served(minilm_dir: Path, module_cache: Path):
    from tokneigh.api import loading as api
    from tokneigh.web.app import Served

    emb = api.load(str(minilm_dir), cache_dir=module_cache, report=lambda _: None)
    return Served({"cosine": emb.resident()})


def make_client(served, **options):
    from starlette.testclient import TestClient

    from tokneigh.web.app import create_app
    from tokneigh.web.worker import Worker

    worker = Worker(served.spaces)
    app = create_app(served, worker, map_method="pca", **options)
    return TestClient(app, base_url="http://localhost"), worker


@pytest.fixture(scope="module")
def client(served):
    test_client, worker = make_client(served)
    with test_client:
        yield test_client
    worker.close()


def ready_layout(client) -> dict:
    """/api/layout polled until the map is computed (202 while it is)."""
    deadline = time.monotonic() + 120
    while True:
        response = client.get("/api/layout")
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "computing"
        assert time.monotonic() < deadline, "the map took over two minutes"
        time.sleep(0.2)


def read_arrays(facts: dict, body: bytes) -> dict[str, np.ndarray]:
    """The body as the module's docstring lays it out, read by hand."""
    n = facts["count"]
    arrays = {}
    for i, spec in enumerate(facts["arrays"]):
        code = {"float32": "<f4", "int32": "<i4"}[spec["dtype"]]
        arrays[spec["name"]] = np.frombuffer(body, dtype=code, count=n, offset=4 * n * i)
    return arrays


def test_the_arrays_are_the_layouts_and_the_models(client, served, minilm_ref):
    facts = ready_layout(client)
    response = client.get("/api/layout.bin")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    body = response.content
    n = facts["count"]
    names = [spec["name"] for spec in facts["arrays"]]
    assert facts["byte_order"] == "little"
    assert len(body) == facts["bytes"] == 4 * n * len(names)
    assert names == ["ids", "x", "y", "cluster", "norm", "scan", "hubness", "special", "honesty"]
    got = read_arrays(facts, body)

    # Every row of MiniLM has a direction, and the map holds special tokens too.
    assert n == minilm_ref.raw.shape[0] == 30522
    np.testing.assert_array_equal(got["ids"], np.arange(n))

    from tokneigh.web.mapdata import compute_layout

    layout = compute_layout(served.default, "pca")
    np.testing.assert_array_equal(got["x"], layout.xy[:, 0])
    np.testing.assert_array_equal(got["y"], layout.xy[:, 1])
    np.testing.assert_array_equal(got["cluster"], layout.clusters)
    np.testing.assert_allclose(got["honesty"], layout.honesty, atol=1e-7)
    assert facts["bounds"]["x"] == pytest.approx([layout.xy[:, 0].min(), layout.xy[:, 0].max()])
    assert [c["name"] for c in facts["clusters"]] == [c.name for c in layout.cluster_list]
    assert facts["honesty"]["mean"] == pytest.approx(float(np.mean(layout.honesty)))

    # Norms of the checkpoint's rows, computed here in float64.
    np.testing.assert_allclose(got["norm"], np.linalg.norm(minilm_ref.raw, axis=1), rtol=1e-5)
    # N_k written out: how often each token is among the exact k nearest of the others.
    k = facts["neighbors"]
    graph = served.default.graph(k, include_special=True)
    np.testing.assert_array_equal(got["hubness"], np.bincount(graph.neighbors.ravel(), minlength=n))
    assert int(got["hubness"].sum()) == n * k
    row = 2332  # one row of that graph against numpy: its k nearest by cosine, self left out
    scores = minilm_ref.unit @ minilm_ref.unit[row]
    scores[row] = -np.inf
    assert set(graph.neighbors[row].tolist()) == set(np.argsort(-scores)[:k].tolist())
    # The under-trained score: scan's top tokens are the array's smallest values.
    scan = served.default.scan("magikarp", top=20)
    order = np.lexsort((got["ids"], got["scan"]))[:20]
    assert got["ids"][order].tolist() == [t.id for t in scan.tokens]
    # Special tokens as the tokenizer's own files name them.
    want = np.array([minilm_ref.is_special(int(i)) for i in got["ids"]], dtype=np.int32)
    np.testing.assert_array_equal(got["special"], want)
    assert got["special"][[0, 100, 101, 102, 103]].all() and want.sum() < n / 10

    # One text per point, for hover and search, the tokenizer's own.
    assert len(facts["tokens"]) == n
    for i in (0, 2332, 2426, 7592, 29999):
        assert facts["tokens"][i] == minilm_ref.token_text(i)[0]
    assert all(np.isfinite(got[name]).all() for name in ("x", "y", "norm", "scan", "honesty"))


def test_health_names_the_map_and_its_budget(client):
    health = client.get("/api/health").json()
    assert health["map"] == {"points": 30522, "method": "pca", "max_points": 300_000}


@pytest.mark.parametrize(
    "path, query, fragment",
    [
        ("/api/layout", "method=umap", "unknown parameter 'method'"),
        ("/api/layout.bin", "x=1", "unknown parameter 'x'"),
        ("/api/layout", "a=1&a=2", "unknown parameter 'a'"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(client, path, query, fragment):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert fragment in error and "\n" not in error


def test_a_map_over_the_budget_is_refused_before_anything_is_computed(served, monkeypatch):
    from tokneigh.web import app as web_app

    def never(*args, **kwargs):
        raise AssertionError("a refused map must not be computed")

    monkeypatch.setattr(web_app, "build", never)
    test_client, worker = make_client(served, map_budget=30521)
    with test_client:
        for path in ("/api/layout", "/api/layout.bin"):
            response = test_client.get(path)
            assert response.status_code == 413
            assert response.json() == {
                "error": "the map would hold 30,522 points; the page draws at most 30,521"
            }
        assert test_client.get("/api/health").json()["map"]["max_points"] == 30521
        assert test_client.get("/api/neighbors", params={"q": "king"}).status_code == 200
    worker.close()


def test_a_layout_in_progress_blocks_nothing(served, monkeypatch):
    """While the map computes (held here until released), /api/layout answers 202 with its
    progress, the arrays 409, and neighbour queries go on; then the map is there."""
    from tokneigh.web import app as web_app
    from tokneigh.web import mapdata

    release = threading.Event()

    def slow(emb, method, progress):
        progress(1, 4)
        assert release.wait(60)
        return mapdata.build(emb, method)

    monkeypatch.setattr(web_app, "build", slow)
    test_client, worker = make_client(served)
    with test_client:
        assert test_client.get("/api/layout.bin").status_code == 409  # not started yet
        first = test_client.get("/api/layout")
        assert first.status_code == 202
        assert first.json()["status"] == "computing" and first.json()["count"] == 30522
        assert test_client.get("/api/layout").json()["done"] == 1  # the progress it reported
        missing = test_client.get("/api/layout.bin")
        assert missing.status_code == 409 and "not computed yet" in missing.json()["error"]
        neighbors = test_client.get("/api/neighbors", params={"q": "king", "k": "3"})
        assert neighbors.status_code == 200 and len(neighbors.json()["neighbors"]) == 3
        release.set()
        assert ready_layout(test_client)["count"] == 30522
        assert test_client.get("/api/layout.bin").status_code == 200
    worker.close()


def test_a_failed_layout_fails_its_requests_only(served, monkeypatch):
    from tokneigh.errors import TokneighError
    from tokneigh.web import app as web_app

    def refused(emb, method, progress):
        raise TokneighError("the layout needs at least 16 tokens")

    monkeypatch.setattr(web_app, "build", refused)
    test_client, worker = make_client(served)
    with test_client:
        time.sleep(0.01)
        response = test_client.get("/api/layout")
        assert response.status_code == 400
        assert response.json() == {"error": "the layout needs at least 16 tokens"}
        assert test_client.get("/api/layout.bin").status_code == 400
        assert test_client.get("/api/neighbors", params={"q": "king"}).status_code == 200
    worker.close()


def test_a_colour_the_model_cannot_give_is_left_out_and_said(served, monkeypatch):
    """No reference for the under-trained score (or scores that are not numbers): the map
    comes without that array, and its colour entry says why; nothing holds a NaN."""
    from tokneigh.errors import UsageError
    from tokneigh.web import mapdata

    def no_reference(emb, ids):
        raise UsageError("no token known to be unused")

    for broken, why in [
        (no_reference, "no token known to be unused"),
        (lambda emb, ids: np.full(ids.size, np.nan), "not a number"),
    ]:
        monkeypatch.setattr(mapdata, "_scan_scores", broken)
        data = mapdata.build(served.default, "pca")
        names = [spec["name"] for spec in data.facts["arrays"]]
        assert "scan" not in names and len(data.body) == 4 * data.facts["count"] * len(names)
        [scan] = [c for c in data.facts["colours"] if c["name"] == "scan"]
        assert scan["available"] is False and why in scan["why"]
        arrays = read_arrays(data.facts, data.body)
        assert all(np.isfinite(values).all() for values in arrays.values())


def test_serve_refuses_an_unknown_map_method(minilm_dir):
    done = run_cli("serve", "--model", str(minilm_dir), "--map", "tsne", "--port", "0")
    assert_one_line_error(done, 2, "--map takes umap or pca, not 'tsne'")
