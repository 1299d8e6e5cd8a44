"""`tokneigh align` and ``Embeddings.align`` against numpy references (tests/align_refs.py):
MiniLM's real matrix copied under renamed tokens and permuted rows, turned by a rotation,
noised, or projected to another dimension."""

from __future__ import annotations

import json

import align_refs as ref
import numpy as np
import pytest
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.analyses import diff
from tokneigh.analyses.align import Options, align_views

SHARE, SEED, POOL = 0.1, 3, 2000
SUBSET = ref.SUBSET
SHARED_CACHE = True  # the copies are built once per module
pytest_plugins = ("align_fixtures",)  # weights, vocab, compared, pairs, permutation, minilm


@pytest.fixture(scope="module")
def copies(tmp_path_factory, weights, permutation, module_cache):
    """name -> (B's Embeddings, B's weights in MiniLM's id order)."""
    made = {}
    rotation = ref.rotation(weights.shape[1], 5)
    scale = float(np.linalg.norm(weights, axis=1).mean() / np.sqrt(weights.shape[1]))
    noise = np.random.default_rng(7).standard_normal(weights.shape).astype(np.float32)
    projection = np.random.default_rng(9).standard_normal((weights.shape[1], 256)) / 16
    variants = {
        "rotated": weights @ rotation,
        "noise-0.6": weights @ rotation + 0.6 * scale * noise,
        "noise-1.2": weights @ rotation + 1.2 * scale * noise,
        "projected": weights @ projection,
    }
    for name, rows in variants.items():
        rows = rows.astype(np.float32)
        folder = ref.write_copy(tmp_path_factory.mktemp(name) / "ckpt", rows, permutation)
        made[name] = (tokneigh.load(str(folder), cache_dir=module_cache), rows)
        made[f"{name}-folder"] = folder
    made["rotation"] = rotation
    return made


def run(a, b, refine=0, kept=None, top=10):
    options = Options(refine=refine, seed=SEED, test_share=SHARE, pool=POOL)
    return align_views(a.view, b.view, options, top=top, kept=kept)


def reference(weights, rows_b, compared, permutation, fit_map):
    """The held-out scores and the map, written out in numpy."""
    pairs = compared[compared < SUBSET]
    fit_at, test_at = ref.split(pairs.size, SHARE, SEED)
    x = ref.prepared(weights, pairs, pairs)  # each side centred on the shared tokens' mean
    y = ref.prepared(rows_b, pairs, pairs)  # B's rows in A's id order
    w = fit_map(x[fit_at], y[fit_at])
    ids_b = permutation[pairs]
    candidates_b = np.sort(ids_b)
    b_by_id = np.empty_like(rows_b[:SUBSET])
    b_by_id[permutation] = rows_b[:SUBSET]
    candidates = ref.prepared(b_by_id, candidates_b, candidates_b)
    truth = np.searchsorted(candidates_b, ids_b[test_at])
    queries = ref.unit(x[test_at] @ w)
    pool = ref.unit(x[fit_at][:POOL] @ w)  # the first POOL fitted pairs' tokens of A
    nn = ref.precision(queries, candidates, truth)
    csls = ref.precision(queries, candidates, truth, pool)
    cosines = (queries * y[test_at]).sum(axis=1)
    return w, nn, csls, cosines, x, y


def test_a_rotated_renamed_copy_gives_back_the_rotation(minilm, copies, weights, compared,
                                                         permutation, vocab, pairs):
    b, rows = copies["rotated"]
    result, kept = run(minilm, b)
    # The rule pairs every token with its own copy, though no raw string survived as it was...
    ids_a, ids_b, _ = result.ranking
    assert np.array_equal(np.sort(ids_a), pairs)
    assert np.array_equal(ids_b, permutation[ids_a])
    assert result.matching.compared == pairs.size
    assert result.matching.special == SUBSET - pairs.size  # [CLS], [unused0], ... by name
    assert (result.matching.unmatched_a, result.matching.unmatched_b) == (len(vocab) - SUBSET, 0)
    # ... and raw strings would have paired many wrongly (B's "ing" is MiniLM's "##ing").
    raw_b = {b.codec.raw(int(permutation[i])): i for i in pairs.tolist()}
    wrong = [i for i in compared.tolist() if raw_b.get(vocab[i], i) != i]
    assert len(wrong) > 300
    np.testing.assert_allclose(kept["weights"], copies["rotation"], atol=2e-4)
    assert result.method == "procrustes" and result.ridge is None
    assert result.retrieval.p1_nn == 1.0 and result.retrieval.p10_nn == 1.0
    _, nn, csls, cosines, _, _ = reference(weights, rows, compared, permutation, ref.procrustes)
    assert nn == (1.0, 1.0)
    assert (result.retrieval.p1_csls, result.retrieval.p10_csls) == pytest.approx(csls, abs=1e-9)
    assert result.mean_cosine == pytest.approx(1.0, abs=1e-5) and result.residual < 1e-3


def test_growing_noise_lowers_p_at_1_as_numpy_computes_it(minilm, copies, weights, compared,
                                                          permutation):
    seen = []
    for name in ("noise-0.6", "noise-1.2"):
        b, rows = copies[name]
        result, kept = run(minilm, b)
        w, nn, csls, cosines, _, _ = reference(weights, rows, compared, permutation,
                                               ref.procrustes)
        np.testing.assert_allclose(kept["weights"], w, atol=1e-4)
        r = result.retrieval
        tolerance = 2 / result.test_pairs  # a near tie may fall either way in float32
        assert r.p1_nn == pytest.approx(nn[0], abs=tolerance)
        assert r.p10_nn == pytest.approx(nn[1], abs=tolerance)
        assert r.p1_csls == pytest.approx(csls[0], abs=tolerance)
        assert r.p10_csls == pytest.approx(csls[1], abs=tolerance)
        assert result.mean_cosine == pytest.approx(cosines.mean(), abs=1e-5)
        seen.append(r.p1_nn)
    assert 1.0 > seen[0] > seen[1]


def test_another_dimension_takes_the_ridge_path(minilm, copies, weights, compared, permutation):
    b, rows = copies["projected"]
    result, kept = run(minilm, b)
    w, nn, csls, cosines, x, y = reference(
        weights, rows, compared, permutation, lambda x, y: ref.ridge(x, y, 1.0)
    )
    assert result.method == "ridge" and result.ridge == 1.0
    assert (result.dim_a, result.dim_b) == (384, 256)
    np.testing.assert_allclose(kept["weights"], w, atol=1e-4)
    tolerance = 2 / result.test_pairs
    assert result.retrieval.p1_nn == pytest.approx(nn[0], abs=tolerance)
    assert result.retrieval.p1_csls == pytest.approx(csls[0], abs=tolerance)
    assert result.mean_cosine == pytest.approx(cosines.mean(), abs=1e-5)


def test_drift_is_a_per_token_loop(minilm, copies, compared, weights, permutation, pairs):
    b, rows = copies["noise-1.2"]
    result, kept = run(minilm, b, top=4)
    x = ref.prepared(weights, pairs, pairs)
    y = ref.prepared(rows, pairs, pairs)
    by_hand = {}
    for i, token in enumerate(pairs.tolist()):
        mapped = x[i] @ kept["weights"]
        cos = mapped @ y[i] / (np.linalg.norm(mapped) * np.linalg.norm(y[i]))
        by_hand[token] = 1.0 - cos
    ids_a, ids_b, drift = result.ranking
    np.testing.assert_allclose(drift, [by_hand[i] for i in ids_a.tolist()], atol=1e-5)
    assert (np.diff(drift) <= 0).all()
    expected = sorted(by_hand, key=lambda t: (-by_hand[t], t))[:4]
    assert [d.id_a for d in result.drift] == ids_a[:4].tolist()
    assert ids_a[:4].tolist() == expected or np.allclose(
        [by_hand[t] for t in ids_a[:4].tolist()], [by_hand[t] for t in expected], atol=1e-5
    )
    top = result.drift[0]
    listed = minilm.neighbors(top.id_a, k=5, exclude_query=True,
                              filters=tokneigh.Filters(skip_special=True))
    assert [n.id for n in top.neighbors_a] == [n.id for n in listed.neighbors]
    assert top.id_b == permutation[top.id_a]


def test_refinement_rounds_keep_an_exact_rotation(minilm, copies):
    b, _ = copies["rotated"]
    result, kept = run(minilm, b, refine=2)
    assert len(result.refined_pairs) == 2 and min(result.refined_pairs) > 0.95 * POOL
    np.testing.assert_allclose(kept["weights"], copies["rotation"], atol=2e-4)
    assert result.retrieval.p1_nn == 1.0


def test_diff_and_align_agree_on_the_shared_tokens(minilm, copies):
    b, _ = copies["noise-0.6"]
    result, _ = run(minilm, b, top=0)
    compared_diff = diff.compare_models(minilm.view, b.view, sample=5, k=5)
    assert compared_diff.matching == result.matching
    assert compared_diff.shared == result.matching.compared
    ids_a, ids_b = diff.shared_tokens(minilm.view, b.view)
    assert np.array_equal(np.sort(result.ranking[0]), ids_a)


def test_the_map_is_kept_and_a_rebuilt_b_is_aligned_again(minilm_dir, tmp_path, weights,
                                                            permutation, cache_dir):
    rows = (weights @ ref.rotation(weights.shape[1], 2)).astype(np.float32)
    folder = ref.write_copy(tmp_path / "b", rows, permutation)
    a = tokneigh.load(str(minilm_dir), cache_dir=cache_dir)
    b = tokneigh.load(str(folder), cache_dir=cache_dir)
    said: list = []
    first = a.align(b, refine=0, top=3, report=said.append)
    second = a.align(b, refine=0, top=3, report=said.append)
    assert not first.cached and second.cached
    assert second.to_json() == first.to_json()
    assert len(list(a.path.glob("align-*.npz"))) == 1
    # B rebuilt from a changed checkpoint: the kept map belongs to the old B.
    noisy = rows + np.random.default_rng(1).standard_normal(rows.shape).astype(np.float32) * 0.05
    import shutil

    shutil.rmtree(folder)
    ref.write_copy(folder, noisy.astype(np.float32), permutation)
    b2 = tokneigh.load(str(folder), cache_dir=cache_dir)
    third = a.align(b2, refine=0, top=3, report=said.append)
    assert not third.cached
    assert third.mean_cosine < first.mean_cosine


# --- the command --------------------------------------------------------------------------------


def test_cli_json_tsv_table_and_the_whole_ranking_as_a_file(minilm_dir, copies, tmp_path,
                                                             module_cache, pairs):
    b, _ = copies["noise-0.6"]
    base = ["align", "--model", minilm_dir, "--against", copies["noise-0.6-folder"]]
    base += ["--refine", "0", "--pool", POOL, "--seed", SEED, "--test-share", SHARE]
    base += ["--cache-dir", module_cache, "--top", "3"]
    api, _ = run(tokneigh.load(str(minilm_dir), cache_dir=module_cache), b, top=3)
    ranking = tmp_path / "drift.csv"
    result = cli(*base, "--format", "json", "--output", ranking)
    assert result.exit_code == 0, result.stderr
    assert "tokens matched" in result.stderr and "wrote the drift of" in result.stderr
    data = json.loads(result.stdout)
    assert data["retrieval"]["nn"]["p@1"] == api.retrieval.p1_nn
    assert data["matching"]["compared"] == pairs.size
    assert [d["id_a"] for d in data["drift"]] == [d.id_a for d in api.drift]
    assert len(data["drift"][0]["neighbors_a"]) == 5
    import pandas

    table = pandas.read_csv(ranking, keep_default_na=False)
    assert len(table) == pairs.size
    assert table["id_a"].tolist() == api.ranking[0].tolist()
    np.testing.assert_allclose(table["drift"], api.ranking[2])
    tsv = cli(*base, "--format", "tsv")
    lines = tsv.stdout.splitlines()
    assert lines[0].split("\t") == ["rank", "id_a", "id_b", "token", "drift"] and len(lines) == 4
    table_out = cli(*base)
    assert "P@1 (nearest neighbour)" in table_out.stdout and "Most moved" in table_out.stdout


def test_bad_input_is_one_line(minilm_dir, tmp_path):
    for extra, fragment in (
        (["--test-share", "0"], "test share"),
        (["--test-share", "1.5"], "test share"),
        (["--ridge", "-1"], "ridge"),
        (["--output", str(tmp_path / "ranking.xlsx")], ".csv"),
        (["--output", str(tmp_path / "missing" / "r.csv")], "does not exist"),
    ):
        result = cli("align", "--model", minilm_dir, "--against", minilm_dir, *extra)
        assert_one_line_error(result, 2,
                              fragment)


def test_a_model_against_itself_finds_every_token(minilm_dir):
    result = cli("align", "--model", minilm_dir, "--against", minilm_dir, "--refine", "0",
                 "--pool", "200", "--test-share", "0.01", "--top", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["retrieval"]["nn"]["p@1"] == 1.0
    assert data["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert data["matching"]["unmatched_a"] == data["matching"]["unmatched_b"] == 0


def test_ridge_zero_with_fewer_pairs_than_dimensions_is_still_a_map():
    from tokneigh.analyses import fitting

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 12)), rng.standard_normal((5, 7))
    w, method = fitting.fit(x.astype(np.float32), y.astype(np.float32), 0.0)
    assert method == "ridge" and np.isfinite(w).all()
    np.testing.assert_allclose(x @ w, y, atol=1e-4)  # 5 equations, 12 unknowns: exact
    np.testing.assert_allclose(w, np.linalg.pinv(x) @ y, atol=1e-4)  # the least-norm one
