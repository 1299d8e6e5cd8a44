"""`tokneigh verify`: the per-row loop against the vectorized product, and core.scores_loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
from explore_refs import Reference, full_order
from helpers import cli

import tokneigh
from tokneigh.errors import UsageError
from tokneigh.space import core

SHARED_CACHE = True  # one cache per module: each model is built once


def verify_json(model, *args: str) -> dict:
    result = cli("verify", *args, "--model", str(model), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("fixture", "query"),
    [("gpt2_dir", "Mike"), ("gpt2_dir", "banana"), ("minilm_dir", "king"),
     ("minilm_dir", "tokenization")],
)
def test_loop_and_vectorized_agree(request, fixture, query):
    folder = request.getfixturevalue(fixture)
    data = verify_json(folder, query, "--top", "15")
    assert data["pearson"] > 0.99999
    assert 0 <= data["max_abs_diff"] < 1e-5
    assert data["top_k_agree"] is True
    if len(data["query_ids"]) == 1:
        assert data["top_k_identical"] is True and data["top_k_tied_swaps"] == 0
        assert data["top_k_loop"] == data["top_k_vectorized"]
    else:
        # The query's own tokens tie in exact arithmetic against their mean ("ban" and "ana"
        # for "banana"): rounding may order them differently in the two methods, and verify
        # says so rather than calling the methods different.
        assert sorted(data["top_k_loop"]) == sorted(data["top_k_vectorized"])
    # ... and both agree with an independent reference (raw weights, full sort).
    ref = Reference(folder)
    assert data["query_ids"] == ref.ids(query)
    scores = ref.scores(ref.word(query))
    expected = full_order(scores)[:15]
    got = data["top_k_vectorized"]
    np.testing.assert_allclose(scores[got], scores[expected], atol=1e-6)
    assert data["k"] == 15 and data["vocab_size"] == ref.raw.shape[0]
    # Timings are reported, never judged (shared CI cores): only their consistency.
    assert data["loop_seconds"] > 0 and data["vectorized_seconds"] > 0
    assert data["speedup"] == pytest.approx(data["loop_seconds"] / data["vectorized_seconds"])


def test_default_query_by_id_and_table(gpt2_dir):
    default = verify_json(gpt2_dir)
    assert default["query"] == "Mike" and default["top_k_identical"]
    assert len(default["top_k_loop"]) == 10
    by_id = verify_json(gpt2_dir, "--id", "50256", "-k", "5")
    assert by_id["query"] is None and by_id["query_id"] == 50256 and by_id["top_k_loop"][0] == 50256
    table = cli("verify", "king", "--model", str(gpt2_dir))
    assert table.exit_code == 0, table.stderr
    text = table.stdout
    for needle in ("Pearson correlation", "1.000000", "same top 10", "yes", "speed-up",
                   "Python loop", "vectorized"):
        assert needle in text, needle
    tsv = cli("verify", "king", "-f", "tsv", "-m", str(gpt2_dir))
    header, row = tsv.stdout.splitlines()
    fields = dict(zip(header.split("\t"), row.split("\t")))
    assert fields["top_k_identical"] == "true" and float(fields["pearson"]) > 0.99999
    assert fields["top_k_loop"] == fields["top_k_vectorized"]


@pytest.mark.parametrize(
    "args",
    [["--id", "7"], ["Mike", "--id", "3"], ["Mike", "--top", "0"], ["--id", "99999999"], [" "]],
)
def test_bad_input_is_one_line_on_stderr(gpt2_dir, args):
    tokneigh.load(str(gpt2_dir))  # cached first: a first use's progress lines are not errors
    # Row 7 of the fixture is all zeros: its cosine is undefined.
    result = cli("verify", *args, "--model", str(gpt2_dir))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: ")
    assert result.stdout == ""


def test_api_verify_returns_the_dataclass(minilm_dir, module_cache):
    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    v = emb.verify("queen", k=5, repeats=2)
    assert v.top_k_identical and v.top_k_loop[0] == emb.tokenize("queen").ids[0]
    assert v.query.text == "queen" and v.k == 5 and v.dim == 384
    with pytest.raises(UsageError):
        emb.verify("queen", k=0)


# --- the reference loop itself ----------------------------------------------------------------


def test_scores_loop_is_cosine_row_by_row():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(200, 12)).astype(np.float32) * rng.uniform(0.1, 5, size=(200, 1))
    raw[17] = 0.0
    query = rng.normal(size=12).astype(np.float32)
    got = core.scores_loop(raw, query)
    norms = np.linalg.norm(raw.astype(np.float64), axis=1)
    expected = raw.astype(np.float64) @ query / np.where(norms > 0, norms, 1)
    expected /= np.linalg.norm(query)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[17] == 0.0 and got.dtype == np.float64
    # Any iterable of rows works (verify feeds rows rebuilt a block at a time).
    np.testing.assert_array_equal(core.scores_loop(iter(list(raw)), query), got)
    assert (core.scores_loop(raw, np.zeros(12)) == 0).all()
