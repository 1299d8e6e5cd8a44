"""Figures, drawn with matplotlib's non-interactive Agg backend (imported only when plotting)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import results as _results
from ..errors import FigureError
from ..results import Comparison, Hubness, Neighbor, NeighborList, TokenMap, model_label

_FORMATS = (".png", ".svg", ".pdf")


def check_destination(path: Path) -> None:
    """Refuse a plot path that cannot be written, before any work is done."""
    if path.suffix.lower() not in _FORMATS:
        raise FigureError(f"figure {path}: the file name must end in {', '.join(_FORMATS)}")
    parent = path.expanduser().resolve().parent
    if not parent.is_dir():
        raise FigureError(f"figure {path}: folder {parent} does not exist")
    if path.is_dir():
        raise FigureError(f"figure {path}: is a folder")


def compare_scatter(raw_a: np.ndarray, raw_b: np.ndarray, result: Comparison, path: Path) -> None:
    """The seed's figure: A's raw vector on x against B's on y, one grey dot per dimension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    ax.scatter(raw_a, raw_b, s=8, color="grey", alpha=0.7)
    ax.set_xlabel(f"{' + '.join(result.a.labels)} (raw embedding)")
    ax.set_ylabel(f"{' + '.join(result.b.labels)} (raw embedding)")
    ax.set_title(f"Cosine similarity = {result.cosine:.3f}")
    ax.axhline(0, color="lightgrey", linewidth=0.8, zorder=0)
    ax.axvline(0, color="lightgrey", linewidth=0.8, zorder=0)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise FigureError(f"figure {path}: cannot be written ({exc.strerror or exc})") from exc
    finally:
        plt.close(fig)


# Bars per query beyond which a bar chart stops being readable (the CLI warns and truncates).
MAX_BARS = 60


def _pyplot():  # -> matplotlib.pyplot, imported only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _quiet_glyphs() -> Iterator[None]:
    # Tokens in scripts DejaVu Sans lacks (CJK, emoji) draw as boxes, not as warnings.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        yield


def _save(fig, path: Path) -> None:
    plt = _pyplot()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise FigureError(f"figure {path}: cannot be written ({exc.strerror or exc})") from exc
    finally:
        plt.close(fig)


def _bar_label(n: Neighbor) -> str:
    label = n.label
    if n.special:
        label += " (special)"
    if n.variants:
        label += f" +{len(n.variants)}"
    return label


def neighbors_bars(results: Sequence[NeighborList], path: Path) -> None:
    """One horizontal bar chart per query: its neighbours' cosine similarity, best on top.

    Token labels are drawn as the tables show them (quoted, so leading spaces are visible);
    math-text parsing is off so a token such as "$" stays literal.
    """
    with _quiet_glyphs():
        _draw_bars(results, path)


def _draw_bars(results: Sequence[NeighborList], path: Path) -> None:
    plt = _pyplot()
    heights = [1.2 + 0.28 * max(1, min(len(r.neighbors), MAX_BARS)) for r in results]
    fig, axes = plt.subplots(
        len(results),
        1,
        figsize=(7.5, sum(heights)),
        dpi=120,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, result in zip(axes[:, 0], results):
        shown = result.neighbors[:MAX_BARS]
        sims = [n.similarity for n in shown]
        positions = list(range(len(shown)))
        ax.barh(positions, sims, color="#4C72B0", height=0.7)
        ax.set_yticks(positions, [_bar_label(n) for n in shown], parse_math=False, fontsize=9)
        ax.invert_yaxis()  # rank 1 on top, as in the table
        low = min([0.0, *sims])
        high = max([0.0, *sims])
        span = (high - low) or 1.0
        ax.set_xlim(low - (0.12 * span if low < 0 else 0), high + 0.12 * span)
        for y, s in zip(positions, sims):
            ax.text(s, y, f" {s:.3f}", va="center", ha="left" if s >= 0 else "right", fontsize=8)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("cosine similarity")
        ax.set_title(
            f"{query_heading(result)} · {model_label(result.model)}", fontsize=10, parse_math=False
        )
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    _save(fig, path)


def query_heading(result: NeighborList) -> str:
    return f"Neighbours of {result.asked.described()}"


def token_map(m: TokenMap, path: Path) -> None:
    """The query (a red star) and its neighbours in the plane of the first two principal
    components of their unit vectors, each labelled, coloured by cosine to the query."""
    with _quiet_glyphs():
        _draw_map(m, path)


def _draw_map(m: TokenMap, path: Path) -> None:
    plt = _pyplot()
    result = m.result
    xs = [p[0] for p in m.points]
    ys = [p[1] for p in m.points]
    sims = [n.similarity for n in result.neighbors]
    fig, ax = plt.subplots(figsize=(9, 7.5), dpi=120)
    dots = ax.scatter(xs, ys, c=sims, cmap="viridis", s=36, zorder=2, edgecolors="white")
    fig.colorbar(dots, ax=ax, label="cosine similarity to the query", shrink=0.8)
    for n, x, y in zip(result.neighbors, xs, ys):
        ax.annotate(
            _bar_label(n),
            (x, y),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            parse_math=False,
        )
    qx, qy = m.query_xy
    ax.scatter([qx], [qy], marker="*", s=320, color="crimson", edgecolors="black", zorder=3)
    ax.annotate(
        _query_label(result),
        (qx, qy),
        xytext=(7, 5),
        textcoords="offset points",
        fontsize=11,
        fontweight="bold",
        color="crimson",
        parse_math=False,
    )
    ax.set_xlabel(f"principal component 1 ({m.explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({m.explained[1]:.0%} of the variance)")
    ax.set_title(
        f"{_query_label(result)} and its {len(result.neighbors)} nearest tokens · "
        f"{model_label(result.model)}",
        fontsize=11,
        parse_math=False,
    )
    ax.margins(0.12)  # room for the labels of the outermost points
    ax.grid(color="#eeeeee", zorder=0)
    fig.tight_layout()
    _save(fig, path)


def _query_label(result: NeighborList) -> str:
    return result.asked.shown


def hubness_histogram(result: Hubness, path: Path) -> None:
    """How many tokens have each k-occurrence N_k, on a log scale: a long right tail means
    hubs."""
    plt = _pyplot()
    counts = np.asarray(result.occurrences)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    bins = np.arange(0, int(counts.max()) + 2) - 0.5
    ax.hist(counts, bins=bins if bins.size <= 400 else 200, color="steelblue")
    ax.set_yscale("log")
    ax.set_xlabel(f"N_{result.k}: how many tokens list the token among their {result.k} nearest")
    ax.set_ylabel("tokens (log scale)")
    ax.set_title(
        f"k-occurrence · {model_label(result.model)} · {result.metric} · "
        f"skewness {result.skewness:.2f}"
    )
    fig.tight_layout()
    _save(fig, path)


def scan_histogram(result: _results.TokenScan, path: Path) -> None:
    """The indicator over every scored token, the cut-off (the score of the last listed token)
    marked: how far the listed tokens stand apart from the bulk of the vocabulary."""
    plt = _pyplot()
    scores = np.asarray(result.scores, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.hist(scores, bins=min(200, max(10, scores.size // 50)), color="steelblue")
    ax.set_yscale("log")  # a handful of outliers against tens of thousands of tokens
    if result.tokens:
        cut = result.tokens[-1].score
        ax.axvline(cut, color="crimson", linewidth=1.2, linestyle="--")
        ax.annotate(
            f" top {len(result.tokens)} (≤ {cut:.3g})",
            (cut, 1),
            xycoords=("data", "axes fraction"),
            va="top",
            color="crimson",
            fontsize=8,
        )
    ax.set_xlabel(f"{result.indicator} score (smaller: more likely under-trained)")
    ax.set_ylabel("tokens (log scale)")
    ax.set_title(
        f"Under-trained tokens · {model_label(result.model)} · {result.embeddings} embeddings",
        parse_math=False,
    )
    fig.tight_layout()
    _save(fig, path)
