"""The whole vocabulary's map as a figure: every token a small point coloured by its cluster,
the largest clusters' names at their centres (matplotlib's Agg backend, imported only here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import MapLayout, model_label
from .plot import _pyplot, _quiet_glyphs, _save

NAMED_CLUSTERS = 25  # clusters whose names are drawn: more is ink, not information
COLOURED_CLUSTERS = 20  # tab20's colours; smaller clusters share a grey


def layout_map(layout: MapLayout, path: Path) -> None:
    """Draw ``layout`` to ``path`` (.png, .svg or .pdf; ``plot.check_destination`` first)."""
    with _quiet_glyphs():
        _draw(layout, path)


def _draw(layout: MapLayout, path: Path) -> None:
    plt = _pyplot()
    xy = np.asarray(layout.xy, dtype=np.float64)
    labels = np.asarray(layout.clusters)
    palette = plt.get_cmap("tab20").colors
    colours = np.array([palette[c] if c < COLOURED_CLUSTERS else (0.7, 0.7, 0.7) for c in
                        range(len(layout.cluster_list))])  # fmt: skip
    n = xy.shape[0]
    size = max(0.3, min(6.0, 20_000 / max(n, 1)))  # 50,000 points: specks; 500: dots
    fig, ax = plt.subplots(figsize=(11, 10), dpi=150)
    # Small clusters first, so the large ones' colours stay visible where they meet.
    order = np.argsort(-labels, kind="stable")
    ax.scatter(xy[order, 0], xy[order, 1], s=size, c=colours[labels[order]], linewidths=0,
               rasterized=n > 5_000)  # fmt: skip
    for c in layout.cluster_list[:NAMED_CLUSTERS]:
        ax.annotate(
            _short(c.name),
            (c.x, c.y),
            ha="center",
            va="center",
            fontsize=7,
            parse_math=False,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.75},
        )
    s = layout.honesty_summary()
    method = "UMAP" if layout.method == "umap" else "PCA"
    ax.set_title(
        f"{model_label(layout.model)} · {n:,} tokens · {method} · {layout.metric} · "
        f"{len(layout.cluster_list):,} clusters\nhonesty@{layout.honesty_k}: mean "
        f"{s['mean']:.2f}, quartiles {s['q1']:.2f} / {s['median']:.2f} / {s['q3']:.2f}",
        fontsize=10,
        parse_math=False,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    _save(fig, path)


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
