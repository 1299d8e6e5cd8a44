"""`tokneigh analogy` and Embeddings.most_similar/analogy against a numpy reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from explore_refs import Reference, assert_same_ranking, filtered_ranking
from helpers import cli

import tokneigh
from tokneigh.errors import UsageError

SHARED_CACHE = True  # one cache per module: each model is built once


def analogy_json(model, *args: str) -> dict:
    result = cli("analogy", *args, "--model", str(model), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def expected(ref: Reference, positive, negative, k, **filters):
    scores = ref.scores(ref.expression(positive, negative))
    inputs = {i for w in positive + negative for i in ref.ids(w)}
    return scores, [i for i, _ in filtered_ranking(ref, scores, k, exclude=inputs, **filters)]


# --- the real analogy, on real weights --------------------------------------------------------


def test_man_king_woman_gives_queen_on_minilm(minilm_dir, minilm_ref):
    data = analogy_json(minilm_dir, "man", "king", "woman", "--top", "5")
    tokens = [n["token"] for n in data["neighbors"]]
    assert "queen" in tokens  # the task's bar; on all-MiniLM-L6-v2 it is in fact first
    assert tokens[0] == "queen"
    assert data["positive"] == ["king", "woman"] and data["negative"] == ["man"]
    scores, ids = expected(minilm_ref, ["king", "woman"], ["man"], 5)
    assert_same_ranking(data["neighbors"], scores, ids)


@pytest.mark.parametrize(
    ("a", "b", "c", "answer"),
    [("france", "paris", "germany", "berlin"), ("big", "bigger", "small", "smaller")],
)
def test_more_analogies_that_minilm_knows(minilm_dir, minilm_ref, a, b, c, answer):
    data = analogy_json(minilm_dir, a, b, c, "--top", "3")
    assert data["neighbors"][0]["token"] == answer
    scores, ids = expected(minilm_ref, [b, c], [a], 3)
    assert_same_ranking(data["neighbors"], scores, ids)


def test_positive_negative_lists_equal_the_three_word_form(minilm_dir):
    abc = analogy_json(minilm_dir, "man", "king", "woman")
    lists = analogy_json(minilm_dir, "-p", "king", "--positive", "woman", "-n", "man")
    assert lists == abc
    assert set(abc) == {"positive", "negative", "metric", "neighbors"}
    assert len(abc["neighbors"]) == 10  # the default --top
    assert set(abc["neighbors"][0]) == {"rank", "id", "token", "similarity"}


def test_a_longer_expression_and_a_multi_token_word(minilm_dir, minilm_ref):
    # "tokenization" is two WordPiece tokens: its term is their normalized mean unit vector.
    assert len(minilm_ref.ids("tokenization")) == 2
    positive, negative = ["paris", "germany", "tokenization"], ["france", "italy"]
    args = [f"--positive={w}" for w in positive] + [f"--negative={w}" for w in negative]
    data = analogy_json(minilm_dir, *args, "--top", "15")
    scores, ids = expected(minilm_ref, positive, negative, 15)
    assert_same_ranking(data["neighbors"], scores, ids)
    inputs = {i for w in positive + negative for i in minilm_ref.ids(w)}
    assert not inputs & {n["id"] for n in data["neighbors"]}


def test_abc_mixed_with_extra_terms(minilm_dir, minilm_ref):
    data = analogy_json(minilm_dir, "man", "king", "woman", "-p", "royal", "-n", "old")
    assert data["positive"] == ["king", "woman", "royal"]
    assert data["negative"] == ["man", "old"]
    scores, ids = expected(minilm_ref, ["king", "woman", "royal"], ["man", "old"], 10)
    assert_same_ranking(data["neighbors"], scores, ids)


# --- random weights: exact agreement with the reference, multi-token words --------------------


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(" man", " king", " woman"), ("banana", " apple", "cosmic"), ("Mike", " Mike", " Anna")],
)
def test_matches_the_numpy_reference_on_random_weights(gpt2_dir, gpt2_ref, a, b, c):
    data = analogy_json(gpt2_dir, a, b, c, "--top", "25")
    scores, ids = expected(gpt2_ref, [b, c], [a], 25)
    assert_same_ranking(data["neighbors"], scores, ids)


def test_filters_apply_to_analogy(minilm_dir, minilm_ref):
    plain = analogy_json(minilm_dir, "man", "king", "woman")
    assert "##4" in [n["token"] for n in plain["neighbors"]]  # a digit piece sneaks in
    words = analogy_json(minilm_dir, "man", "king", "woman", "--words-only", "--min-sim", "0.3")
    tokens = [n["token"] for n in words["neighbors"]]
    assert "##4" not in tokens and all(n["similarity"] >= 0.3 for n in words["neighbors"])
    scores, ids = expected(
        minilm_ref, ["king", "woman"], ["man"], 10, words_only=True, min_sim=0.3
    )
    assert_same_ranking(words["neighbors"], scores, ids)
    deduped = analogy_json(minilm_dir, "man", "king", "woman", "--dedupe")
    assert all("variants" in n for n in deduped["neighbors"])


# --- output formats ---------------------------------------------------------------------------


def test_table_names_the_analogy_and_tsv_has_one_row_per_token(minilm_dir):
    table = cli("analogy", "man", "king", "woman", "--model", str(minilm_dir))
    assert table.exit_code == 0, table.stderr
    first_line = table.stdout.splitlines()[0]
    assert '"man" is to "king" as "woman" is to ?' in first_line
    assert '"king" − "man" + "woman"' in first_line
    assert '"queen"' in table.stdout
    tsv = cli("analogy", "man", "king", "woman", "-k", "4", "-f", "tsv", "-m", str(minilm_dir))
    assert tsv.exit_code == 0, tsv.stderr
    lines = tsv.stdout.splitlines()
    assert lines[0].split("\t") == ["rank", "id", "token", "similarity"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert lines[1].split("\t")[2] == "queen"


def test_help_states_the_order(minilm_dir):
    result = cli("analogy", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "A is to B as C is to ?" in text
    assert "B − A + C" in text
    assert '"man is to king as woman is to ?"' in text


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["man", "king"],
        ["man", "king", "woman", "girl"],
        ["--top", "3"],
        ["-p", "king", "-n", "king"],
        ["man", "king", ""],
        ["man", "king", "woman", "--top", "0"],
        ["man", "king", "woman", "--min-sim", "1.5"],
        ["man", "king", "woman", "--min-sim", "nan"],
        ["man", "king", "woman", "--format", "xml"],
    ],
)
def test_bad_input_is_one_line_on_stderr(minilm_dir, args):
    result = cli("analogy", *args, "--model", str(minilm_dir))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: ")
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- the Python API ---------------------------------------------------------------------------


def test_api_analogy_is_sugar_for_most_similar(minilm_dir, module_cache, minilm_ref):
    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    sugar = emb.analogy("man", "king", "woman", k=7)
    spelled = emb.most_similar(positive=["king", "woman"], negative=["man"], k=7)
    assert sugar.to_json() == spelled.to_json() and sugar.neighbors == spelled.neighbors
    assert sugar.analogy and not spelled.analogy  # only the title differs
    assert sugar.neighbors[0].token == "queen"
    assert [t.text for t in sugar.positive] == ["king", "woman"]
    # A lone string is one term; exclude_input=False lets the inputs back in.
    alone = emb.most_similar("king", k=3, exclude_input=False)
    assert [n.token for n in alone.neighbors][0] == "king"
    assert alone.neighbors[0].similarity == pytest.approx(1.0, abs=1e-6)
    # Token ids are terms too.
    king, man, woman = (minilm_ref.ids(w)[0] for w in ("king", "man", "woman"))
    by_id = emb.analogy(man, king, woman, k=7)
    assert [n.id for n in by_id.neighbors] == [n.id for n in sugar.neighbors]
    np.testing.assert_allclose(
        [n.similarity for n in by_id.neighbors], [n.similarity for n in sugar.neighbors]
    )


def test_api_refuses_empty_and_cancelling_expressions(minilm_dir, module_cache):
    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    with pytest.raises(UsageError):
        emb.most_similar()
    with pytest.raises(UsageError):
        emb.most_similar(positive=["king", "queen"], negative=["queen", "king"])
    with pytest.raises(UsageError):
        emb.most_similar(positive=["king"], k=0)
    # Negative terms alone are allowed: the tokens least like them.
    away = emb.most_similar(negative=["king"], k=3)
    scores = np.asarray(emb.unit) @ -emb.vector("king")
    assert away.neighbors[0].similarity == pytest.approx(float(np.max(scores)), abs=1e-5)
