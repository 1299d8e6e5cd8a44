"""The whole vocabulary at once: the all-pairs neighbour graph, hubness, the corrected metrics
and the space's statistics, each against a reference written out here in plain numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from safetensors.numpy import load_file, save_file

import tokneigh
from tokneigh.space import allpairs, core
from tokneigh.space.metrics import parse_metric

SHARED_CACHE = True


# --- references ---------------------------------------------------------------------------------


def unit64(matrix: np.ndarray) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    n = np.sqrt((x * x).sum(axis=1))
    return np.divide(x, n[:, None], out=np.zeros_like(x), where=n[:, None] > 0)


def reference_scores(vectors: np.ndarray, row: int) -> np.ndarray:
    """Cosine of one row with every row, one elementwise product per row (identical rows get
    identical scores: ties stay ties)."""
    x = unit64(vectors)
    return (x * x[row]).sum(axis=1)


def reference_knn(
    vectors: np.ndarray, rows: np.ndarray, k: int, radius: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best among ``rows`` (self excluded) by a full sort of its scores, ties by
    lower id; with ``radius`` the CSLS score 2 cos - r(x) - r(y)."""
    ids, sims = [], []
    for x in rows:
        s = reference_scores(vectors, int(x))[rows]
        if radius is not None:
            s = 2 * s - radius[rows] - radius[x]
        s[rows == x] = -np.inf
        order = np.lexsort((rows, -s))[:k]
        ids.append(rows[order])
        sims.append(s[order])
    return np.asarray(ids), np.asarray(sims)


def reference_radius(vectors: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """CSLS's r(t): the mean cosine of t's k nearest rows, self excluded (MUSE's formula)."""
    r = np.zeros(vectors.shape[0])
    for x in rows:
        s = reference_scores(vectors, int(x))[rows]
        s[rows == x] = -np.inf
        r[x] = np.sort(s)[::-1][:k].mean()
    return r


def with_ties(rng: np.random.Generator, n: int = 700, d: int = 24) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[10] = x[20]  # exact duplicates: a tie at every query
    x[30] = x[20]
    x[n - 1] = x[5]
    x[40:60] = x[40]  # a plateau of 20 identical rows, more than the shortlist's slack
    return x


# --- the all-pairs pass against per-row rankings -----------------------------------------------


@pytest.mark.parametrize("k", [1, 10, 30])
@pytest.mark.parametrize("block", [64, 1000])
def test_the_pass_equals_a_per_row_ranking_with_ties_and_left_out_rows(k, block):
    rng = np.random.default_rng(k)
    x = with_ties(rng)
    unit, _ = core.normalize_rows(x)
    rows = np.flatnonzero(np.arange(x.shape[0]) % 9 != 4)  # some rows left out on both sides
    ids, sims = allpairs.knn_all_pairs(unit, rows, k, block=block)
    ref_ids, ref_sims = reference_knn(unit, rows, k)
    assert np.array_equal(ids, ref_ids)
    # (The library scores a float32 query vector, as `neighbors` does: 1e-7 is its rounding.)
    np.testing.assert_allclose(sims, ref_sims, rtol=0, atol=1e-7)
    # The duplicates are listed in id order: 20's list starts with its twins 10 and 30.
    assert ids[np.searchsorted(rows, 20), :2].tolist() == [10, 30][: min(k, 2)]


def test_the_pass_scores_every_row_as_a_neighbors_query_does_to_the_last_bit():
    rng = np.random.default_rng(3)
    unit, _ = core.normalize_rows(with_ties(rng))
    rows = np.arange(unit.shape[0])
    ids, sims = allpairs.knn_all_pairs(unit, rows, 12, block=128)
    for x in rng.choice(rows, 60, replace=False).tolist():
        query = core.query_vectors(unit, [[x]])
        [(want_ids, want_sims)] = core.rank_many(unit, query, 12, [[x]])
        assert ids[x].tolist() == want_ids.tolist()
        assert sims[x].tolist() == want_sims.tolist()  # bit for bit


def test_the_csls_pass_equals_the_formula_ranked_per_row():
    rng = np.random.default_rng(5)
    x = with_ties(rng, n=400)
    unit, _ = core.normalize_rows(x)
    rows = np.arange(x.shape[0])
    radius = reference_radius(unit, rows, 10)
    ids, sims = allpairs.knn_all_pairs(unit, rows, 7, radius=radius, block=96)
    ref_ids, ref_sims = reference_knn(unit, rows, 7, radius)
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(sims, ref_sims, atol=2e-7)


def test_k_must_leave_a_row_to_rank():
    unit, _ = core.normalize_rows(np.eye(5, dtype=np.float32))
    with pytest.raises(ValueError):
        allpairs.knn_all_pairs(unit, np.arange(5), 5)
    ids, _ = allpairs.knn_all_pairs(unit, np.arange(5), 4)  # every other row: all tie at 0
    assert ids[0].tolist() == [1, 2, 3, 4] and ids[4].tolist() == [0, 1, 2, 3]


# --- a checkpoint with controlled rows ------------------------------------------------------------


@pytest.fixture(scope="module")
def tied_llama(llama_dir, tmp_path_factory) -> Path:
    """The Llama-style checkpoint with duplicated rows (ties) in its input matrix."""
    folder = tmp_path_factory.mktemp("tied-llama") / "ckpt"
    shutil.copytree(llama_dir, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    name = "model.embed_tokens.weight"
    w = tensors[name].copy()
    w[300] = w[200]
    w[301] = w[200]
    tensors[name] = w
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def llama(tied_llama, module_cache):
    # The module's cache, which its command-line tests use too (SHARED_CACHE).
    return tokneigh.load(str(tied_llama), cache_dir=module_cache)


def raw_rows(emb) -> np.ndarray:
    return emb.unit.astype(np.float64) * emb.norms.astype(np.float64)[:, None]


def test_graph_equals_the_reference_on_a_llama_checkpoint_including_ties(llama):
    graph = llama.graph(8)
    rows = llama.graph_rows()
    assert np.array_equal(graph.ids, rows)
    assert not set(llama._special_ids().tolist()) & set(rows.tolist())  # left out by default
    ref_ids, ref_sims = reference_knn(llama.unit, rows, 8)
    assert np.array_equal(graph.neighbors, ref_ids)
    np.testing.assert_allclose(graph.similarities, ref_sims, atol=1e-7)
    row = int(np.searchsorted(rows, 200))
    assert graph.neighbors[row, :2].tolist() == [300, 301]
    # Each list is what `neighbors --id N` lists, the same numbers to the last bit.
    filters = tokneigh.Filters(skip_special=True)
    for i in (0, 17, row, rows.size - 1):
        listed = llama.neighbors(int(rows[i]), k=9, filters=filters, exclude_query=True)
        assert [n.id for n in listed.neighbors][:8] == graph.neighbors[i].tolist()
        assert [n.similarity for n in listed.neighbors][:8] == graph.similarities[i].tolist()
    # --include-special: every usable row on both sides.
    full = llama.graph(8, include_special=True)
    assert full.ids.size == llama.vocab_size - llama.unusable.size


def test_the_graph_is_cached_and_a_damaged_copy_is_computed_again(llama):
    first = llama.graph(5)
    again = llama.graph(5)
    assert again.cached and np.array_equal(again.neighbors, first.neighbors)
    path = llama.path / "graph-cosine-k5.npz"
    path.write_bytes(path.read_bytes()[:100])  # truncated
    lines: list[str] = []
    third = llama.graph(5, report=lines.append)
    assert not third.cached and np.array_equal(third.neighbors, first.neighbors)
    assert len(lines) == 1 and lines[0].startswith("warning: the cached graph-cosine-k5.npz")
    assert llama.graph(5).cached


def test_hubness_counts_k_occurrence_and_its_skewness_by_hand(llama):
    result = llama.hubness(6, hubs=5)
    rows = llama.graph_rows()
    ref_ids, _ = reference_knn(llama.unit, rows, 6)
    counts = {int(t): 0 for t in rows}
    for listed in ref_ids:
        for t in listed:
            counts[int(t)] += 1
    n = np.asarray([counts[int(t)] for t in rows], dtype=np.float64)
    mean, std = n.mean(), n.std()
    assert result.skewness == pytest.approx(((n - mean) ** 3).mean() / std**3, abs=1e-12)
    assert result.max == int(n.max())
    assert result.antihub_share == pytest.approx(np.mean(n == 0))
    assert result.tokens == rows.size
    best = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    assert [(h.id, h.occurrences) for h in result.hubs] == best
    data = result.to_json()
    assert set(data) == {"k", "metric", "tokens", "skewness", "max", "antihub_share", "hubs"}
    assert set(data["hubs"][0]) == {"id", "token", "occurrences"}


# --- metrics against their formulas -------------------------------------------------------------


def test_centered_is_the_cosine_after_removing_the_mean_row(llama):
    raw = raw_rows(llama)
    usable = np.ones(llama.vocab_size, bool)
    usable[llama.unusable] = False
    want = unit64(raw - raw[usable].mean(axis=0))
    got = llama.under("centered")
    np.testing.assert_allclose(got.unit[usable], want[usable], atol=2e-6)
    assert got.metric.name == "centered"
    listed = got.neighbors(5, k=6)
    s = reference_scores(want, 5)
    s[llama.unusable] = -np.inf
    assert [n.id for n in listed.neighbors] == np.lexsort((np.arange(s.size), -s))[:6].tolist()


def test_abtt_projects_the_centred_vector_on_the_top_components(llama):
    d = 3
    raw = raw_rows(llama)
    usable = np.ones(llama.vocab_size, bool)
    usable[llama.unusable] = False
    centred = raw - raw[usable].mean(axis=0)
    _, _, vt = np.linalg.svd(centred[usable], full_matrices=False)
    top = vt[:d].T
    want = unit64(centred - centred @ top @ top.T)
    got = llama.under(f"abtt:{d}")
    np.testing.assert_allclose(got.unit[usable], want[usable], atol=2e-5)
    # The default D is round(dim / 100), at least 1.
    assert llama.under("abtt").metric.param == max(1, round(llama.dim / 100))


def test_abtt_removes_the_projection_of_the_centred_row_not_of_the_raw_one():
    from tokneigh.space.metrics import Metric, transformed

    rng = np.random.default_rng(2)
    raw = rng.standard_normal((300, 16)) * np.linspace(3, 0.5, 16) + 4.0  # a large common mean
    unit, norms = core.normalize_rows(raw.astype(np.float32))
    rebuilt = unit.astype(np.float64) * norms.astype(np.float64)[:, None]
    centred = rebuilt - rebuilt.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    top = vt[:2].T
    want = unit64(centred - centred @ top @ top.T)
    buggy = unit64(centred - rebuilt @ top @ top.T)  # the widespread bug
    got = transformed(Metric("abtt", 2), unit, norms, np.ones(300, dtype=bool))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(got - buggy).max() > 0.1


def test_csls_scores_are_two_cosines_less_both_radii(llama):
    emb = llama.under("csls:4")
    rows = np.flatnonzero(np.isin(np.arange(llama.vocab_size), llama.unusable, invert=True))
    radius = reference_radius(llama.unit, rows, 4)
    a, b = 17, 250
    cos = reference_scores(llama.unit, a)[b]
    result = emb.compare(a, b)
    assert result.metric == "csls:4"
    assert result.similarity == pytest.approx(2 * cos - radius[a] - radius[b], abs=1e-6)
    assert result.cosine == pytest.approx(cos, abs=1e-7)
    listed = emb.neighbors(a, k=5)
    s = 2 * reference_scores(llama.unit, a) - radius - radius[a]
    s[llama.unusable] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))[:5]
    assert [n.id for n in listed.neighbors] == order.tolist()
    np.testing.assert_allclose([n.similarity for n in listed.neighbors], s[order], atol=1e-6)
    # b's rank as the list orders it.
    assert emb.compare(a, int(order[3])).rank_of_b == 4
    # A query of several tokens: r of its vector is the mean of its 4 best cosines.
    text = "hello world"
    vector = core.query_vector(llama.unit, llama.tokenize(text).ids).astype(np.float64)
    all_cos = unit64(llama.unit) @ (vector / np.linalg.norm(vector))
    all_cos[llama.unusable] = -np.inf
    r_q = np.sort(all_cos)[::-1][:4].mean()
    got = emb.neighbors(text, k=1).neighbors[0]
    assert got.similarity == pytest.approx(2 * all_cos[got.id] - radius[got.id] - r_q, abs=1e-6)


def test_metric_data_is_cached_and_a_damaged_file_is_rebuilt(tied_llama, cache_dir):
    emb = tokneigh.load(str(tied_llama), metric="abtt:2")
    path = emb.path / "metric-abtt-2.npy"
    assert path.is_file()
    first = np.array(emb.unit)
    path.write_bytes(path.read_bytes()[:-64])  # truncated
    lines: list[str] = []
    again = tokneigh.load(str(tied_llama), metric="abtt:2", report=lines.append)
    assert np.array_equal(np.asarray(again.unit), first)
    assert any("metric-abtt-2.npy" in line and line.startswith("warning:") for line in lines)
    assert path.stat().st_size == first.nbytes + 128  # rewritten whole (npy header + data)


def test_unknown_or_impossible_metrics_are_usage_errors():
    for spec in ("cosin", "abtt:0", "abtt:32", "csls:0", "csls:479", "centered:3", "csls:x"):
        with pytest.raises(tokneigh.UsageError):
            parse_metric(spec, dim=32, rows=479)
    assert parse_metric("CSLS", 32, 479).name == "csls:10"


# --- stats ----------------------------------------------------------------------------------------


def test_anisotropy_is_close_to_the_mean_over_all_pairs(llama):
    stats = llama.stats(pairs=20_000, seed=3)
    rows = llama.graph_rows()
    x = unit64(llama.unit)[rows]
    s = x @ x.T
    exact = (s.sum() - np.trace(s)) / (rows.size * (rows.size - 1))
    assert stats.anisotropy == pytest.approx(exact, abs=0.01)
    assert stats.sample_pairs == 20_000 and stats.tokens == rows.size
    centred = llama.under("centered").stats(pairs=20_000, seed=3)
    assert abs(centred.anisotropy) < abs(stats.anisotropy)  # centring removes the common part
    norms = llama.norms[rows].astype(np.float64)
    assert stats.norms["mean"] == pytest.approx(norms.mean())
    assert stats.norms["max"] == pytest.approx(norms.max())
    values = np.linalg.eigvalsh(np.cov(llama.unit[rows].astype(np.float64).T, bias=True))[::-1]
    np.testing.assert_allclose(stats.top_pc_variance, values[:10] / values.sum(), atol=1e-9)
    assert stats.special_rows == llama._special_ids().size
    assert llama.stats(pairs=20_000, seed=3).anisotropy == stats.anisotropy  # seeded


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".npz", ".jsonl"])
def test_graph_writes_each_format_with_the_same_pairs(tied_llama, llama, tmp_path, suffix):
    out = tmp_path / f"knn{suffix}"
    result = cli("graph", "--top", "4", "--output", str(out), "--model", str(tied_llama))
    assert result.exit_code == 0, result.stderr
    graph = llama.graph(4)
    n = graph.ids.size
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out).to_pydict()
        assert list(table) == ["id", "rank", "neighbor_id", "similarity", "token",
                               "neighbor_token"]  # the tokens: tests/test_graph_files.py
        assert table["id"] == np.repeat(graph.ids, 4).tolist()
        assert table["rank"] == [1, 2, 3, 4] * n
        assert table["neighbor_id"] == graph.neighbors.ravel().tolist()
        assert table["similarity"] == graph.similarities.ravel().tolist()
    elif suffix == ".npz":
        with np.load(out) as data:
            assert np.array_equal(data["ids"], graph.ids)
            assert np.array_equal(data["neighbors"], graph.neighbors)
            assert np.array_equal(data["similarities"], graph.similarities)
    else:
        lines = out.read_text(encoding="utf-8").splitlines()
        assert len(lines) == n
        first = json.loads(lines[0])
        assert first["id"] == int(graph.ids[0]) and first["token"] == llama.token_text(first["id"])
        assert [x["id"] for x in first["neighbors"]] == graph.neighbors[0].tolist()
        assert [x["rank"] for x in first["neighbors"]] == [1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no scratch file left


@pytest.mark.parametrize(
    "args",
    [
        ["--top", "0"],
        ["--top", "1000000"],
        ["--metric", "cosinus"],
        ["--output", "{tmp}/no/such/folder/knn.npz"],
        ["--output", "{tmp}/knn.csv"],
        ["--output", "{tmp}"],
    ],
)
def test_graph_bad_input_is_one_line_and_leaves_no_file(tied_llama, llama, tmp_path, args):
    # (`llama`: the model is cached first, so a first use's progress lines are not counted)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "knn.npz")]
    result = cli("graph", *args, "--model", str(tied_llama))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: "), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_no_partial_file(llama, tmp_path, monkeypatch):
    from tokneigh.present import graphfile

    def explode(graph, path, *_):
        path.write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(graphfile, "_write_jsonl", explode)
    with pytest.raises(KeyboardInterrupt):
        graphfile.write_graph(llama.graph(3), tmp_path / "knn.jsonl", llama.token_text)
    assert list(tmp_path.iterdir()) == []


def test_hubness_json_and_plot_from_the_command_line(tied_llama, llama, tmp_path):
    plot = tmp_path / "nk.png"
    result = cli(
        "hubness", "--top", "6", "--hubs", "3", "--plot", str(plot), "--format", "json",
        "--model", str(tied_llama),
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    want = llama.hubness(6, hubs=3).to_json()
    assert data == json.loads(json.dumps(want))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metric_option_on_queries_says_which_metric(tied_llama, llama):
    plot = str(tied_llama.parent / "map.png")
    for command in (
        ["neighbors", "hello"],
        ["analogy", "a", "b", "c"],
        ["map", "hello", "--plot", plot],
    ):
        result = cli(*command, "--metric", "csls:4", "--format", "json", "--top", "3",
                        "--model", str(tied_llama))
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        item = data[0] if isinstance(data, list) else data
        assert item["metric"] == "csls:4"
    result = cli("compare", "a", "b", "--metric", "centered", "--format", "json",
                    "--model", str(tied_llama))
    data = json.loads(result.stdout)
    assert data["metric"] == "centered"
    assert data["similarity"] == llama.under("centered").compare("a", "b").similarity
    bad = cli("neighbors", "hello", "--metric", "abtt:99", "--model", str(tied_llama))
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


def test_stats_json_contract(tied_llama):
    result = cli("stats", "--pairs", "5000", "--format", "json", "--model", str(tied_llama))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"metric", "anisotropy", "sample_pairs", "norms", "top_pc_variance"} <= set(data)
    assert set(data["norms"]) == {"mean", "std", "min", "max"}
    assert len(data["top_pc_variance"]) == 10


# --- the other families ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gpt2_dir", "bert_dir"])
def test_graph_on_gpt2_and_bert_checkpoints_matches_sampled_rows(family, request):
    emb = tokneigh.load(str(request.getfixturevalue(family)))
    graph = emb.graph(5)
    rows = emb.graph_rows()
    assert graph.ids.tolist() == rows.tolist()
    rng = np.random.default_rng(0)
    x = unit64(emb.unit)
    for i in rng.choice(rows.size, 25, replace=False).tolist():
        s = (x[rows] * x[rows[i]]).sum(axis=1)
        s[i] = -np.inf
        order = np.lexsort((rows, -s))[:5]
        assert graph.neighbors[i].tolist() == rows[order].tolist()
    hub = emb.hubness(5, graph=graph)
    assert hub.tokens == rows.size and sum(hub.occurrences) == 5 * rows.size


def test_the_shell_switches_metric_and_answers_as_the_api(tied_llama, llama):
    import subprocess
    import sys

    script = "hello\n:metric csls:4\nhello\n:metric nonsense\nhello\n"
    done = subprocess.run(
        [sys.executable, "-m", "tokneigh", "shell", "-f", "json", "-k", "3", "-m", str(tied_llama)],
        input=script, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    commands = [o["command"] for o in out]
    assert commands == ["neighbors", "metric", "neighbors", "metric", "neighbors"]
    assert out[1]["metric"] == "csls:4" and "error" in out[3]
    filters = tokneigh.Filters(skip_special=True)
    for line, metric in ((out[0], "cosine"), (out[2], "csls:4"), (out[4], "csls:4")):
        want = llama.under(metric).neighbors("hello", k=3, filters=filters).to_json()
        assert {k: v for k, v in line.items() if k != "command"} == json.loads(json.dumps(want))
