"""`tokneigh serve` without a browser: the JSON API against the CLI's JSON and numpy
references, its refusals, the worker's batching, and the command itself.

The app runs in-process under Starlette's TestClient on all-MiniLM-L6-v2's real weights.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from explore_refs import assert_same_ranking, filtered_ranking
from helpers import run_cli

SHARED_CACHE = True
METRICS = ("cosine", "centered", "abtt")


@pytest.fixture(scope="module")
def served(minilm_dir: Path, module_cache: Path):
    from tokneigh.api import loading as api
    from tokneigh.web.app import Served

    emb = api.load(str(minilm_dir), cache_dir=module_cache, report=lambda _: None)
    spaces = [emb.under(name, report=lambda _: None).resident() for name in METRICS]
    return Served({space.metric.name: space for space in spaces})


@pytest.fixture(scope="module")
def client(served):
    from starlette.testclient import TestClient

    from tokneigh.web.app import create_app
    from tokneigh.web.worker import Worker

    worker = Worker(served.spaces)
    with TestClient(create_app(served, worker), base_url="http://localhost") as test_client:
        yield test_client
    worker.close()


def cli_json(minilm_dir: Path, module_cache: Path, *args: str):
    done = run_cli(
        *args, "--model", str(minilm_dir), "--cache-dir", str(module_cache), "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- answers --------------------------------------------------------------------------------


def test_neighbors_are_the_clis_objects(client, minilm_dir, module_cache):
    """One /api/neighbors object per query equals the CLI's, for text, ids and several
    tokens, with and without the filters and another metric."""
    plain = cli_json(minilm_dir, module_cache, "neighbors", "king", "embeddings", "--id", "5465")
    asked = [{"q": "king"}, {"q": "embeddings"}, {"q": "#5465"}]
    for params, want in zip(asked, plain):
        response = client.get("/api/neighbors", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == want
    options = ["--top", "7", "--dedupe", "--words-only", "--min-sim", "0.2", "--include-special"]
    options += ["--exclude-query", "--metric", "centered"]
    filtered = cli_json(minilm_dir, module_cache, "neighbors", "queen", *options)
    params = {"q": "queen", "k": "7", "dedupe": "1", "words_only": "true", "min_sim": "0.2"}
    params |= {"include_special": "1", "exclude_query": "1", "metric": "centered"}
    assert client.get("/api/neighbors", params=params).json() == filtered[0]


def test_neighbors_match_a_numpy_ranking(client, minilm_ref):
    """The served list is the reference's: the whole vocabulary ranked by cosine in float64,
    special tokens left out, then k taken."""
    got = client.get("/api/neighbors", params={"q": "river", "k": "15"}).json()
    scores = minilm_ref.scores(minilm_ref.word("river"))
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 15)]
    assert_same_ranking(got["neighbors"], scores, expected)


def test_compare_analogy_tokenize_are_the_clis(client, minilm_dir, module_cache, minilm_ref):
    compare = cli_json(minilm_dir, module_cache, "compare", "king", "queen")
    assert client.get("/api/compare", params={"a": "king", "b": "queen"}).json() == compare
    analogy = cli_json(minilm_dir, module_cache, "analogy", "man", "king", "woman", "--top", "5")
    answer = client.get("/api/analogy", params={"a": "man", "b": "king", "c": "woman", "k": "5"})
    assert answer.json() == analogy
    text = "naïve café embeddings"
    [tokens] = cli_json(minilm_dir, module_cache, "tokenize", text)
    assert client.get("/api/tokenize", params={"q": text}).json() == tokens
    ids = minilm_ref.ids(text)
    assert tokens["ids"] == ids and len(ids) > 3
    vocab = minilm_ref.tokenizer
    assert tokens["labels"] == [json.dumps(vocab.id_to_token(i), ensure_ascii=False) for i in ids]


def test_map_and_vector_against_references(client, served, minilm_ref):
    """The map is the API's map (the CLI prints the same object); the vector is the raw rows'
    mean, read from the checkpoint itself."""
    got = client.get("/api/map", params={"q": "king", "k": "12"}).json()
    from tokneigh.analyses.filters import Filters

    want = served.default.map("king", 12, filters=Filters(skip_special=True)).to_json()
    assert got == want
    assert len(got["neighbors"]) == 12 and all("x" in n and "y" in n for n in got["neighbors"])
    vector = client.get("/api/vector", params={"q": "embeddings"}).json()
    ids = minilm_ref.ids("embeddings")
    assert vector["query"]["ids"] == ids and len(ids) > 1
    # The cache keeps unit rows and norms in float32: their products are the raw rows to ~1e-9.
    np.testing.assert_allclose(vector["values"], minilm_ref.raw[ids].mean(axis=0), atol=1e-7)


def test_a_metric_is_asked_for_by_any_of_its_names(client, served):
    """abtt is abtt:4 for MiniLM's 384 dimensions (round(dim / 100)), in any case."""
    from tokneigh.analyses.filters import Filters

    want = served.spaces["abtt:4"].neighbors("king", 20, filters=Filters(skip_special=True))
    for name in ("abtt:4", "abtt", " ABTT "):
        got = client.get("/api/neighbors", params={"q": "king", "metric": name}).json()
        assert got == want.to_json() and got["metric"] == "abtt:4"


def test_resident_matrices_answer_as_the_mapped_ones(served, minilm_dir, module_cache):
    """The server's in-memory copies (`Embeddings.resident`) give the very answers of the
    memory-mapped cache, under every metric, and cannot be written to."""
    from tokneigh.analyses.filters import Filters
    from tokneigh.api import loading as api

    mapped = api.load(str(minilm_dir), cache_dir=module_cache, report=lambda _: None)
    filters = Filters(skip_special=True, dedupe=True)
    for name, resident in served.spaces.items():
        assert not isinstance(resident.unit, np.memmap) and not resident.unit.flags.writeable
        space = mapped.under(name, report=lambda _: None)
        assert isinstance(space.unit, np.memmap)
        for query in ("king", "embeddings", 5465):
            want = space.neighbors(query, 15, filters=filters).to_json()
            assert resident.neighbors(query, 15, filters=filters).to_json() == want


def test_health_names_the_model_and_metrics(client, served):
    health = client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["metrics"] == ["cosine", "centered", "abtt:4"]
    assert (health["vocab_size"], health["dim"]) == (30522, 384)
    assert health["model"] == served.default.model
    assert set(health["batching"]) == {"products", "queries", "largest"}


def test_page_and_static_files_are_the_packages_own(client):
    from tokneigh.web.app import STATIC

    page = client.get("/", params={"view": "compare", "a": "king", "b": "queen"})
    assert page.status_code == 200 and page.text == (STATIC / "index.html").read_text()
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "app.css"):
        assert client.get(f"/static/{name}").content == (STATIC / name).read_bytes()
    # Offline: no address of another host (SVG's namespace name is a name, never fetched).
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        found = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text))
        assert found <= {"http://www.w3.org/2000/svg"}, (path, found)


# --- refusals -------------------------------------------------------------------------------


BAD = [
    ("/api/neighbors", {}, 400, "'q' is missing"),
    ("/api/neighbors", {"q": "   "}, 400, "'q' is missing or empty"),
    ("/api/neighbors", {"q": "king", "k": "0"}, 400, "between 1 and 1000"),
    ("/api/neighbors", {"q": "king", "k": "1001"}, 400, "between 1 and 1000"),
    ("/api/neighbors", {"q": "king", "k": "ten"}, 400, "whole number"),
    ("/api/neighbors", {"q": "king", "min_sim": "2"}, 400, "between -1 and 1"),
    ("/api/neighbors", {"q": "king", "min_sim": "nan"}, 400, "between -1 and 1"),
    ("/api/neighbors", {"q": "king", "dedupe": "maybe"}, 400, "is 1 or 0"),
    ("/api/neighbors", {"q": "king", "metric": "csls"}, 400, "'csls:10' is not served here"),
    ("/api/neighbors", {"q": "king", "metric": "cosin"}, 400, "unknown metric 'cosin'"),
    ("/api/neighbors", {"q": "king", "model": "gpt2"}, 400, "unknown parameter 'model'"),
    ("/api/neighbors", {"q": "x" * 1001}, 400, "the limit is 1,000"),
    ("/api/neighbors", {"q": "#99999999"}, 404, "outside 0..30521"),
    ("/api/map", {"q": "king", "k": "201"}, 400, "between 1 and 200"),
    ("/api/compare", {"a": "king"}, 400, "'b' is missing"),
    ("/api/analogy", {"a": "man", "b": "king"}, 400, "'c' is missing"),
    ("/api/tokenize", {"q": ""}, 400, "'q' is missing"),
    ("/api/health", {"verbose": "1"}, 400, "unknown parameter"),
    ("/api/nothing", {}, 404, "not found"),
]


@pytest.mark.parametrize(("path", "params", "status", "says"), BAD)
def test_bad_requests_get_one_json_error(client, path, params, status, says):
    response = client.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error"] and says in body["error"] and "\n" not in body["error"]


def test_repeated_and_oversized_requests(client):
    twice = client.get("/api/neighbors?q=king&q=queen")
    assert twice.status_code == 400 and "more than once" in twice.json()["error"]
    long_url = client.get("/api/neighbors", params={"q": "king", "pad": "x" * 9000})
    assert long_url.status_code == 414 and "8,192 bytes" in long_url.json()["error"]
    body = client.request("GET", "/api/health", content=b"x" * 20_000)
    assert body.status_code == 413
    post = client.post("/api/neighbors?q=king")
    assert post.status_code == 405 and post.json() == {"error": "method not allowed"}


@pytest.mark.parametrize(
    "path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/app.py"]
)
def test_no_file_outside_the_static_folder(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Starlette" not in response.text and "import" not in response.text


def test_requests_write_nothing_to_the_cache(client, module_cache):
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in module_cache.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    for path, params in [
        ("/api/neighbors", {"q": "river", "dedupe": "1", "words_only": "1"}),
        ("/api/neighbors", {"q": "river", "metric": "centered"}),
        ("/api/map", {"q": "river"}),
        ("/api/compare", {"a": "river", "b": "lake"}),
        ("/api/analogy", {"a": "man", "b": "king", "c": "woman"}),
        ("/api/vector", {"q": "river"}),
        ("/api/tokenize", {"q": "river"}),
    ]:
        assert client.get(path, params=params).status_code == 200
    assert snapshot() == before


# --- the worker -----------------------------------------------------------------------------


def test_queries_waiting_together_share_one_product(served):
    """Sixteen queries queued while the worker is busy are answered by one product, each
    exactly as alone; a refused query fails alone and another k is its own batch."""
    from tokneigh.analyses.filters import Filters
    from tokneigh.errors import TokenIdError
    from tokneigh.web.worker import Worker

    emb = served.default
    words = ["king", "queen", "river", "#5465", "music", "embeddings", "paris", "dog"] * 2
    filters = Filters(skip_special=True)
    alone = [emb.neighbors(w if not w.startswith("#") else int(w[1:]), 10, filters=filters)
             for w in words]  # fmt: skip
    worker = Worker(served.spaces)
    release = threading.Event()

    async def scenario():
        busy = asyncio.ensure_future(worker.call(release.wait))
        await asyncio.sleep(0.05)  # the worker is now blocked in the call
        queries = [w if not w.startswith("#") else int(w[1:]) for w in words]
        jobs = [worker.neighbors("cosine", q, 10, filters, False) for q in queries]
        jobs.append(worker.neighbors("cosine", 99_999_999, 10, filters, False))
        jobs.append(worker.neighbors("cosine", "king", 3, filters, False))
        tasks = [asyncio.ensure_future(job) for job in jobs]
        await asyncio.sleep(0.05)
        release.set()
        await busy
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        worker.close()
    *together, refused, other_k = results
    assert [r.to_json() for r in together] == [r.to_json() for r in alone]
    assert isinstance(refused, TokenIdError)
    assert other_k.to_json() == emb.neighbors("king", 3, filters=filters).to_json()
    assert worker.stats.products == 2  # the sixteen, and the k=3 query
    assert worker.stats.largest == 16 and worker.stats.queries == 17


# --- the command ----------------------------------------------------------------------------


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tokneigh", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_serve_prints_its_url_and_warns_off_loopback(minilm_dir, module_cache):
    from urllib.request import urlopen

    server = _start(
        "--model", str(minilm_dir), "--cache-dir", str(module_cache), "--port", "0",
        "--host", "0.0.0.0", "--metric", "cosine",
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stderr is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://0.0.0.0:") and url.endswith("/")
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        with urlopen(f"http://127.0.0.1:{port}/api/neighbors?q=king&k=3") as response:
            assert [n["token"] for n in json.loads(response.read())["neighbors"]][0] == "king"
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 130  # stopped by Ctrl-C, as every command is
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "not loopback" in warnings[0]
    assert "Traceback" not in err


def test_serve_refuses_bad_starts_in_one_line(minilm_dir, module_cache, tmp_path, served):
    """(``served`` has built the module's cache entry: a first use's progress lines would be
    more lines than the one error.)"""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run_cli("serve", "--model", str(minilm_dir), "--port", port)
    assert busy.returncode == 2
    assert busy.stderr.startswith("tokneigh: error: cannot listen on 127.0.0.1 port")
    for args in (
        ["--metric", "bogus", "--model", str(minilm_dir), "--port", "0"],
        ["--model", str(tmp_path / "absent"), "--port", "0"],
        ["--host", "no such host.invalid", "--port", "0", "--model", str(minilm_dir)],
    ):
        done = run_cli("serve", "--cache-dir", str(module_cache), *args, timeout=120)
        assert done.returncode != 0 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tokneigh: error: "), done.stderr
    if os.path.exists("/dev/full"):  # the URL cannot be printed: one line, exit 1, no server
        command = [sys.executable, "-m", "tokneigh", "serve", "--model", str(minilm_dir)]
        command += ["--cache-dir", str(module_cache), "--port", "0", "--metric", "cosine"]
        with open("/dev/full", "w") as full:
            done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True,
                                  timeout=120)  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert done.returncode == 1
        assert errors == ["tokneigh: error: cannot write the output (No space left on device)"]
