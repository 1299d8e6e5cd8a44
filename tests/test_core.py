"""The similarity core against plain numpy and full sorts."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from tokneigh.space import core


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def full_sort_top(scores: np.ndarray, k: int, exclude=()) -> list[int]:
    order = np.lexsort((np.arange(len(scores)), -scores))  # stable: ties by lower index
    return [int(i) for i in order if i not in set(exclude)][:k]


def test_normalize_rows_gives_unit_rows_and_raw_norms(rng):
    matrix = rng.normal(size=(50, 8)).astype(np.float32)
    unit, norms = core.normalize_rows(matrix)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(norms, np.linalg.norm(matrix.astype(np.float64), axis=1), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_normalize_rows_in_blocks_matches_the_formula_and_leaves_its_input(rng, dtype):
    """Several blocks (and a last short one), a bad row in one of them: each row is
    row / ||row|| in float64, bad rows zero, and the caller's matrix is never written to."""
    matrix = rng.normal(size=(2 * core._NORM_BLOCK + 37, 6)).astype(dtype)
    matrix[core._NORM_BLOCK + 5, 2] = np.nan
    before = matrix.copy()
    unit, norms = core.normalize_rows(matrix)
    np.testing.assert_array_equal(matrix, before)
    raw = matrix.astype(np.float64)
    length = np.sqrt((raw * raw).sum(axis=1))
    good = np.isfinite(length)
    np.testing.assert_allclose(unit[good], raw[good] / length[good, None], rtol=1e-6)
    np.testing.assert_allclose(norms[good], length[good], rtol=1e-6)
    assert not unit[~good].any() and not norms[~good].any() and good.sum() == len(good) - 1


def test_zero_rows_stay_zero_and_never_nan(rng):
    matrix = rng.normal(size=(20, 4)).astype(np.float32)
    matrix[[3, 9]] = 0
    unit, norms = core.normalize_rows(matrix)
    assert not np.isnan(unit).any()
    assert norms[3] == 0 and not unit[3].any()
    scores = core.scores_for(unit, core.unit_vector(matrix[0]))
    assert scores[3] == 0 and scores[9] == 0
    # A query made of a zero row is the zero vector: every score is 0, still no NaN.
    zero_query = core.query_vector(unit, [3])
    assert not zero_query.any()
    assert not np.isnan(core.scores_for(unit, zero_query)).any()


@pytest.mark.parametrize("k", [1, 2, 5, 17, 100])
def test_top_k_matches_a_full_stable_sort_even_with_ties(rng, k):
    # Integers 0..9 over 100 entries: every cut point falls inside a tie.
    scores = rng.integers(0, 10, size=100).astype(np.float32)
    assert core.top_k(scores, k).tolist() == full_sort_top(scores, k)


def test_top_k_excludes_and_clamps(rng):
    scores = rng.normal(size=30).astype(np.float32)
    best = int(np.argmax(scores))
    assert best not in core.top_k(scores, 5, exclude=[best]).tolist()
    assert core.top_k(scores, 5, exclude=[best]).tolist() == full_sort_top(scores, 5, [best])
    assert len(core.top_k(scores, 1000)) == 30
    assert len(core.top_k(scores, 1000, exclude=[0, 1])) == 28


def test_rank_many_equals_one_query_at_a_time_across_blocks(rng, monkeypatch):
    monkeypatch.setattr(core, "QUERY_BLOCK", 4)  # force several blocks
    unit, _ = core.normalize_rows(rng.normal(size=(300, 16)))
    queries = np.stack([core.unit_vector(v) for v in rng.normal(size=(11, 16))])
    results = core.rank_many(unit, queries, k=7, exclude=[[i] for i in range(11)])
    for i, (ids, scores) in enumerate(results):
        expected = unit.astype(np.float64) @ queries[i].astype(np.float64)
        assert ids.tolist() == full_sort_top(expected, 7, [i])
        np.testing.assert_allclose(scores, expected[ids], atol=1e-6)


def test_rank_of_is_the_position_in_the_full_sort(rng):
    base, _ = core.normalize_rows(rng.normal(size=(20, 8)))
    unit = base[rng.integers(0, 20, size=60)]  # repeated rows: exact ties, broken by lower id
    query = core.unit_vector(rng.normal(size=8))
    exact = unit.astype(np.float64) @ query.astype(np.float64)
    exact /= np.linalg.norm(unit.astype(np.float64), axis=1) * np.linalg.norm(query)
    order = sorted(range(60), key=lambda i: (-round(exact[i], 12), i))
    row = unit @ query
    for index in (0, 7, 33, 59):
        value = float(core.exact_scores(unit, query, np.asarray([index]))[0])
        rescore = partial(core.exact_scores, unit, query)
        assert core.rank_of(row, rescore, index, value) == order.index(index) + 1
    # A vector that is no row stands after every row that scores more.
    assert core.rank_of(row, partial(core.exact_scores, unit, query), None, 2.0) == 1
    assert core.rank_of(row, partial(core.exact_scores, unit, query), None, -2.0) == 61


def test_cosine_pearson_angle_against_numpy(rng):
    a, b = rng.normal(size=(2, 32))
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert core.cosine(a, b) == pytest.approx(cos)
    assert core.pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert core.angle_degrees(cos) == pytest.approx(np.degrees(np.arccos(cos)))
    assert core.angle_degrees(1.0000001) == 0.0  # rounding past 1 does not give NaN
    assert core.cosine(a, np.zeros(32)) == 0.0
