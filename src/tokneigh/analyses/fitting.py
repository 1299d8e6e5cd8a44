"""The numbers of an alignment: the map from A's space to B's, MUSE's refinement, CSLS
retrieval. Plain arrays in, arrays out (``align.py`` says which tokens they hold).

What this follows, from MUSE (Conneau et al., "Word translation without parallel data", ICLR
2018; facebookresearch/MUSE), read, not copied:

- the embeddings are normalised as MUSE's ``renorm,center,renorm``: unit rows (the cache's),
  the mean row subtracted, unit again (``prepared``);
- ``trainer.procrustes``: the orthogonal W minimising ||XW - Y||_F, from the SVD of X^T Y
  (numpy's SVD). When the dimensions differ no orthogonal map
  exists: ridge least squares, W = (X^T X + lambda I)^-1 X^T Y, instead;
- ``dico_builder``'s refinement dictionary: the mutual nearest neighbours under CSLS between
  the mapped source pool and the target pool ("S2T&T2S"), with r the mean cosine of each
  vector's k nearest in the other pool (``csls_knn_10``);
- ``word_translation``'s P@k: is the source word's own translation among the k nearest target
  words, by cosine (``nn``) or CSLS (``csls_knn_10``), with the target's r taken against the
  mapped source vectors.
"""

from __future__ import annotations

import numpy as np

CSLS_K = 10  # MUSE's csls_knn_10
_BLOCK = 1024  # rows per product: a 1,024 x 50,257 float32 block is 200 MB


def prepared(unit: np.ndarray, ids: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows ``ids`` of the unit matrix, centred on ``mean`` and unit again (float32); a row
    equal to the mean stays zero."""
    rows = np.asarray(unit[ids], dtype=np.float32) - mean.astype(np.float32)
    return unit_rows(rows)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def mean_row(unit: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The mean of the unit rows ``ids`` (float64), summed a slice at a time."""
    total = np.zeros(unit.shape[1], dtype=np.float64)
    for start in range(0, ids.size, 8192):
        total += np.asarray(unit[ids[start : start + 8192]], dtype=np.float64).sum(axis=0)
    return total / max(ids.size, 1)


def fit(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, str]:
    """(W, method): the map with x @ W ~ y. Orthogonal Procrustes when the dimensions agree
    (W = U V^T of the SVD of X^T Y, as MUSE's ``procrustes``), else ridge least squares with
    ``ridge`` as lambda."""
    if x.shape[1] == y.shape[1]:
        # scipy (it comes with umap-learn) solves it by the same SVD, but of X^T Y in float64:
        # a product of the two whole matrices, three times as slow as this float32 one.
        u, _, vt = np.linalg.svd((x.T @ y).astype(np.float64))
        return u @ vt, "procrustes"
    if ridge == 0.0:
        # Plain least squares, from X itself: X^T X may be singular (fewer pairs than
        # dimensions), and the least-norm solution is still a map.
        solution = np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)
        return solution[0], "ridge"
    gram = (x.T @ x).astype(np.float64) + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, (x.T @ y).astype(np.float64)), "ridge"


def mapped(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """x @ W, rows unit again (float32): what is compared with B's rows by cosine."""
    return unit_rows(x @ weights.astype(np.float32))


def _top_mean_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The mean of each row's k largest values."""
    top = np.partition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    return top.astype(np.float64).mean(axis=1)


def radius_against(rows: np.ndarray, others: np.ndarray, k: int) -> np.ndarray:
    """CSLS's r of each of ``rows``: the mean cosine of its k nearest among ``others``."""
    out = np.empty(rows.shape[0], dtype=np.float64)
    for start in range(0, rows.shape[0], _BLOCK):
        out[start : start + _BLOCK] = _top_mean_rows(rows[start : start + _BLOCK] @ others.T, k)
    return out


def mutual_csls(source: np.ndarray, target: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of source, rows of target) that are each other's nearest under CSLS:
    2 cos(s, t) - r_target(s) - r_source(t), each r over the other pool."""
    r_source = radius_against(source, target, k)  # each source row's r among the targets
    r_target = radius_against(target, source, k)
    best_target = np.empty(source.shape[0], dtype=np.int64)
    column_best = np.full(target.shape[0], -np.inf)
    best_source = np.zeros(target.shape[0], dtype=np.int64)
    for start in range(0, source.shape[0], _BLOCK):
        scores = (source[start : start + _BLOCK] @ target.T).astype(np.float64) * 2.0
        # r_source is constant along a row, r_target along a column: each argmax needs one.
        best_target[start : start + scores.shape[0]] = np.argmax(scores - r_target, axis=1)
        by_column = scores - r_source[start : start + scores.shape[0], None]
        here = np.argmax(by_column, axis=0)
        values = by_column[here, np.arange(target.shape[0])]
        better = values > column_best  # strictly: the earlier (lower) row keeps a tie
        column_best[better] = values[better]
        best_source[better] = here[better] + start
    rows = np.arange(source.shape[0])
    mutual = best_source[best_target] == rows
    return rows[mutual], best_target[mutual]


def retrieval_ranks(
    queries: np.ndarray, candidates: np.ndarray, truth: np.ndarray, r_candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rank by cosine, rank by CSLS), 1-based, of each query's true counterpart
    (``candidates[truth[i]]``) among all candidates: 1 + how many score strictly higher.
    CSLS's r of the query shifts its whole row, so only the candidates' r changes a rank."""
    by_cosine = np.empty(queries.shape[0], dtype=np.int64)
    by_csls = np.empty(queries.shape[0], dtype=np.int64)
    shift = r_candidates.astype(np.float32)
    for start in range(0, queries.shape[0], _BLOCK // 2):
        scores = queries[start : start + _BLOCK // 2] @ candidates.T
        rows = np.arange(scores.shape[0])
        mine = truth[start : start + scores.shape[0]]
        by_cosine[start : start + rows.size] = 1 + (scores > scores[rows, mine][:, None]).sum(1)
        csls = 2.0 * scores - shift
        by_csls[start : start + rows.size] = 1 + (csls > csls[rows, mine][:, None]).sum(1)
    return by_cosine, by_csls


def pair_scores(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """(cosine of each mapped row of x with its row of y, ||xW - y||_F / ||y||_F)."""
    cosines = np.empty(x.shape[0], dtype=np.float64)
    squared_error = squared_size = 0.0
    for start in range(0, x.shape[0], 8192):
        xw = (x[start : start + 8192] @ weights.astype(np.float32)).astype(np.float64)
        yy = y[start : start + 8192].astype(np.float64)
        norms = np.linalg.norm(xw, axis=1) * np.linalg.norm(yy, axis=1)
        dots = (xw * yy).sum(axis=1)
        cosines[start : start + xw.shape[0]] = np.divide(
            dots, norms, out=np.zeros_like(dots), where=norms > 0
        )
        squared_error += float(((xw - yy) ** 2).sum())
        squared_size += float((yy**2).sum())
    residual = np.sqrt(squared_error / squared_size) if squared_size > 0 else 0.0
    return cosines, float(residual)
