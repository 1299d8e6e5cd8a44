"""The Python API against the seed's brute-force loop, on random and real trained weights."""

from __future__ import annotations

import numpy as np
import pytest
from reference import loop_similarities, mean_of_unit_rows, ranking, raw_matrix

import tokneigh
from tokneigh.errors import EmptyQueryError, TokenIdError, UsageError


@pytest.fixture(scope="module")
def gpt2(gpt2_dir, tmp_path_factory):
    return tokneigh.load(str(gpt2_dir), cache_dir=tmp_path_factory.mktemp("api-cache"))


@pytest.fixture(scope="module")
def gpt2_raw(gpt2_dir):
    return raw_matrix(str(gpt2_dir))


@pytest.fixture(scope="module")
def minilm(minilm_dir, tmp_path_factory):
    return tokneigh.load(str(minilm_dir), cache_dir=tmp_path_factory.mktemp("api-cache"))


@pytest.fixture(scope="module")
def minilm_raw(minilm_dir):
    return raw_matrix(str(minilm_dir))


def test_seed_tokenization_facts(gpt2):
    assert gpt2.tokenize("banana").tokens == ["ban", "ana"]
    assert gpt2.tokenize("cosmic").tokens == ["cos", "mic"]
    assert len(gpt2.tokenize("apple").ids) == 1
    mike, spaced = gpt2.tokenize("Mike"), gpt2.tokenize(" Mike")
    assert len(mike.ids) == len(spaced.ids) == 1 and mike.ids != spaced.ids
    assert spaced.tokens == [" Mike"] and spaced.labels == ['" Mike"']
    assert gpt2.vocab_size == 50257 and gpt2.dim == 32


def assert_matches_loop(result, raw, k, exclude=()):
    """Same ids in the same order as the loop's ranking (ties by lower id); where two
    similarities are equal in exact arithmetic (e.g. "ban" and "ana" against their own mean),
    float32 and float64 round differently, so ids within 1e-6 may swap."""
    ref = loop_similarities(raw, mean_of_unit_rows(raw, result.query_ids))
    ours, expected = [n.id for n in result.neighbors], ranking(ref, k, exclude)
    np.testing.assert_allclose(ref[ours], ref[expected], atol=1e-6)
    near_ties = {i for i in ours + expected if abs(ref[i] - ref[expected[-1]]) <= 1e-6}
    assert set(ours) - near_ties == set(expected) - near_ties
    exact = [i for i, j in zip(ours, expected) if i == j]
    assert len(exact) >= len(ours) - 2 * len(_tied_pairs(ref, expected))
    np.testing.assert_allclose([n.similarity for n in result.neighbors],
                               ref[[n.id for n in result.neighbors]], atol=1e-5)
    assert [n.rank for n in result.neighbors] == list(range(1, k + 1))


def _tied_pairs(ref, ids):
    return [(a, b) for a, b in zip(ids, ids[1:]) if abs(ref[a] - ref[b]) <= 1e-6]


@pytest.mark.parametrize("query", ["Mike", " Mike", "banana", "<|endoftext|>"])
def test_neighbors_equal_the_brute_force_loop_on_random_weights(gpt2, gpt2_raw, query):
    assert_matches_loop(gpt2.neighbors(query, k=20), gpt2_raw, 20)


@pytest.mark.parametrize("query", ["Mike", "king", "banana", "tokenization"])
def test_neighbors_equal_the_brute_force_loop_on_real_weights(minilm, minilm_raw, query):
    assert_matches_loop(minilm.neighbors(query, k=20), minilm_raw, 20)


def test_real_weights_give_meaningful_neighbourhoods(minilm):
    names = [n.token for n in minilm.neighbors("Mike", k=10).neighbors]
    assert names[0] == "mike" and "michael" in names
    assert "queen" in [n.token for n in minilm.neighbors("king", k=5).neighbors]


def test_exclude_query_drops_every_query_token(gpt2, gpt2_raw):
    result = gpt2.neighbors("banana", k=10, exclude_query=True)
    assert not set(result.query_ids) & {n.id for n in result.neighbors}
    assert_matches_loop(result, gpt2_raw, 10, exclude=tuple(result.query_ids))


def test_many_queries_at_once_equal_single_queries(gpt2):
    queries = ["Mike", "banana", 50256, " apple"]
    many = gpt2.neighbors_many(queries, k=5)
    for batch, single in zip(many, [gpt2.neighbors(q, k=5) for q in queries]):
        # gemm and gemv round differently in the last bits: same ids, similarities to 1e-6.
        assert [n.id for n in batch.neighbors] == [n.id for n in single.neighbors]
        np.testing.assert_allclose([n.similarity for n in batch.neighbors],
                                   [n.similarity for n in single.neighbors], atol=1e-6)
        assert batch.query_ids == single.query_ids
    assert many[2].query is None and many[2].query_id == 50256


def test_zero_norm_rows_are_never_a_query_nor_a_neighbour(gpt2):
    with pytest.raises(UsageError, match="all zero"):
        gpt2.neighbors(7, k=5)  # row 7 was zeroed in the fixture
    assert gpt2.norms[7] == 0 and gpt2.norms[11] == 0
    assert gpt2.meta["unusable_rows"] == {"non_finite": [], "zero": [7, 11]}
    every = gpt2.neighbors("Mike", k=gpt2.vocab_size).neighbors
    assert {7, 11}.isdisjoint(n.id for n in every)
    assert not any(np.isnan(n.similarity) for n in every)


def test_similarity_compare_and_rank_against_numpy(gpt2, gpt2_raw):
    a, b = gpt2.tokenize("ban").ids[0], gpt2.tokenize("ana").ids[0]
    ra, rb = gpt2_raw[a], gpt2_raw[b]
    cos = ra @ rb / np.linalg.norm(ra) / np.linalg.norm(rb)
    result = gpt2.compare("ban", "ana")
    assert result.cosine == pytest.approx(cos, abs=1e-6)
    assert gpt2.similarity("ban", "ana") == pytest.approx(cos, abs=1e-6)
    assert result.pearson == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-5)
    assert result.norm_a == pytest.approx(np.linalg.norm(ra), rel=1e-5)
    assert result.norm_b == pytest.approx(np.linalg.norm(rb), rel=1e-5)
    assert result.angle_degrees == pytest.approx(np.degrees(np.arccos(cos)), abs=1e-4)
    order = ranking(loop_similarities(gpt2_raw, ra), gpt2.vocab_size)
    assert result.rank_of_b == order.index(b) + 1 == gpt2.rank("ban", "ana")


def test_rank_of_a_multi_token_b_is_where_its_vector_would_stand(minilm):
    result = minilm.compare("king", "tokenization")
    scores = minilm.unit @ minilm.vector("king")
    assert result.rank_of_b == int((scores > result.cosine).sum()) + 1


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("", EmptyQueryError),
        ("   ", EmptyQueryError),
        ("\n\t", EmptyQueryError),
        (50257, TokenIdError),
        (-1, TokenIdError),
        (3.5, UsageError),  # neither text nor a token id: the base class, no subclass
        (None, UsageError),
    ],
)
def test_bad_queries_raise_usage_errors(gpt2, bad, error):
    with pytest.raises(UsageError) as raised:
        gpt2.neighbors(bad)
    assert type(raised.value) is error, type(raised.value)


def test_k_below_one_is_refused_and_k_beyond_vocab_is_clamped(gpt2):
    with pytest.raises(UsageError):
        gpt2.neighbors("Mike", k=0)
    # Every row but the two zero ones (7 and 11), which have no direction and never rank.
    assert len(gpt2.neighbors("Mike", k=10**6).neighbors) == gpt2.vocab_size - 2
