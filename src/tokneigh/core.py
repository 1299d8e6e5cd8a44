"""The similarity core: cosine rankings over a row-normalized embedding matrix.

Pure numpy. Knows nothing of tokenizers, caches or output formats. Every function takes the
L2-row-normalized matrix ``unit`` (zero rows stay zero, so they score 0 against anything).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

# Rows scored per matrix-matrix product: bounds the temporary score block to
# QUERY_BLOCK x vocab float32 (about 50 MB for GPT-2) however many queries come in.
QUERY_BLOCK = 256


def normalize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (unit rows as float32, raw L2 norms as float32); zero rows stay zero, never NaN."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, 1.0).astype(np.float32)
    return matrix / safe[:, None], norms


def unit_vector(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 as float32; the zero vector stays zero."""
    return normalize_rows(np.asarray(vector, dtype=np.float32)[None, :])[0][0]


def query_vector(unit: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """The unit-length mean of the unit rows ``ids``: how a multi-token query is represented."""
    return query_vectors(unit, [ids])[0]


def query_vectors(unit: np.ndarray, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """``query_vector`` of each list of ids, as the rows of one array (the same numbers, bit
    for bit, in any batch: every row is normalized on its own)."""
    if all(len(ids) == 1 for ids in id_lists):
        # The mean of one row is that row: one gather for a batch of one-token queries.
        means = unit[np.asarray([ids[0] for ids in id_lists], dtype=np.int64)]
    else:
        rows = [unit[np.asarray(ids, dtype=np.int64)] for ids in id_lists]
        means = np.stack([r.mean(axis=0, dtype=np.float32) for r in rows])
    return normalize_rows(means)[0]


def top_k(scores: np.ndarray, k: int, exclude: Sequence[int] = ()) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, ties broken by lower index.

    Never a sort of the whole vocabulary. For a small ``k``, a cut-off from group maxima
    leaves a few hundred candidates to sort; otherwise ``argpartition``. Both are exact.
    """
    scores = np.asarray(scores)
    if len(exclude):
        scores = scores.copy()
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    k = min(k, scores.shape[0] - len(set(exclude)))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if scores.ndim == 1:
        found = _top_k_by_group_maxima(scores, k)
        if found is not None:
            return found
    return _top_k_by_partition(scores, k)


# Groups for the cut-off: each group's maximum is one score, so the k-th largest of the group
# maxima is a value that at least k scores reach, and every one of the k best reaches it.
_GROUPS = 64


def _top_k_by_group_maxima(scores: np.ndarray, k: int) -> np.ndarray | None:
    """The exact top k via a cut-off (about 4x faster than ``argpartition`` on 50k scores);
    None when it would not pay (k large for the size, or NaN scores)."""
    groups = min(_GROUPS, scores.shape[0] // (8 * k))
    if groups < 4:
        return None
    width = scores.shape[0] // groups
    # Strided groups (i, i + width, ...): one elementwise max over `groups` rows, no reshape
    # copy. Scores past groups * width are simply never a group maximum; they still compete.
    maxima = scores[: groups * width].reshape(groups, width).max(axis=0)
    cutoff = np.partition(maxima, width - k)[width - k]
    candidates = np.flatnonzero(scores >= cutoff)
    if candidates.size < k or candidates.size > 64 * k:
        return None  # NaN, or a plateau of ties: let argpartition handle it
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


def _top_k_by_partition(scores: np.ndarray, k: int) -> np.ndarray:
    candidates = np.argpartition(-scores, k - 1)[:k]
    threshold = scores[candidates].min()
    # argpartition picks arbitrary members of a tie at the cut; take the lowest indices.
    if np.count_nonzero(scores >= threshold) > k:
        above = np.flatnonzero(scores > threshold)
        tied = np.flatnonzero(scores == threshold)[: k - above.size]
        candidates = np.concatenate([above, tied])
    return candidates[np.lexsort((candidates, -scores[candidates]))]


def scores_for(unit: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of one unit query vector against every row: one matrix-vector product."""
    return unit @ query


def rank_many(
    unit: np.ndarray,
    queries: np.ndarray,
    k: int,
    exclude: Sequence[Sequence[int]] | None = None,
    select: Sequence[Selector | None] | None = None,
    min_score: float | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k (indices, scores) for each unit query row, by blocked matrix-matrix products.

    ``select`` (one selector per query) and ``min_score`` filter the ranking: see
    ``top_k_selected``.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    results: list[tuple[np.ndarray, np.ndarray]] = []
    scratch: np.ndarray | None = None  # one score buffer reused by every block: no page faults
    for start in range(0, queries.shape[0], QUERY_BLOCK):
        chunk = queries[start : start + QUERY_BLOCK]
        if chunk.shape[0] == 1:
            # One query: a matrix-vector product, the same numbers as the 1-row matrix product
            # but sturdier when other threads compete for the cores.
            block = (unit @ chunk[0])[None, :]
        else:
            if scratch is None:
                scratch = np.empty((chunk.shape[0], unit.shape[0]), dtype=np.float32)
            block = np.matmul(chunk, unit.T, out=scratch[: chunk.shape[0]])  # rows contiguous
        for offset, row in enumerate(block):
            skip = exclude[start + offset] if exclude else ()
            chooser = select[start + offset] if select else None
            if chooser is not None:
                idx = top_k_selected(row, k, chooser, skip, min_score)
            else:
                idx = _top_k_masking(row, k, skip)
                if min_score is not None:  # idx is sorted: cut at the first score below
                    idx = idx[row[idx] >= min_score]
            results.append((idx, row[idx].astype(np.float64)))
    return results


def _top_k_masking(row: np.ndarray, k: int, exclude: Sequence[int]) -> np.ndarray:
    """``top_k(row, k, exclude)`` that overwrites ``row[exclude]`` with -inf instead of copying
    the row (``row`` is a scratch score block, owned by the caller)."""
    if len(exclude):
        exclude = np.asarray(exclude, dtype=np.int64)
        row[exclude] = -np.inf
        if k + exclude.size > row.shape[0]:  # asking for nearly everything: count what is left
            k = min(k, row.shape[0] - np.unique(exclude).size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    return top_k(row, k)


def rank_of(scores: np.ndarray, index: int) -> int:
    """1-based position of row ``index`` in the ranking of ``scores`` (ties: lower index first)."""
    value = scores[index]
    better = np.count_nonzero(scores > value)
    tied_before = np.count_nonzero(scores[:index] == value)
    return int(better + tied_before + 1)


def rank_of_score(scores: np.ndarray, value: float) -> int:
    """1-based position a vector scoring ``value`` would take among ``scores``."""
    return int(np.count_nonzero(scores > value) + 1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; 0 when either is the zero vector."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors' components; 0 when either is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return cosine(a - a.mean(), b - b.mean())


def angle_degrees(cos: float) -> float:
    """The angle whose cosine is ``cos``, in degrees (clipped against rounding past ±1)."""
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


# --- filtered rankings ----------------------------------------------------------------------

# Chooses, from candidate indices sorted best first, the ones to keep (a subsequence, in order).
Selector = Callable[[np.ndarray], np.ndarray]


def top_k_selected(
    scores: np.ndarray,
    k: int,
    select: Selector | None = None,
    exclude: Sequence[int] = (),
    min_score: float | None = None,
) -> np.ndarray:
    """The first ``k`` indices that ``select`` keeps (and score >= ``min_score``), best first.

    Ranks a candidate pool a few times larger than ``k`` instead of the whole vocabulary, and
    widens it (x4) only when the filters leave fewer than ``k``: the usual case costs one
    ``argpartition``, and the result is the same as filtering a full sort. The pool is always a
    prefix of the full ranking (``top_k`` breaks ties by index), so a stateful ``select``
    (e.g. folding variants into the first one seen) decides the same way at any pool size.
    """
    scores = np.asarray(scores)
    available = scores.shape[0] - len(set(exclude))
    pool = min(available, max(4 * k, k + 64))
    while True:
        candidates = top_k(scores, pool, exclude)
        exhausted = pool >= available
        if min_score is not None:
            passing = candidates[scores[candidates] >= min_score]
            # Candidates are sorted: once one falls below min_score, widening finds no more.
            exhausted = exhausted or passing.size < candidates.size
            candidates = passing
        chosen = select(candidates) if select is not None else candidates
        if len(chosen) >= k or exhausted:
            return np.asarray(chosen[:k], dtype=np.int64)
        pool = min(available, pool * 4)


def expression_vector(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray]) -> np.ndarray:
    """The unit vector of sum(positive) - sum(negative): "king - man + woman" (gensim style).

    Each term is already a unit vector (``query_vector``), so every word weighs the same
    however long its raw embedding is. When the terms cancel out the result is the zero vector.
    """
    terms = [np.asarray(v, dtype=np.float64) for v in positive]
    terms += [-np.asarray(v, dtype=np.float64) for v in negative]
    if not terms:
        raise ValueError("an expression needs at least one term")
    total = np.sum(terms, axis=0)
    # "a + b - a - b" leaves rounding noise, whose direction means nothing: call it zero.
    if float(np.linalg.norm(total)) < 1e-6:
        return np.zeros(total.shape[0], dtype=np.float32)
    return unit_vector(total)


# --- the reference method -------------------------------------------------------------------


def scores_loop(rows: Iterable[np.ndarray], query: np.ndarray) -> np.ndarray:
    """Cosine of ``query`` with each raw row, one row at a time: dot / (norm x norm).

    The slow, obviously-correct method (the seed article's loop), kept as the reference that
    ``verify`` checks the vectorized path against. A zero row scores 0, as in ``normalize_rows``.
    """
    query = np.asarray(query, dtype=np.float32)
    query_norm = float(np.linalg.norm(query))
    out: list[float] = []
    for row in rows:
        denom = float(np.linalg.norm(row)) * query_norm
        out.append(float(np.dot(row, query)) / denom if denom > 0 else 0.0)
    return np.asarray(out, dtype=np.float64)


# --- projection -----------------------------------------------------------------------------


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n x 2 coordinates, share of variance of each axis): PCA of the rows via an SVD.

    Rows are centred, never scaled (they are unit vectors already). Each axis is oriented so
    that its largest loading is positive, which makes the picture deterministic. With fewer
    than two independent directions the missing axis is all zeros.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"expected a non-empty 2-D array, got shape {x.shape}")
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = min(2, vt.shape[0])
    components = vt[:axes]
    signs = np.sign(components[np.arange(axes), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    coords = np.zeros((x.shape[0], 2))
    coords[:, :axes] = centred @ components.T
    total = float((s**2).sum())
    share = np.zeros(2)
    if total > 0:
        share[:axes] = s[:axes] ** 2 / total
    return coords, share
