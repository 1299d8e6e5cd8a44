"""A block of queries ranked at once (``core.rank_block``): the same ids and the same float64
scores, bit for bit, as each query ranked alone by ``core.top_k_selected``, and the exact order
(float64 cosines, ties by lower id) of numpy by hand."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from tokneigh.space import core


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def tied_matrix(rng: np.random.Generator, rows: int = 6000, dim: int = 24) -> np.ndarray:
    """Unit rows drawn with repetition from 1,500: every row has copies, exact ties in any
    score (the same bits scored the same way), broken by lower id."""
    base, _ = core.normalize_rows(rng.normal(size=(1500, dim)))
    return np.ascontiguousarray(base[rng.integers(0, 1500, size=rows)])


def block_queries(rng: np.random.Generator, unit: np.ndarray, n: int) -> np.ndarray:
    """Rows of the matrix (each ties with its copies at 1.0), means of two rows and random
    directions."""
    picked = unit[rng.integers(0, unit.shape[0], size=n // 3)]
    pairs = unit[rng.integers(0, unit.shape[0], size=(n // 3, 2))].mean(axis=1)
    rest = rng.normal(size=(n - 2 * (n // 3), unit.shape[1]))
    return core.normalize_rows(np.concatenate([picked, pairs, rest]))[0]


def alone(unit: np.ndarray, query: np.ndarray, k: int, skip) -> tuple[list, list]:
    """One query through the one-query path: matrix-vector product, ``top_k_selected``."""
    ids, scores = core.top_k_selected(
        unit @ query, k, exclude=skip, rescore=partial(core.exact_scores, unit, query)
    )
    return ids.tolist(), scores.tolist()


def by_hand(unit: np.ndarray, query: np.ndarray, k: int, skip) -> list[int]:
    """The exact order from numpy by hand: float64 cosines (BLAS), ties (to 12 digits) by
    lower id, ``skip`` left out."""
    unit64 = unit.astype(np.float64)
    q = query.astype(np.float64)
    cos = unit64 @ q / (np.linalg.norm(unit64, axis=1) * np.linalg.norm(q))
    order = np.lexsort((np.arange(len(cos)), -np.round(cos, 12)))
    left_out = set(np.asarray(skip, dtype=np.int64).tolist())
    return [int(i) for i in order if int(i) not in left_out][:k]


@pytest.mark.parametrize("k", [1, 3, 20, 60])
def test_a_block_ranks_each_row_as_it_ranks_alone_ties_included(rng, k):
    unit = tied_matrix(rng)
    queries = block_queries(rng, unit, 40)
    # Some rows leave nothing out, some a few ids, one the query's own best rows.
    exclude = [np.empty(0, dtype=np.int64)] * 10
    exclude += [rng.integers(0, unit.shape[0], size=rng.integers(1, 30)) for _ in range(29)]
    exclude += [np.argsort(-(unit @ queries[39]))[:5]]
    block = queries @ unit.T
    got = core.rank_block(unit, queries, block, k, exclude)
    assert all(r is not None for r in got)  # the block path answered every row
    for i, result in enumerate(got):
        assert result is not None
        ids, scores = result
        assert ids.dtype == np.int64 and scores.dtype == np.float64
        assert (ids.tolist(), scores.tolist()) == alone(unit, queries[i], k, exclude[i]), i
        assert ids.tolist() == by_hand(unit, queries[i], k, exclude[i]), i


def test_copies_of_a_row_tie_and_come_by_lower_id(rng):
    unit = tied_matrix(rng)
    query = unit[17]
    copies = np.flatnonzero((unit == query).all(axis=1))
    assert copies.size >= 2
    block = np.stack([query, unit[3]]) @ unit.T
    (ids, scores), _ = core.rank_block(unit, np.stack([query, unit[3]]), block, 20, [(), ()])
    # Every copy scores exactly the same float64, listed in id order, ahead of any other row.
    assert ids[: copies.size].tolist() == copies.tolist()
    assert len(set(scores[: copies.size].tolist())) == 1
    assert scores[copies.size] < scores[0]


def test_rows_it_cannot_do_are_left_to_the_one_query_path(rng):
    unit = tied_matrix(rng, rows=2000)
    queries = block_queries(rng, unit, 6)
    block = queries @ unit.T
    # k too large for group maxima to pay (k > rows / 32): every row is left alone.
    assert core.rank_block(unit, queries, block.copy(), 100, [()] * 6) == [None] * 6
    # A row with fewer than k rows left after the exclusions; a row with a plateau of ties
    # (all scores equal); a row holding NaN.
    exclude = [np.arange(1995), (), (), (), (), ()]
    plateau = block.copy()
    plateau[1] = 0.25
    plateau[2, 7] = np.nan
    got = core.rank_block(unit, queries, plateau, 10, exclude)
    assert got[:3] == [None, None, None]
    assert all(r is not None for r in got[3:])


def test_rank_many_gives_the_same_bits_as_one_query_at_a_time(rng, monkeypatch):
    monkeypatch.setattr(core, "QUERY_BLOCK", 16)  # 4 blocks of 13
    unit = tied_matrix(rng)
    queries = block_queries(rng, unit, 52)
    exclude = [rng.integers(0, unit.shape[0], size=3) for _ in range(52)]
    for k in (1, 10, 200):  # 200: too large for the block path, the one-query path answers
        batch = core.rank_many(unit, queries, k, exclude)
        for i, (ids, scores) in enumerate(batch):
            assert (ids.tolist(), scores.tolist()) == alone(unit, queries[i], k, exclude[i])


def test_a_batch_without_filters_takes_the_block_path(rng, monkeypatch):
    """The fast path is the one a batch takes: no row of a 2-row-or-more block falls back."""
    unit = tied_matrix(rng)
    queries = block_queries(rng, unit, 30)
    calls = []
    original = core.top_k_selected
    monkeypatch.setattr(
        core, "top_k_selected", lambda *a, **kw: calls.append(1) or original(*a, **kw)
    )
    core.rank_many(unit, queries, 20, [np.asarray([5])] * 30)
    assert calls == []
    # A filter (a selector) is still the one-query path's, row by row.
    core.rank_many(unit, queries, 20, None, [lambda ids: ids] * 30)
    assert len(calls) == 30
