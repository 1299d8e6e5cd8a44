"""One answer per question: a query ranks the same alone, in batches of any size, and in the
shell, and ties (mathematical or not) are broken by lower id."""

from __future__ import annotations

import io
import json
import random
from contextlib import redirect_stdout

import numpy as np
import pytest

import tokneigh
from tokneigh.cli.shell import Shell, ShellFormat
from tokneigh.space import core

SHARED_CACHE = True


@pytest.fixture(scope="module")
def emb(gpt2_dir):
    return tokneigh.load(str(gpt2_dir))


@pytest.fixture(scope="module")
def queries(emb):
    """300 queries: token ids, one-token texts and texts of two or more tokens (the mean of
    two unit rows ties its two pieces mathematically)."""
    rng = random.Random(7)
    ids = rng.sample(range(emb.vocab_size), 400)
    out: list[str | int] = ["banana", " Mike", "paris", "cosmic"]
    out += ids[:100]
    texts = [emb.codec.text(i) for i in ids[100:]]
    out += [t for t in texts[:100] if t.strip() and t.isprintable()]
    out += [a + b for a, b in zip(texts[100:200], texts[200:300]) if (a + b).strip()]
    queries = [q for q in out if isinstance(q, int) or emb.tokenize(q).ids][:300]
    assert sum(isinstance(q, str) and len(emb.tokenize(q).ids) > 1 for q in queries) > 80
    return queries


def _rows(result):
    return [(n.id, n.similarity) for n in result.neighbors]


FILTERS = [
    tokneigh.Filters(),
    tokneigh.Filters(skip_special=True, words_only=True),
    tokneigh.Filters(dedupe=True, min_sim=0.2),
]


@pytest.mark.parametrize("filters", FILTERS, ids=["none", "words", "dedupe"])
def test_batches_of_any_size_agree_with_single_queries(emb, queries, filters, monkeypatch):
    monkeypatch.setattr(core, "QUERY_BLOCK", 256)  # 300 queries: two blocks of 150
    singles = [_rows(emb.neighbors(q, k=12, filters=filters)) for q in queries]
    for size in (2, 7, 64, 300):  # 300 spans two of the core's blocks
        batched = []
        for start in range(0, len(queries), size):
            chunk = queries[start : start + size]
            batched += [_rows(r) for r in emb.neighbors_many(chunk, k=12, filters=filters)]
        assert batched == singles, size  # the same ids, in the same order, to the last bit


def test_the_order_is_the_exact_one_with_ties_by_lower_id(emb, queries):
    """Against numpy by hand: float64 cosines of the cached unit rows, sorted by (-score, id)."""
    unit64 = np.asarray(emb.unit, dtype=np.float64)
    row_norms = np.linalg.norm(unit64, axis=1)
    row_norms[row_norms == 0] = np.inf  # a zero row scores 0
    for q in queries[:120]:
        ids = emb.query_tokens(q).ids
        mean = np.asarray(emb.unit[ids], dtype=np.float32).mean(axis=0, dtype=np.float32)
        mean64 = mean.astype(np.float64)  # normalized in float64, stored as float32
        vector = (mean64 / np.linalg.norm(mean64)).astype(np.float32)
        v64 = np.asarray(vector, dtype=np.float64)
        scores = (unit64 @ v64) / (row_norms * np.linalg.norm(v64))
        # Ties (to 12 digits) by lower id: lexsort's last key is the primary one.
        order = np.lexsort((np.arange(len(scores)), -np.round(scores, 12)))[:10].tolist()
        got = emb.neighbors(q, k=10)
        assert [n.id for n in got.neighbors] == order, q
        np.testing.assert_allclose([n.similarity for n in got.neighbors], scores[order],
                                   atol=1e-12)


def test_mathematical_ties_list_the_same_order_everywhere(emb):
    # "banana" is "ban" + "ana": against the mean of their two unit rows both score
    # (1 + cos(a, b)) / |a + b| in exact arithmetic; only the float32 rounding of the cached
    # rows separates them, and every path now sees that same difference.
    result = emb.neighbors("banana", k=2)
    assert sorted(n.id for n in result.neighbors) == sorted(emb.tokenize("banana").ids)
    a, b = result.neighbors
    assert abs(a.similarity - b.similarity) < 1e-6
    for batch in (["banana"], ["x", "banana", "y"], ["banana"] * 300):
        many = emb.neighbors_many(batch, k=2)
        assert all(_rows(r) == _rows(result) for r in many if r.query == "banana")


def test_similarities_never_leave_minus_one_to_one(emb, queries):
    for result in emb.neighbors_many(queries[:50], k=5):
        assert all(-1.0 <= n.similarity <= 1.0 for n in result.neighbors)
        assert result.neighbors[0].similarity <= 1.0
    assert emb.neighbors(5, k=1).neighbors[0].similarity == 1.0  # not 1.0000001192092896


def test_compare_ranks_b_where_the_neighbour_list_puts_it(emb, queries):
    filters = tokneigh.Filters(skip_special=True)
    for q in queries[:40]:
        listed = emb.neighbors(q, k=25, filters=filters).neighbors
        for n in listed[::6]:
            assert emb.rank(q, n.id, filters=filters) == n.rank, (q, n.id)


def test_shell_batches_answer_as_single_queries(emb, queries):
    texts = [q for q in queries if isinstance(q, str) and "\n" not in q and not q.startswith(":")]
    sh = Shell(emb, top=8, output=ShellFormat.json, interactive=False,
               loader=lambda name, kind, metric: emb, skip_special=True)
    out = io.StringIO()
    with redirect_stdout(out):
        assert sh.run_lines(texts[:150])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == len(texts[:150])
    filters = tokneigh.Filters(skip_special=True)
    for line, text in zip(lines, texts):
        want = emb.neighbors(text, k=8, filters=filters)
        assert line == {"command": "neighbors", **want.to_json()}


def test_the_exact_scores_do_not_depend_on_the_rows_scored_together(emb):
    rng = np.random.default_rng(3)
    vector = emb.vector("Mike")
    ids = rng.choice(emb.vocab_size, 5000, replace=False)
    alone = [core.exact_scores(emb.unit, vector, np.asarray([i]))[0] for i in ids[:200]]
    together = core.exact_scores(emb.unit, vector, ids)[:200]
    assert list(together) == alone
