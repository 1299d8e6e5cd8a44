"""Similarity metrics that correct for what raw cosine gets wrong in embedding spaces.

- ``cosine``: the plain cosine of the rows.
- ``centered``: the cosine after subtracting the mean row (of the rows with a direction).
- ``abtt[:D]``: all-but-the-top (Mu & Viswanath, ICLR 2018): subtract the mean, then remove
  the projections of the *centred* vector on the top D principal components (default
  D = round(dim / 100), at least 1).
- ``csls[:K]``: cross-domain similarity local scaling (Conneau et al., ICLR 2018; MUSE's
  ``csls_knn_10``): 2 cos(x, y) - r(x) - r(y), where r(t) is the mean cosine of t's K nearest
  rows (self excluded; K = 10 by default).

Pure numpy. A metric that changes the vectors (centered, abtt) gives a new unit matrix; csls
keeps the cosine matrix and needs the vector r, which takes an all-pairs pass (``allpairs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..reporting import Progress

KINDS = ("cosine", "centered", "abtt", "csls")
CSLS_K = 10
_SPEC = re.compile(r"^(cosine|centered|abtt|csls)(?::(\d{1,9}))?$")
_BLOCK = 8192  # rows per float64 block: bounds the temporaries to about 50 MB at 768 dims


@dataclass(frozen=True)
class Metric:
    """A similarity metric: its kind and, for abtt and csls, its parameter (D or K)."""

    kind: str
    param: int | None = None

    @property
    def name(self) -> str:
        """``cosine``, ``centered``, ``abtt:8``, ``csls:10``: how JSON and titles name it."""
        return self.kind if self.param is None else f"{self.kind}:{self.param}"

    @property
    def transforms(self) -> bool:
        """Whether the metric compares other vectors than the rows (centered, abtt)."""
        return self.kind in ("centered", "abtt")

    @property
    def file_stem(self) -> str:
        """The metric in a file name: ``abtt-8``."""
        return self.name.replace(":", "-")

    def __str__(self) -> str:
        return self.name


COSINE = Metric("cosine")


def parse_metric(spec: str | Metric | None, dim: int, rows: int) -> Metric:
    """The metric ``spec`` names, its default parameter filled in and checked against a
    matrix of ``rows`` x ``dim``."""
    if spec is None:
        return COSINE
    if isinstance(spec, Metric):
        spec = spec.name
    match = _SPEC.match(str(spec).strip().lower())
    if not match:
        raise UsageError(
            f"unknown metric {str(spec)[:40]!r}: use cosine, centered, abtt[:D] or csls[:K]"
        )
    kind, param = match.group(1), match.group(2)
    if kind in ("cosine", "centered"):
        if param is not None:
            raise UsageError(f"the metric {kind} takes no parameter, got {spec!r}")
        return Metric(kind)
    if kind == "abtt":
        d = max(1, round(dim / 100)) if param is None else int(param)
        if not 1 <= d < dim:
            raise UsageError(f"abtt removes 1 to {dim - 1} components here, not {d}")
        return Metric("abtt", d)
    k = CSLS_K if param is None else int(param)
    if not 1 <= k < rows:
        raise UsageError(f"csls averages 1 to {rows - 1} neighbours here, not {k}")
    return Metric("csls", k)


def _raw_block(unit: np.ndarray, norms: np.ndarray, start: int, stop: int) -> np.ndarray:
    # The raw rows, rebuilt in float64 from the cached unit rows and norms.
    return unit[start:stop].astype(np.float64) * norms[start:stop, None].astype(np.float64)


def mean_row(unit: np.ndarray, norms: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The mean raw row (float64) over the rows ``usable`` marks."""
    total = np.zeros(unit.shape[1], dtype=np.float64)
    for start in range(0, unit.shape[0], _BLOCK):
        stop = start + _BLOCK
        total += _raw_block(unit, norms, start, stop)[usable[start:stop]].sum(axis=0)
    return total / max(1, int(usable.sum()))


def principal_axes(
    unit: np.ndarray, norms: np.ndarray, usable: np.ndarray, mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues descending, eigenvectors as columns) of the covariance of the centred
    usable raw rows, accumulated blockwise in float64."""
    dim = unit.shape[1]
    scatter = np.zeros((dim, dim), dtype=np.float64)
    for start in range(0, unit.shape[0], _BLOCK):
        stop = start + _BLOCK
        centred = _raw_block(unit, norms, start, stop)[usable[start:stop]] - mean
        scatter += centred.T @ centred
    values, vectors = np.linalg.eigh(scatter / max(1, int(usable.sum())))
    return values[::-1], vectors[:, ::-1]


def transformed(
    metric: Metric, unit: np.ndarray, norms: np.ndarray, usable: np.ndarray
) -> np.ndarray:
    """The unit matrix (float32) a centered or abtt metric compares: each raw row minus the
    mean row, for abtt with the top ``metric.param`` principal components projected out of
    the centred row, then normalized. Rows with no direction stay zero."""
    from .core import normalize_rows

    mean = mean_row(unit, norms, usable)
    axes = None
    if metric.kind == "abtt":
        assert metric.param is not None
        axes = principal_axes(unit, norms, usable, mean)[1][:, : metric.param]
    out = np.zeros(unit.shape, dtype=np.float32)
    for start in range(0, unit.shape[0], _BLOCK):
        stop = start + _BLOCK
        rows = _raw_block(unit, norms, start, stop) - mean
        if axes is not None:
            rows -= (rows @ axes) @ axes.T  # the centred row's projections, not the raw row's
        rows[~usable[start:stop]] = 0.0
        out[start:stop] = normalize_rows(rows)[0]
    return out


def csls_radius(
    unit: np.ndarray, usable_ids: np.ndarray, k: int, progress: Progress | None = None
) -> np.ndarray:
    """r(t) for every row (float64): the mean cosine of row t's k nearest usable rows, self
    excluded; 0 for rows with no direction (never ranked)."""
    from .allpairs import knn_all_pairs

    radius = np.zeros(unit.shape[0], dtype=np.float64)
    _, scores = knn_all_pairs(unit, usable_ids, k, progress=progress)
    radius[usable_ids] = scores.mean(axis=1)
    return radius
