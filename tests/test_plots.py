"""Pictures: `neighbors --plot` bar charts, `map` (PCA to 2-D), and core.pca_2d."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from explore_refs import Reference
from helpers import cli

import tokneigh
from tokneigh.space import core

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


SHARED_CACHE = True  # one cache per module: each model is built once


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    assert 10_000 < len(data) < 5_000_000, len(data)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def svg_texts(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def shown(token: str) -> str:
    """A token as the figures label it (quoted, as in tables), escaped as SVG text is."""
    return html.escape(json.dumps(token, ensure_ascii=False), quote=False)


@pytest.fixture
def svg_text_as_text(monkeypatch):
    """SVG with real <text> elements (not glyph paths), so the labels can be read back."""
    import matplotlib

    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")


# --- neighbors --plot -------------------------------------------------------------------------


def test_neighbors_plot_writes_a_png(minilm_dir, tmp_path):
    out = tmp_path / "king.png"
    result = cli("neighbors", "king", "--top", "15", "--plot", str(out), "-m", str(minilm_dir))
    assert result.exit_code == 0, result.stderr
    assert f"wrote {out}" in result.stderr
    width, height = png_size(out)
    assert width >= 600 and height >= 400
    assert '"queen"' in result.stdout  # the table still prints


def test_neighbors_plot_one_panel_per_query_and_labels(gpt2_dir, tmp_path, svg_text_as_text):
    out = tmp_path / "bars.svg"
    args = ["neighbors", " Mike", "$", "--top", "8", "--plot", str(out), "--dedupe"]
    result = cli(*args, "-m", str(gpt2_dir), "-f", "json")
    assert result.exit_code == 0, result.stderr
    svg = svg_texts(out)
    data = json.loads(result.stdout)
    assert svg.count("Neighbours of") == 2
    assert '>" Mike" +1<' in svg  # quoted, so the leading space shows; +1: "Mike" folded
    assert 'Neighbours of "$"' in svg  # a literal "$", not the start of math text
    for n in data[0]["neighbors"] + data[1]["neighbors"]:
        assert shown(n["token"]) in svg


def test_neighbors_plot_is_capped_with_a_warning(gpt2_dir, tmp_path):
    out = tmp_path / "many.png"
    result = cli("neighbors", "Mike", "--top", "80", "--plot", str(out), "-m", str(gpt2_dir),
                 "-f", "tsv")
    assert result.exit_code == 0, result.stderr
    assert "the plot shows the first 60" in result.stderr
    assert len(result.stdout.splitlines()) == 81  # the list itself is not cut
    png_size(out)


# --- map --------------------------------------------------------------------------------------


def pca_reference(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA by eigen-decomposition of the covariance matrix (not an SVD)."""
    centred = vectors - vectors.mean(axis=0)
    values, vecs = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(values)[::-1][:2]
    return centred @ vecs[:, order], values[order] / values.sum()


def assert_same_axes(got: np.ndarray, want: np.ndarray) -> None:
    """Equal up to the sign of each axis (a principal direction has no preferred sign)."""
    for axis in range(2):
        sign = np.sign(got[:, axis] @ want[:, axis]) or 1.0
        np.testing.assert_allclose(got[:, axis], sign * want[:, axis], atol=1e-6)


def test_map_writes_a_png_and_coordinates_match_numpy_pca(minilm_dir, tmp_path):
    out = tmp_path / "map.png"
    result = cli("map", "king", "--top", "20", "--plot", str(out), "-m", str(minilm_dir),
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    width, height = png_size(out)
    assert width >= 800 and height >= 600
    data = json.loads(result.stdout)
    assert len(data["neighbors"]) == 20
    ref = Reference(minilm_dir)
    assert data["query_ids"] == ref.ids("king")
    ids = [n["id"] for n in data["neighbors"]]
    assert ref.ids("king")[0] not in ids  # the query is its own point, not a neighbour
    vectors = np.vstack([ref.word("king"), ref.unit[ids]])
    want, share = pca_reference(vectors)
    got = np.array([data["query_xy"]] + [[n["x"], n["y"]] for n in data["neighbors"]])
    assert_same_axes(got, want)
    np.testing.assert_allclose(data["explained_variance"], share, atol=1e-6)
    assert data["neighbors"][0]["token"] == "kings"


def test_map_labels_are_quoted_and_the_query_is_marked(gpt2_dir, tmp_path, svg_text_as_text):
    out = tmp_path / "mike.svg"
    result = cli("map", " Mike", "--top", "12", "--plot", str(out), "-m", str(gpt2_dir),
                 "-f", "tsv")
    assert result.exit_code == 0, result.stderr
    svg = svg_texts(out)
    assert '" Mike" and its 12 nearest tokens' in svg
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["rank", "id", "token", "similarity", "x", "y"]
    assert lines[1].split("\t")[:3] == ["0", "", " Mike"] and len(lines) == 14
    for line in lines[2:]:
        token = line.split("\t")[2]
        assert shown(token) in svg


def test_map_table_and_filters(minilm_dir, tmp_path):
    out = tmp_path / "m.pdf"
    result = cli("map", "king", "-k", "5", "--words-only", "--plot", str(out),
                 "-m", str(minilm_dir))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:5] == b"%PDF-"
    flat = " ".join(result.stdout.split())  # the title wraps at the terminal's width
    assert "PCA axes explain" in flat and '"king" (query)' in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["map", "king"],  # --plot is required
        ["map", "king", "--plot", "{tmp}/no/such/folder/x.png"],
        ["map", "king", "--plot", "{tmp}/x.txt"],
        ["map", "king", "--plot", "{tmp}"],
        ["map", "king", "--plot", "{tmp}/x.png", "--top", "500"],
        ["map", "--plot", "{tmp}/x.png"],
        ["map", "king", "--id", "5", "--plot", "{tmp}/x.png"],
        ["map", "king", "--plot", "{tmp}/x.png", "--min-sim", "0.999"],
        ["neighbors", "king", "--plot", "{tmp}/x.gif"],
    ],
)
def test_bad_plot_requests_are_one_line_on_stderr(minilm_dir, tmp_path, args):
    tokneigh.load(str(minilm_dir))  # cached first: a first use's progress lines are not errors
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = cli(*args, "-m", str(minilm_dir))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: ")
    assert result.stdout == ""
    assert not list(tmp_path.glob("x.*"))


def test_matplotlib_is_imported_only_when_plotting(gpt2_dir, tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from tokneigh.cli import app\n"
        f"r = CliRunner().invoke(app, ['neighbors', 'Mike', '-m', {str(gpt2_dir)!r}])\n"
        "assert r.exit_code == 0, r.stderr\n"
        "print('matplotlib' in sys.modules)\n"
        f"r = CliRunner().invoke(app, ['neighbors', 'Mike', '--plot', {str(tmp_path / 'a.png')!r},"
        f" '-m', {str(gpt2_dir)!r}])\n"
        "assert r.exit_code == 0, r.stderr\n"
        "print('matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


# --- the projection itself --------------------------------------------------------------------


def test_pca_2d_matches_an_eigen_decomposition():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(31, 20)) * np.linspace(3, 0.1, 20)  # clear leading axes
    coords, share = core.pca_2d(vectors)
    want, want_share = pca_reference(vectors)
    assert_same_axes(coords, want)
    np.testing.assert_allclose(share, want_share, atol=1e-9)
    again, _ = core.pca_2d(vectors)
    np.testing.assert_array_equal(coords, again)  # deterministic, signs included


def test_pca_2d_degenerate_inputs():
    two = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    coords, share = core.pca_2d(two)
    assert coords.shape == (2, 2) and np.allclose(coords[:, 1], 0)
    assert share[0] == pytest.approx(1.0) and share[1] == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(coords[0] - coords[1]) == pytest.approx(np.sqrt(2))
    same, share = core.pca_2d(np.ones((3, 4)))
    assert np.allclose(same, 0) and np.allclose(share, 0)
    with pytest.raises(ValueError):
        core.pca_2d(np.ones(4))
