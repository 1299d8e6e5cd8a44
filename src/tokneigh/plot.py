"""Figures, drawn with matplotlib's non-interactive Agg backend (imported only when plotting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .api import Comparison
from .errors import UsageError

_FORMATS = (".png", ".svg", ".pdf")


def check_destination(path: Path) -> None:
    """Refuse a plot path that cannot be written, before any work is done."""
    if path.suffix.lower() not in _FORMATS:
        raise UsageError(f"--plot {path}: use a file name ending in {', '.join(_FORMATS)}")
    parent = path.expanduser().resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--plot {path}: folder {parent} does not exist")
    if path.is_dir():
        raise UsageError(f"--plot {path}: is a folder")


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
        raise UsageError(f"--plot {path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        plt.close(fig)
