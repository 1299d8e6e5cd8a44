"""The bf16 candidate pass gives the float32 pass's graph bit for bit, near-ties included; its
error bound holds (issue 24, item 4). The bf16 path is forced: correctness does not depend on
the CPU having fast bf16 products, and these tests run where it has none."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

from tokneigh.errors import UsageError
from tokneigh.space import allpairs, bf16, core


def both(unit, rows, k, **options):
    f32 = allpairs.knn_all_pairs(unit, rows, k, products="float32", **options)
    b16 = allpairs.knn_all_pairs(unit, rows, k, products="bf16", **options)
    return f32, b16


def assert_same(f32, b16):
    assert np.array_equal(f32[0], b16[0])
    assert np.array_equal(f32[1], b16[1])


def per_row_reference(unit: np.ndarray, rows: np.ndarray, k: int, at: list[int]):
    """Each sampled row's list by numpy in float64 (sorted by -score then id), to check that
    the two paths agree with something other than each other."""
    for x in at:
        q = unit[rows[x]].astype(np.float64)
        q /= np.linalg.norm(q)
        cand = np.delete(rows, x)
        vecs = unit[cand].astype(np.float64)
        scores = vecs @ q / np.linalg.norm(vecs, axis=1)
        order = np.lexsort((cand, -scores))[:k]
        yield x, cand[order], scores[order]


@pytest.mark.parametrize("d", [48, 300])
def test_bf16_and_float32_passes_give_the_same_graph_on_a_random_matrix(d):
    rng = np.random.default_rng(d)
    unit, _ = core.normalize_rows(rng.standard_normal((2000, d)).astype(np.float32))
    rows = np.flatnonzero(np.arange(2000) % 13 != 2)  # some rows left out on both sides
    f32, b16 = both(unit, rows, 10, block=256)
    assert_same(f32, b16)
    for x, ids, scores in per_row_reference(unit, rows, 10, [0, 17, 999, rows.size - 1]):
        assert np.array_equal(b16[0][x], ids)
        np.testing.assert_allclose(b16[1][x], scores, rtol=0, atol=1e-6)


def near_ties(rng: np.random.Generator, d: int = 64) -> np.ndarray:
    """Clusters of rows closer to each other than the bf16 bound can tell apart (so the k-th
    score falls inside a crowd of near-ties), exact duplicates, and a plateau of identical
    rows wider than the bf16 shortlist (its rows must be ranked again on their own)."""
    centres = rng.standard_normal((40, d))
    clusters = [c + rng.standard_normal((14, d)) * 2e-4 for c in centres]  # ~1e-4 apart in cos
    spread = rng.standard_normal((500, d))
    x = np.concatenate([*clusters, spread]).astype(np.float32)
    x[600:750] = x[600]  # 150 identical rows: wider than k + bf16.EXTRA
    x[5] = x[9]
    return x


@pytest.mark.parametrize("k", [1, 10, 13, 30])
def test_near_ties_at_the_kth_score_give_the_same_graph(k):
    rng = np.random.default_rng(k)
    unit, _ = core.normalize_rows(near_ties(rng))
    rows = np.arange(unit.shape[0])
    spy = []
    original = allpairs._Final.plateaus

    def plateaus(self):
        spy.append(np.concatenate([np.empty(0, dtype=np.int64), *self.unsound]))
        original(self)

    allpairs._Final.plateaus = plateaus
    try:
        f32, b16 = both(unit, rows, k, block=128)
    finally:
        allpairs._Final.plateaus = original
    assert_same(f32, b16)
    # The plateau wider than the shortlist was found and ranked again (the bf16 pass's spy).
    assert np.isin(np.arange(600, 750), spy[1]).all()
    for x, ids, scores in per_row_reference(unit, rows, k, [0, 13, 14, 300, 650, 1000]):
        assert np.array_equal(b16[0][x], ids), x
        np.testing.assert_allclose(b16[1][x], scores, rtol=0, atol=1e-6)


def test_csls_gives_the_same_graph_with_either_product():
    rng = np.random.default_rng(7)
    unit, _ = core.normalize_rows(near_ties(rng, d=40))
    radius = rng.uniform(0.2, 0.5, unit.shape[0])
    rows = np.flatnonzero(np.arange(unit.shape[0]) % 7 != 3)
    assert_same(*both(unit, rows, 8, radius=radius, block=200))


def test_a_real_vocabulary_gives_the_same_graph(minilm_dir, cache_dir):
    """all-MiniLM-L6-v2's real rows (a third of its 30,522 x 384, to stay fast): real
    near-duplicates, real ties."""
    from tokneigh import load

    emb = load(str(minilm_dir))
    rows = emb.graph_rows()[::3]
    assert_same(*both(emb.view.unit, rows, 10))


def test_every_bf16_score_is_within_the_proven_bound():
    """|b - exact| <= C_x + u |b| / (1 - u) for every pair of a block, the exact score in
    float64 by hand, on rows built to round badly (values near bf16's halfway points)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 256))
    x[:200] = np.round(x[:200] * 128) / 128 + 1 / 512  # halfway between bf16 neighbours
    unit, _ = core.normalize_rows(x)
    rows = np.arange(600)
    fast = bf16.Bf16Rows(unit, rows, csls=False)
    out = np.empty((600, 600), dtype=np.float32)
    fast.multiply(0, 600, 0, 600, out)
    wide = unit.astype(np.float64)
    wide /= np.linalg.norm(wide, axis=1)[:, None]
    exact = wide @ wide.T
    u = bf16.U_BF16 / (1 - bf16.U_BF16)
    bound = fast.constant[:, None] + u * np.abs(out.astype(np.float64))
    assert (np.abs(out - exact) <= bound).all()
    # And the bound is not vacuous: the errors reach a good part of it.
    assert np.abs(out - exact).max() > 0.05 * bound.max()


def test_the_product_can_be_forced_and_a_bad_choice_is_refused(monkeypatch):
    big = (4096, 128_256)
    monkeypatch.setenv(bf16.PRODUCTS_ENV, "float32")
    assert bf16.choose("auto", *big) == "float32"
    assert bf16.choose("bf16", *big) == "bf16"  # a parameter beats the environment
    monkeypatch.setenv(bf16.PRODUCTS_ENV, "bf16")
    assert bf16.choose("auto", 8, 10) == "bf16"
    monkeypatch.setenv(bf16.PRODUCTS_ENV, "auto")
    assert bf16.choose("auto", 64, 128_256) == "float32"  # short rows: the float32 pass
    assert bf16.choose("auto", 4096, 32_000) == "float32"  # few rows: the float32 pass
    assert bf16.choose("auto", *big) == ("bf16" if bf16.fast_bf16_products() else "float32")
    monkeypatch.setenv(bf16.PRODUCTS_ENV, "fp8")
    with pytest.raises(UsageError, match="auto, bf16 or float32"):
        bf16.choose("auto", *big)


def test_a_bad_product_choice_is_one_line_on_the_command_line(llama_dir, tmp_path):
    result = run_cli(
        "graph", "--k", "3", "--model", str(llama_dir), "--output", str(tmp_path / "g.npz"),
        env={bf16.PRODUCTS_ENV: "fp8"},
    )
    assert_one_line_error(result, 2, f"{bf16.PRODUCTS_ENV} must be auto, bf16 or float32")
    assert not (tmp_path / "g.npz").exists()
