"""The map of the whole vocabulary (``tokneigh layout``, ``Embeddings.layout``): coordinates,
clusters and honesty, each against a reference written out here in plain numpy, its cache,
and the command line.

UMAP runs on the small Llama checkpoint (476 ranked tokens) and only where the test is about
UMAP: importing umap-learn and compiling its numba code costs seconds. PCA serves the rest.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, cli

import tokneigh

HONESTY_K = 10


# --- references -------------------------------------------------------------------------------


def exact_neighbors(unit: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Each token's k nearest among ``ids`` (self excluded), one row at a time: cosine of the
    unit rows in float64, ties by lower id. Positions in ``ids``."""
    x = unit[ids].astype(np.float64)
    out = []
    for i in range(ids.size):
        scores = (x * x[i]).sum(axis=1)
        scores[i] = -np.inf
        out.append(np.lexsort((ids, -scores))[:k])
    return np.asarray(out)


def map_neighbors(xy: np.ndarray, k: int) -> np.ndarray:
    """Each point's k nearest points (Euclidean, self excluded), from every distance by hand."""
    p = np.asarray(xy, dtype=np.float64)
    out = []
    for i in range(p.shape[0]):
        d = np.sqrt(((p - p[i]) ** 2).sum(axis=1))
        d[i] = np.inf
        out.append(np.argsort(d, kind="stable")[:k])
    return np.asarray(out)


def reference_honesty(unit: np.ndarray, ids: np.ndarray, xy: np.ndarray) -> np.ndarray:
    exact = exact_neighbors(unit, ids, HONESTY_K)
    on_map = map_neighbors(xy, HONESTY_K)
    return np.array([len(set(a) & set(b)) / HONESTY_K for a, b in zip(exact, on_map)])


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def umap_run(llama_dir, tmp_path_factory):
    """One UMAP layout (seed 0, 15 neighbours) in a cache of its own, and the progress calls."""
    emb = tokneigh.load(str(llama_dir), cache_dir=tmp_path_factory.mktemp("umap-cache"))
    calls: list[tuple[int, int]] = []
    result = emb.layout("umap", 15, seed=0, progress=lambda d, t: calls.append((d, t)))
    return emb, result, calls


@pytest.fixture
def llama(llama_dir, cache_dir):
    return tokneigh.load(str(llama_dir))


# --- coordinates ------------------------------------------------------------------------------


def test_umap_gives_the_same_bits_for_a_seed_in_a_fresh_cache(umap_run, llama):
    _, first, _ = umap_run
    again = llama.layout("umap", 15, seed=0)  # another cache: computed, not read
    assert not first.cached and not again.cached
    assert again.xy.dtype == np.float32 and again.xy.shape == (first.ids.size, 2)
    assert again.xy.tobytes() == first.xy.tobytes()
    assert np.array_equal(again.clusters, first.clusters)
    assert np.array_equal(again.honesty, first.honesty)
    assert [c.name_ids for c in again.cluster_list] == [c.name_ids for c in first.cluster_list]
    other = llama.layout("umap", 15, seed=1)
    assert not np.array_equal(other.xy, first.xy)  # the seed is used


def test_umap_reports_its_epochs_as_progress(umap_run):
    _, _, calls = umap_run
    epochs = [(d, t) for d, t in calls if t == 500]  # umap-learn: 500 epochs under 10,000 rows
    assert epochs and epochs[-1] == (500, 500)
    assert all(0 <= d <= t for d, t in calls)


def test_pca_equals_the_top_two_components_of_an_svd(llama):
    result = llama.layout("pca", 15)
    x = llama.unit[result.ids].astype(np.float64)
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    ref = u[:, :2] * s[:2]
    # The sign convention: each axis's projection largest in magnitude is positive.
    for j in range(2):
        if ref[np.argmax(np.abs(ref[:, j])), j] < 0:
            ref[:, j] = -ref[:, j]
    np.testing.assert_allclose(result.xy, ref, atol=1e-5 * np.abs(ref).max())
    assert result.method == "pca" and result.xy.dtype == np.float32


# --- honesty ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["umap", "pca"])
def test_honesty_equals_a_reference_from_the_exact_neighbours_and_the_map(
    method, umap_run, llama
):
    result = umap_run[1] if method == "umap" else llama.layout("pca", 15)
    ref = reference_honesty(llama.unit, result.ids, result.xy)
    np.testing.assert_allclose(result.honesty, ref, atol=1e-12)
    summary = result.honesty_summary()
    assert summary["mean"] == pytest.approx(ref.mean())
    q1, median, q3 = np.percentile(ref, [25, 50, 75])
    assert (summary["q1"], summary["median"], summary["q3"]) == pytest.approx((q1, median, q3))
    assert result.honesty_k == HONESTY_K


def test_umap_keeps_more_neighbours_than_pca_on_the_same_tokens(umap_run, llama):
    # What a map is for: UMAP's local neighbourhoods beat a linear projection's.
    assert umap_run[1].honesty.mean() > llama.layout("pca", 15).honesty.mean()


# --- clusters -----------------------------------------------------------------------------


def test_clusters_cover_every_token_numbered_by_size_and_named_by_their_centres(llama):
    result = llama.layout("pca", 15)
    ids, labels = result.ids, result.clusters
    count = len(result.cluster_list)
    assert labels.shape == ids.shape and labels.dtype == np.int32
    assert labels.min() == 0 and labels.max() == count - 1
    sizes = [c.size for c in result.cluster_list]
    assert sum(sizes) == ids.size and sizes == np.bincount(labels).tolist()
    # 0 the largest, then by size; ties by the smallest member id.
    keys = [(-c.size, int(ids[labels == c.number].min())) for c in result.cluster_list]
    assert keys == sorted(keys)
    # Names: the 3 members most often among their own cluster's 15 nearest, by a loop.
    exact = exact_neighbors(llama.unit, ids, 15)
    inside = np.zeros(ids.size, dtype=int)
    for i in range(ids.size):
        for j in exact[i]:
            inside[j] += labels[i] == labels[j]
    for c in result.cluster_list:
        members = np.flatnonzero(labels == c.number)
        ranked = sorted(members.tolist(), key=lambda m: (-inside[m], ids[m]))
        assert c.name_ids == [int(ids[m]) for m in ranked[:3]]
        assert set(c.name_ids) <= set(ids[members].tolist())  # names are its own tokens
        assert c.name == ", ".join(llama.codec.shown(i)[1] for i in c.name_ids)
        median = np.median(result.xy[members].astype(np.float64), axis=0)
        assert (c.x, c.y) == pytest.approx(tuple(median))


def test_clusters_are_the_same_for_a_seed(llama, llama_dir, tmp_path):
    first = llama.layout("pca", 15, seed=3)
    other = tokneigh.load(str(llama_dir), cache_dir=tmp_path / "fresh").layout("pca", 15, seed=3)
    assert not other.cached
    assert np.array_equal(first.clusters, other.clusters)
    assert [c.name for c in first.cluster_list] == [c.name for c in other.cluster_list]


# --- the cache ----------------------------------------------------------------------------


def test_the_layout_is_kept_and_shares_its_graph_with_graph(llama):
    lines: list[str] = []
    first = llama.layout("pca", 15, report=lines.append)
    assert (llama.path / "layout-v1-cosine-pca-n15-s0.npz").is_file()
    assert (llama.path / "graph-cosine-k15.npz").is_file()  # `tokneigh graph --k 15` reads it
    assert llama.graph(15).cached
    again = llama.layout("pca", 15)
    assert again.cached and again.seconds == 0.0
    for name in ("ids", "xy", "clusters", "honesty"):
        assert np.array_equal(getattr(again, name), getattr(first, name)), name
    assert [c.name for c in again.cluster_list] == [c.name for c in first.cluster_list]
    # Fewer than 10 neighbours: the graph of k = 10 serves both the layout and the honesty.
    llama.layout("pca", 4)
    assert not (llama.path / "graph-cosine-k4.npz").exists()
    assert llama.graph(10).cached


def test_a_graph_already_kept_is_used(llama, monkeypatch):
    from tokneigh.analyses import whole

    graph = llama.graph(12)

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the all-pairs pass ran again")

    monkeypatch.setattr(whole, "compute_graph", no_second_pass)
    result = llama.layout("pca", 12)
    assert result.neighbors == 12 and not result.cached
    exact = np.searchsorted(result.ids, graph.neighbors[:, :HONESTY_K])
    ref = [len(set(a) & set(b)) / HONESTY_K for a, b in zip(exact, map_neighbors(result.xy, 10))]
    np.testing.assert_allclose(result.honesty, ref, atol=1e-12)


def test_special_tokens_are_laid_out_only_when_asked(llama):
    plain = llama.layout("pca", 15)
    full = llama.layout("pca", 15, include_special=True)
    special = set(llama._special_ids().tolist())
    assert special and not special & set(plain.ids.tolist())
    assert special <= set(full.ids.tolist())
    assert full.ids.size == llama.vocab_size - llama.unusable.size and full.include_special
    assert (llama.path / "layout-v1-cosine-pca-n15-s0-special.npz").is_file()
    ref = reference_honesty(llama.unit, full.ids, full.xy)
    np.testing.assert_allclose(full.honesty, ref, atol=1e-12)


def _tamper(path: Path, **changes) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "damage",
    ["truncated", "honesty", "names", "nan", "numbering"],
)
def test_a_damaged_layout_file_is_reported_and_computed_again(llama, damage):
    first = llama.layout("pca", 15)
    path = llama.path / "layout-v1-cosine-pca-n15-s0.npz"
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "honesty":
        _tamper(path, honesty=kept["honesty"] + 0.05)
    elif damage == "names":  # cluster 0 named by a token of cluster 1
        names = kept["name_ids"].copy()
        names[0, 0] = names[1, 0]
        _tamper(path, name_ids=names)
    elif damage == "nan":
        xy = kept["xy"].copy()
        xy[3, 1] = np.nan
        _tamper(path, xy=xy)
    else:  # clusters 0 and 1 swapped: no longer numbered by size
        labels = kept["clusters"].copy()
        labels[kept["clusters"] == 0], labels[kept["clusters"] == 1] = 1, 0
        _tamper(path, clusters=labels)
    lines: list[str] = []
    again = llama.layout("pca", 15, report=lines.append)
    warned = [line for line in lines if line.startswith("warning: ")]
    assert len(warned) == 1 and "layout-v1-cosine-pca-n15-s0.npz" in warned[0], lines
    assert not again.cached
    assert np.array_equal(again.xy, first.xy) and np.array_equal(again.honesty, first.honesty)
    assert llama.layout("pca", 15).cached  # and kept again


# --- the API's values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("tsne", 15), "umap, pca"),
        (("pca", 0), "neighbors must be between 1"),
        (("pca", 476), "neighbors must be between 1 and 475"),
    ],
)
def test_bad_values_are_usage_errors(llama, args, fragment):
    with pytest.raises(tokneigh.UsageError, match=fragment):
        llama.layout(*args)


def test_the_result_renders_and_describes_itself(llama):
    result = llama.layout("pca", 15)
    data = result.to_json()
    assert data["method"] == "pca" and data["neighbors"] == 15 and data["honesty_k"] == 10
    assert len(data["tokens"]) == result.ids.size == len(data["tokens"])
    assert [c["size"] for c in data["clusters"]] == [c.size for c in result.cluster_list]
    assert repr(result).startswith("MapLayout(") and len(repr(result)) < 300
    table = result.to_pandas()
    assert list(table.columns) == ["id", "token", "x", "y", "cluster", "honesty"]
    assert table["id"].tolist() == [t["id"] for t in data["tokens"]]
    assert table["x"].tolist() == [t["x"] for t in data["tokens"]]
    assert table["token"].tolist() == [t["token"] for t in data["tokens"]]
    assert table["cluster"].tolist() == result.clusters.tolist()
    html = result._repr_html_()
    assert "<table>" in html and "named by" in html


# --- the command line ---------------------------------------------------------------------


def test_json_tsv_and_csv_give_the_same_rows_as_the_api(llama, llama_dir):
    result = llama.layout("pca", 15)
    args = ("layout", "--method", "pca", "--model", llama_dir)
    out = cli(*args, "--format", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    tokens = data["tokens"]
    assert [t["id"] for t in tokens] == result.ids.tolist()
    assert [t["token"] for t in tokens] == [llama.token_text(int(i)) for i in result.ids]
    assert [[t["x"], t["y"]] for t in tokens] == result.xy.tolist()
    assert [t["cluster"] for t in tokens] == result.clusters.tolist()
    assert [t["honesty"] for t in tokens] == result.honesty.tolist()
    assert data["honesty"]["mean"] == pytest.approx(result.honesty.mean())
    tsv = cli(*args, "--format", "tsv").stdout.splitlines()
    assert tsv[0].split("\t") == ["id", "token", "x", "y", "cluster", "honesty"]
    assert len(tsv) == 1 + result.ids.size
    records = list(csv.reader(io.StringIO(cli(*args, "--format", "csv").stdout, newline="")))
    assert records[0] == ["id", "token", "x", "y", "cluster", "honesty"]
    for record, t in zip(records[1:], tokens):
        assert int(record[0]) == t["id"] and float(record[2]) == t["x"]
        assert int(record[4]) == t["cluster"] and float(record[5]) == t["honesty"]
        assert record[1] == (t["token"] or "")


def test_the_table_gives_the_honesty_and_the_clusters(llama, llama_dir):
    result = llama.layout("pca", 15)
    out = cli("layout", "--method", "pca", "--model", llama_dir)
    assert out.exit_code == 0, out.stderr
    s = result.honesty_summary()
    assert f"mean {s['mean']:.3f}" in out.stdout
    assert f"{len(result.cluster_list)} clusters" in out.stdout
    assert "read from the cache" in out.stdout
    assert result.cluster_list[0].name_ids  # its first name token is on the page
    assert llama.codec.shown(result.cluster_list[0].name_ids[0])[1] in out.stdout


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_the_plot_is_a_real_figure(llama_dir, tmp_path, suffix):
    path = tmp_path / f"map.{suffix}"
    out = cli("layout", "--method", "pca", "--model", llama_dir, "--plot", path, "-f", "json")
    assert out.exit_code == 0, out.stderr
    data = path.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    else:
        root = ET.fromstring(data)
        assert root.tag.endswith("svg")
        assert data.count(b"<path") + data.count(b"<use") > 100  # the points
    assert json.loads(out.stdout)["method"] == "pca"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--neighbors", "0"), "--neighbors"),
        (("--method", "tsne"), "umap or pca"),
        (("--neighbors", "5000"), "neighbors must be between 1 and 475"),
        (("--seed", "-1"), "--seed"),
        (("--plot", "map.txt"), "must end in"),
    ],
)
def test_bad_input_is_one_line(llama_dir, extra, fragment):
    out = cli("layout", "--method", "pca", "--model", llama_dir, *extra)
    assert_one_line_error(out, 2, fragment)
