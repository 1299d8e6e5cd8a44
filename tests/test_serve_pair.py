"""`tokneigh serve --against B`: the pair's JSON API (A's and B's lists, the tokens they share,
the query's drift, the drift ranking) on MiniLM against a renamed, permuted, rotated copy of it
with a few rows noised (tests/align_refs.py), checked against each model served alone, the
copy's known permutation and ``Embeddings.align``."""

from __future__ import annotations

import threading

import align_refs as ref
import numpy as np
import pytest
from helpers import assert_one_line_error, cli

SHARED_CACHE = True
SUBSET = 6000  # B holds MiniLM's first SUBSET tokens
METRICS = ("cosine", "centered")
NOISED_WORDS = ("king", "water", "house", "music", "city")


def quiet(_: object) -> None:
    pass


@pytest.fixture(scope="module")
def vocab() -> list[str]:
    return ref.minilm_vocab()


@pytest.fixture(scope="module")
def noised(vocab) -> list[int]:
    ids = [vocab.index(word) for word in NOISED_WORDS]
    assert max(ids) < SUBSET
    return ids


@pytest.fixture(scope="module")
def permutation() -> np.ndarray:
    return np.random.default_rng(11).permutation(SUBSET)


@pytest.fixture(scope="module")
def models(minilm_dir, module_cache, tmp_path_factory, permutation, noised):
    """(A, B) loaded, and A's alignment to B (kept in the cache: the server reads it)."""
    from tokneigh.api import loading as api

    folder = ref.drifted_copy(
        tmp_path_factory.mktemp("b") / "ckpt", ref.minilm_weights(), permutation, noised
    )
    a = api.load(str(minilm_dir), cache_dir=module_cache, report=quiet)
    b = api.load(str(folder), cache_dir=module_cache, report=quiet)
    return a, b, a.align(b, top=0, neighbors=0)


def spaces_of(emb) -> dict:
    from tokneigh.cli.serve import served_spaces

    return served_spaces(emb, METRICS, quiet)


def client_of(served, worker_spaces):
    from starlette.testclient import TestClient

    from tokneigh.web.app import create_app
    from tokneigh.web.worker import Worker

    worker = Worker(worker_spaces)
    return TestClient(create_app(served, worker), base_url="http://localhost"), worker


@pytest.fixture(scope="module")
def pair(models):
    from tokneigh.web.pair import Pair

    a, b, _ = models
    return Pair.of(a, b, spaces_of(b))


@pytest.fixture(scope="module")
def client(models, pair):
    from tokneigh.web.app import Served

    a_spaces = spaces_of(models[0])
    test_client, worker = client_of(Served(a_spaces, pair), {**a_spaces, **pair.worker_spaces()})
    with test_client:
        assert pair.alignment.finished.wait(120)  # read from the cache on its own thread
        yield test_client
    worker.close()


@pytest.fixture(scope="module")
def alone(models):
    """A and B each served alone: what the pair's lists must equal."""
    from tokneigh.web.app import Served

    made, workers = [], []
    for emb in models[:2]:
        spaces = spaces_of(emb)
        test_client, worker = client_of(Served(spaces), spaces)
        made.append(test_client.__enter__())
        workers.append(worker)
    yield made
    for test_client, worker in zip(made, workers):
        test_client.__exit__(None, None, None)
        worker.close()


def ok(client, path, **params):
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize(
    "params",
    [
        {"q": "river"},
        {"q": "queen", "k": "15", "metric": "centered"},
        {"q": "the quick fox", "k": "30", "words_only": "1", "exclude_query": "1"},
    ],
)
def test_the_lists_are_each_models_own(client, alone, params, permutation):
    pair = ok(client, "/api/pair/neighbors", **params)
    assert pair["a"] == ok(alone[0], "/api/neighbors", **params)
    assert pair["b"] == ok(alone[1], "/api/neighbors", **params)
    assert pair["b_error"] is None
    # Shared: the tokens of A's list whose copy (B's id permutation[i]) is in B's list.
    listed_b = {n["id"] for n in pair["b"]["neighbors"]}
    expected = [
        {"a": i, "b": int(permutation[i])}
        for i in (n["id"] for n in pair["a"]["neighbors"])
        if i < SUBSET and int(permutation[i]) in listed_b
    ]
    assert pair["shared"] == expected
    assert len(expected) >= 3  # a rotated copy keeps most neighbourhoods


def test_an_id_query_asks_b_for_its_counterpart(client, alone, permutation, vocab):
    token = vocab.index("river")
    pair = ok(client, "/api/pair/neighbors", q=f"#{token}")
    assert pair["b"] == ok(alone[1], "/api/neighbors", q=f"#{permutation[token]}")
    assert pair["b"]["query_id"] == int(permutation[token])
    # A token B does not hold: A's list stands, B's says why.
    beyond = ok(client, "/api/pair/neighbors", q=f"#{SUBSET + 10}")
    assert beyond["a"] == ok(alone[0], "/api/neighbors", q=f"#{SUBSET + 10}")
    assert beyond["b"] is None and "no counterpart in B" in beyond["b_error"]
    assert beyond["drift"] is None and beyond["shared"] == []


def test_the_query_drift_is_its_place_in_the_ranking(client, models, noised, vocab):
    ids_a, ids_b, drift = models[2].ranking
    for word in ("king", "river"):
        answer = ok(client, "/api/pair/neighbors", q=word)["drift"]
        place = int(np.flatnonzero(ids_a == vocab.index(word))[0])
        assert answer == {
            "status": "ready",
            "rank": place + 1,
            "of": int(ids_a.size),
            "id_a": int(ids_a[place]),
            "id_b": int(ids_b[place]),
            "drift": float(drift[place]),
        }
    assert ok(client, "/api/pair/neighbors", q="king")["drift"]["rank"] <= len(noised)
    assert ok(client, "/api/pair/neighbors", q="river")["drift"]["drift"] < 0.01
    assert ok(client, "/api/pair/neighbors", q="the river bank")["drift"] is None


def test_drift_rows_are_the_ranking(client, models, noised, permutation):
    a, b, alignment = models
    ids_a, ids_b, drift = alignment.ranking
    first = ok(client, "/api/drift", top=8)
    assert first["status"] == "ready" and first["total"] == ids_a.size
    assert sorted(r["id_a"] for r in first["rows"][: len(noised)]) == sorted(noised)
    assert first["rows"][len(noised)]["drift"] < 0.01  # only the noised rows moved
    page = ok(client, "/api/drift", top=7, offset=100)
    both = [(r["rank"], r["id_a"], r["id_b"], r["drift"]) for r in page["rows"]]
    assert both == [(i + 1, int(ids_a[i]), int(ids_b[i]), float(drift[i])) for i in range(100, 107)]
    assert all(r["id_b"] == permutation[r["id_a"]] for r in page["rows"])
    assert [r["token"] for r in page["rows"]] == [a.token_text(r["id_a"]) for r in page["rows"]]
    assert first["matching"] == alignment.matching.to_json()
    end = ok(client, "/api/drift", top=10, offset=int(ids_a.size) - 3)
    assert [r["rank"] for r in end["rows"]] == [ids_a.size - 2, ids_a.size - 1, ids_a.size]


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/api/drift", {"top": "1001"}, "'top' must be between 0 and 1000"),
        ("/api/drift", {"top": "x"}, "whole number"),
        ("/api/drift", {"offset": "-1"}, "'offset' must be between"),
        ("/api/drift", {"offset": "99999"}, "past the ranking"),
        ("/api/drift", {"q": "king"}, "unknown parameter 'q'"),
        ("/api/pair/neighbors", {}, "'q' is missing"),
        ("/api/pair/neighbors", {"q": "king", "k": "0"}, "'k' must be between"),
        ("/api/pair/neighbors", {"q": "king", "metric": "abtt"}, "not served here"),
        ("/api/pair/neighbors", {"q": "#99999999"}, "outside"),
    ],
)
def test_bad_requests_are_refused(client, path, params, fragment):
    answer = client.get(path, params=params)
    assert 400 <= answer.status_code < 500
    assert fragment in answer.json()["error"]


def test_health_names_b(client, models, permutation):
    against = ok(client, "/api/health")["against"]
    b = models[1]
    assert (against["model"], against["vocab_size"], against["dim"]) == (b.model, SUBSET, b.dim)
    assert against["matched"] == SUBSET  # every token of the copy, special ones by name
    assert against["alignment"] == "ready"


def test_one_model_has_no_pair_endpoints(alone):
    assert "against" not in ok(alone[0], "/api/health")
    for path in ("/api/pair/neighbors?q=king", "/api/drift"):
        answer = alone[0].get(path)
        assert answer.status_code == 404
        assert "--against" in answer.json()["error"]


def test_while_aligning_the_lists_answer_and_the_drift_says_so(models, pair):
    """The alignment on its own thread, held back: the rest answers, /api/drift gives 202."""
    from dataclasses import replace

    from tokneigh.web.app import Served
    from tokneigh.web.background import Once

    release = threading.Event()
    slow = replace(pair)
    slow.alignment = Once(lambda _: (release.wait(10), models[2])[1], name="test-align")
    a_spaces = spaces_of(models[0])
    test_client, worker = client_of(Served(a_spaces, slow), {**a_spaces, **slow.worker_spaces()})
    try:
        with test_client:
            answer = test_client.get("/api/drift")
            assert answer.status_code == 202 and answer.json()["status"] == "computing"
            lists = ok(test_client, "/api/pair/neighbors", q="king")
            assert lists["drift"] == {"status": "computing"} and lists["b"] is not None
            assert ok(test_client, "/api/health")["against"]["alignment"] == "computing"
            release.set()
            slow.alignment.finished.wait(10)
            assert ok(test_client, "/api/drift", top=1)["status"] == "ready"
    finally:
        release.set()
        worker.close()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--against-embeddings", "input"], "--against-embeddings needs --against"),
        (["--against", " "], "--against takes a model name"),
    ],
)
def test_bad_against_options(args, fragment):
    assert_one_line_error(cli("serve", "--port", "0", *args), 2, fragment)
