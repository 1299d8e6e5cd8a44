"""The similarity core: cosine rankings over a row-normalized embedding matrix.

Pure numpy. Knows nothing of tokenizers, caches or output formats. Every function takes the
L2-row-normalized matrix ``unit`` (zero rows stay zero, so they score 0 against anything).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

# Rows scored per matrix-matrix product: at most QUERY_BLOCK, and at most _BLOCK_BYTES of
# float32 scores (128 MB: 636 rows of GPT-2's 50,257, 261 of Llama 3's 128,256) however many
# queries come in; a batch is cut into blocks of equal size. Each product packs the whole
# matrix again: the products of 1,000 queries on GPT-2's matrix take 417 ms in blocks of 256,
# 390 ms in blocks of 500 (a whole call 28 ms less, the larger block's page faults included).
QUERY_BLOCK = 640
_BLOCK_BYTES = 128 << 20


# Rows per block in ``unusable_rows``.
_NORM_BLOCK = 1024
# Bytes of the float64 copy ``normalize_rows`` works on at a time: small enough to stay in
# cache, which makes normalizing GPT-2's matrix about 5x faster than 8,192-row blocks did and
# Llama-3's (4,096 wide, 128 rows a block) twice as fast as 1,024-row blocks. Every step is
# row by row, so the bits do not depend on the block.
_NORM_BYTES = 4 << 20


def normalize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (unit rows as float32, raw L2 norms as float32).

    Norms are computed in float64, so a row of values near 1e30 (whose float32 norm would
    overflow) still normalizes. A row that is all zero, holds NaN or infinite values, or whose
    norm does not fit float32 becomes a zero unit row with norm 0: never NaN (see
    ``unusable_rows``)."""
    matrix = np.asarray(matrix)
    unit = np.empty(matrix.shape, dtype=np.float32)
    norms = np.empty(matrix.shape[0], dtype=np.float32)
    largest = np.finfo(np.float32).max
    step = max(1, _NORM_BYTES // (8 * max(1, int(np.prod(matrix.shape[1:])))))
    # One float64 buffer for every block: a fresh one each time costs page faults and zeroing.
    scratch = np.empty((min(step, matrix.shape[0]), *matrix.shape[1:]), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, matrix.shape[0], step):
            stop = min(start + step, matrix.shape[0])
            block = scratch[: stop - start]
            np.copyto(block, matrix[start:stop], casting="unsafe")  # divided in place below
            n = np.sqrt(np.einsum("ij,ij->i", block, block))
            good = np.isfinite(n) & (n > 0) & (n <= largest)
            if good.all():  # the usual block: no boolean indexing, no second copy
                np.divide(block, n[:, None], out=block)
                unit[start:stop] = block
                norms[start:stop] = n
            else:
                unit[start:stop] = 0
                norms[start:stop] = 0
                unit[start:stop][good] = block[good] / n[good, None]
                norms[start:stop][good] = n[good]
    return unit, norms


def unusable_rows(matrix: np.ndarray) -> tuple[list[int], list[int]]:
    """(ids of rows holding NaN or infinite values, ids of all-zero rows): rows that have no
    direction, which no ranking may list (``normalize_rows`` leaves them zero)."""
    matrix = np.asarray(matrix)
    non_finite: list[int] = []
    zero: list[int] = []
    for start in range(0, matrix.shape[0], _NORM_BLOCK):
        block = matrix[start : start + _NORM_BLOCK]
        bad = ~np.isfinite(block).all(axis=1)
        empty = ~bad & ~block.any(axis=1)
        non_finite += (np.flatnonzero(bad) + start).tolist()
        zero += (np.flatnonzero(empty) + start).tolist()
    return non_finite, zero


def unit_vector(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 as float32; the zero vector stays zero.

    A finite vector of any scale has a direction: one whose values (or norm) float32 cannot
    hold, 1e39 or 1e-300, is first brought near 1 in float64 (``rescaled``)."""
    return normalize_rows(rescaled(vector).astype(np.float32)[None, :])[0][0]


# A vector whose largest value lies in [2**-60, 2**60] casts to float32 without overflow or
# loss of precision, and its norm fits float32 for any width up to 2**60 values: left as is,
# so the usual vector normalizes to the same bits it always did.
_PLAIN_EXPONENTS = (-60, 60)


def rescaled(vector: np.ndarray) -> np.ndarray:
    """``vector`` as float64, times 2**``rescaling(vector)``."""
    wide = np.asarray(vector, dtype=np.float64)
    shift = rescaling(wide)
    return np.ldexp(wide, shift) if shift else wide  # exact, even from float64 subnormals


def rescaling(vector: np.ndarray) -> int:
    """The power of two that brings a vector's largest value into [0.5, 1) when float32
    could not hold it as it is (overflow to inf, or underflow to subnormals and zero); 0
    otherwise, and when it is zero or not finite. A power of two scales exactly: the
    direction, and the order of any scores, is kept."""
    wide = np.asarray(vector, dtype=np.float64)
    peak = float(np.abs(wide).max(initial=0.0)) if wide.size else 0.0
    if not (np.isfinite(peak) and peak > 0):
        return 0
    exponent = int(np.frexp(peak)[1])  # peak = mantissa * 2**exponent, mantissa in [0.5, 1)
    low, high = _PLAIN_EXPONENTS
    return 0 if low <= exponent <= high else -exponent


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


# Float32 products round differently in a matrix-vector and a matrix-matrix product (and in
# blocks of other sizes), so two tokens that tie in exact arithmetic can swap places from one
# path to another. Rankings therefore take a shortlist from the float32 scores with this
# margin (far above float32's rounding of a cosine, about 1e-7) and order it by scores
# recomputed in float64 with a fixed summation order, ties broken by lower index: the same
# tokens in the same order on every path.
MARGIN = 1e-5
_EXACT_BLOCK = 4096


def exact_scores(unit: np.ndarray, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Cosine of ``query`` with the rows ``ids`` in float64, clipped to [-1, 1] (0 for a zero
    row): the similarity every ranking reports, a token against itself exactly 1.

    Each dot product is ``einsum``'s own loop along one row (no BLAS): the result for a row
    does not depend on which other rows are scored with it (a BLAS product's blocking could),
    and ``allpairs`` computes the very same numbers for a whole vocabulary."""
    q = np.asarray(query, dtype=np.float64)
    q_norm = float(np.sqrt(np.einsum("d,d->", q, q)))
    out = np.zeros(len(ids), dtype=np.float64)
    for start in range(0, len(ids), _EXACT_BLOCK):
        rows = unit[ids[start : start + _EXACT_BLOCK]].astype(np.float64)
        dots = np.einsum("wd,d->w", rows, q)
        norms = np.sqrt(np.einsum("wd,wd->w", rows, rows)) * q_norm
        np.divide(dots, norms, out=out[start : start + len(rows)], where=norms > 0)
    return np.clip(out, -1.0, 1.0, out=out)


def csls_scores(
    unit: np.ndarray, query: np.ndarray, radius: np.ndarray, query_radius: float, ids: np.ndarray
) -> np.ndarray:
    """CSLS (Conneau et al. 2018) of ``query`` with the rows ``ids``, in float64:
    2 cos(q, y) - r(y) - r(q), where r is the mean cosine of a vector's nearest rows."""
    return 2.0 * exact_scores(unit, query, ids) - radius[ids] - query_radius


# Scores a few chosen rows again, exactly: ids -> float64 scores.
Rescore = Callable[[np.ndarray], np.ndarray]


def exact_prefix(
    row: np.ndarray, n: int, rescore: Rescore | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float64 scores) of at least ``n`` best rows (all of them if fewer), in exact
    order: a true prefix of the ranking by ``rescore`` (default: the float32 scores
    themselves), ties broken by lower index. ``row`` holds -inf where a row is left out."""
    idx = top_k(row, n)
    idx = idx[np.isfinite(row[idx])]
    if idx.size == 0:
        return idx, np.empty(0, dtype=np.float64)
    if rescore is None:
        return idx, row[idx].astype(np.float64)
    threshold = float(row[idx[-1]])
    pool = np.flatnonzero(row >= threshold - MARGIN)
    exact = rescore(pool)
    # A row outside the pool scores below threshold - MARGIN in float32, so its exact score
    # is below threshold - MARGIN/2: keeping what scores above that keeps a true prefix.
    keep = exact >= threshold - MARGIN / 2
    pool, exact = pool[keep], exact[keep]
    order = np.lexsort((pool, -exact))
    return pool[order], exact[order]


def rank_many(
    unit: np.ndarray,
    queries: np.ndarray,
    k: int,
    exclude: Sequence[Sequence[int] | np.ndarray] | None = None,
    select: Sequence[Selector | None] | None = None,
    min_score: float | None = None,
    radius: np.ndarray | None = None,
    query_radius: Sequence[float] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k (indices, float64 scores) for each unit query row, by blocked matrix products.

    ``exclude`` (ids per query) are left out; ``select`` (one selector per query) and
    ``min_score`` filter the ranking: see ``top_k_selected``. Every path orders the same way
    (see ``MARGIN``). With ``radius`` (one value per row) and ``query_radius`` (one per
    query) the score is CSLS's, 2 cos(q, y) - radius[y] - query_radius[q] (``csls_scores``).
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    results: list[tuple[np.ndarray, np.ndarray]] = []
    scratch: np.ndarray | None = None  # one score buffer reused by every block: no page faults
    most = max(1, min(QUERY_BLOCK, _BLOCK_BYTES // (4 * max(1, unit.shape[0]))))
    blocks = -(-queries.shape[0] // most)
    step = -(-queries.shape[0] // max(1, blocks))  # equal blocks: 1,000 as 2 x 500
    for start in range(0, queries.shape[0], step):
        chunk = queries[start : start + step]
        if chunk.shape[0] == 1:
            # One query: a matrix-vector product, sturdier when other threads compete.
            block = (unit @ chunk[0])[None, :]
        else:
            if scratch is None:
                scratch = np.empty((chunk.shape[0], unit.shape[0]), dtype=np.float32)
            block = np.matmul(chunk, unit.T, out=scratch[: chunk.shape[0]])  # rows contiguous
        skips = [exclude[start + i] if exclude else () for i in range(chunk.shape[0])]
        choosers = [select[start + i] if select else None for i in range(chunk.shape[0])]
        ranked: list[tuple[np.ndarray, np.ndarray] | None] = [None] * chunk.shape[0]
        if chunk.shape[0] > 1 and radius is None and min_score is None and not any(choosers):
            ranked = rank_block(unit, chunk, block, k, skips)  # masks ``block`` in place
        for offset, row in enumerate(block):
            done = ranked[offset]
            if done is not None:
                results.append(done)
                continue
            query = chunk[offset]
            skip = skips[offset]
            chooser = choosers[offset]
            if radius is None:
                rescore = functools.partial(exact_scores, unit, query)
            else:
                assert query_radius is not None
                r_query = float(query_radius[start + offset])
                row = 2 * row - radius - np.float32(r_query)  # float32: only a shortlist
                rescore = functools.partial(csls_scores, unit, query, radius, r_query)
            results.append(top_k_selected(row, k, chooser, skip, min_score, rescore, owned=True))
    return results


# Candidates a block row may hold above its cut-off before it is left to the one-query path
# (a plateau of ties), as in ``_top_k_by_group_maxima``.
_MOST_CANDIDATES = 64
# Pairs scored at a time by ``_exact_pairs``: two float64 blocks that stay in the CPU's cache
# (4,096 pairs of GPT-2's 768 values, 25 MB each, made it three times slower).
_PAIRS_BLOCK = 256
# Block rows scanned together by ``rank_block``: 16 rows of GPT-2's scores are 3.2 MB.
_SCAN_ROWS = 16


def rank_block(
    unit: np.ndarray,
    queries: np.ndarray,
    block: np.ndarray,
    k: int,
    exclude: Sequence[Sequence[int] | np.ndarray],
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """The top-k (ids, float64 scores) of each row of ``block`` (the float32 scores of
    ``queries`` against ``unit``), ``exclude[i]`` left out of row i: what ``top_k_selected``
    with ``exact_scores`` gives row by row, the same bits, with a handful of numpy calls for
    the whole block instead of some twenty per row (a third of a 1,000-query batch's time
    went to them). None for a row it leaves to that path: k too large for the vocabulary,
    fewer than k rows left, a plateau of ties, NaN. ``block`` is masked in place.

    The same shortlist as ``exact_prefix``: every row within ``MARGIN`` of the k-th best
    float32 score (found among the rows above a group-maxima cut-off, which the k-th best
    reaches), scored in float64 as ``exact_scores`` does (the same einsum loop along each
    row, so the same bits), kept above the k-th best - MARGIN/2, ordered by (-score, id)."""
    n, size = block.shape
    groups = min(_GROUPS, size // (8 * k))
    if groups < 4:
        return [None] * n
    usable = np.ones(n, dtype=bool)
    width = size // groups
    found_rows, found_cols = [], []
    # A few rows at a time, so that each pass after the first reads them from the CPU's cache.
    for top in range(0, n, _SCAN_ROWS):
        part = block[top : top + _SCAN_ROWS]
        for i, skip in enumerate(exclude[top : top + _SCAN_ROWS], start=top):
            if len(skip):
                usable[i] = size - len(skip) >= k  # else fewer than k rows may be left
                block[i, np.asarray(skip, dtype=np.int64)] = -np.inf
        # Strided groups (column j holds scores j, j + width, ...), as _top_k_by_group_maxima.
        grouped = part[:, : groups * width].reshape(part.shape[0], groups, width)
        maxima = grouped.max(axis=1)
        # A row's k-th largest group maximum: at least k scores reach it.
        cutoff = np.partition(maxima, width - k, axis=1)[:, width - k]
        tail = part[:, groups * width :]  # fewer than `groups` scores, in no group
        fine = np.isfinite(cutoff) & ~np.isnan(maxima).any(axis=1) & ~np.isnan(tail).any(axis=1)
        usable[top : top + part.shape[0]] &= fine
        low = np.where(fine, cutoff.astype(np.float64) - MARGIN, np.inf).astype(np.float32)
        # Only a column whose maximum reaches ``low`` can hold a candidate: a few dozen columns
        # of a row are read again, not the whole row. (Flat indices: np.nonzero of a 2-D mask
        # costs ten times more.)
        r, j = np.divmod(np.flatnonzero(maxima >= low[:, None]), width)
        columns = grouped[r, :, j]  # (columns, groups)
        at, g = np.divmod(np.flatnonzero(columns >= low[r][:, None]), groups)
        found_rows += [r[at] + top]
        found_cols += [g * width + j[at]]
        if tail.shape[1]:
            r, c = np.divmod(np.flatnonzero(tail >= low[:, None]), tail.shape[1])
            found_rows += [r + top]
            found_cols += [c + groups * width]
    rows, cols = np.concatenate(found_rows), np.concatenate(found_cols)
    counts = np.bincount(rows, minlength=n)
    usable &= (counts >= k) & (counts <= _MOST_CANDIDATES * k)
    values = block[rows, cols]
    # The k-th best float32 score of each row (its candidates sorted best first).
    starts = np.cumsum(counts) - counts
    kth = values[np.lexsort((-values, rows))][np.minimum(starts + k - 1, len(values) - 1)]
    threshold = kth.astype(np.float64)
    # exact_prefix's shortlist: every score >= threshold - MARGIN, compared in float32.
    floor = (threshold - MARGIN).astype(np.float32)
    short = (values >= floor[rows]) & usable[rows]
    rows, cols = rows[short], cols[short]
    exact = _exact_pairs(unit, queries, rows, cols)
    kept = exact >= threshold[rows] - MARGIN / 2
    rows, cols, exact = rows[kept], cols[kept], exact[kept]
    order = np.lexsort((cols, -exact, rows))
    rows, cols, exact = rows[order], cols[order], exact[order]
    counts = np.bincount(rows, minlength=n)
    starts = np.cumsum(counts) - counts
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
    for i in np.flatnonzero(usable & (counts >= k)).tolist():
        first = int(starts[i])
        out[i] = (cols[first : first + k].copy(), exact[first : first + k].copy())
    return out


def _exact_pairs(
    unit: np.ndarray, queries: np.ndarray, which: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """``exact_scores(unit, queries[w], [i])`` for each pair (w, i) of ``which`` and ``ids``,
    the same bits: the same float64 operations, each sum einsum's loop along one row (the
    loop ``"d,d->"`` and ``"wd,d->w"`` run for each row, tests/test_block_ranking.py)."""
    q64 = queries.astype(np.float64)
    q_norms = np.sqrt(np.einsum("cd,cd->c", q64, q64))
    out = np.zeros(len(ids), dtype=np.float64)
    for start in range(0, len(ids), _PAIRS_BLOCK):
        at = slice(start, start + _PAIRS_BLOCK)
        rows = unit[ids[at]].astype(np.float64)
        dots = np.einsum("wd,wd->w", rows, q64[which[at]])
        norms = np.sqrt(np.einsum("wd,wd->w", rows, rows)) * q_norms[which[at]]
        np.divide(dots, norms, out=out[at], where=norms > 0)
    return np.clip(out, -1.0, 1.0, out=out)


def rank_of(row: np.ndarray, rescore: Rescore, index: int | None, value: float) -> int:
    """1-based position in the exact ranking (see ``MARGIN``) of a vector scoring ``value``
    (float64, as ``rescore`` scores): row ``index`` itself (ties: lower index first), or,
    with ``index`` None, a vector that is no row (after every row that scores more).

    ``row`` holds the float32 scores, -inf where a row is left out."""
    better = int(np.count_nonzero(row > value + MARGIN))
    near = np.flatnonzero((row >= value - MARGIN) & (row <= value + MARGIN))
    if index is not None:
        near = near[near != index]
    exact = rescore(near)
    ahead = exact > value
    if index is not None:
        ahead |= (exact == value) & (near < index)
    return better + int(np.count_nonzero(ahead)) + 1


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors, in [-1, 1]; 0 when either is the zero vector."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.clip(a @ b / denom, -1.0, 1.0)) if denom > 0 else 0.0


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
    exclude: Sequence[int] | np.ndarray = (),
    min_score: float | None = None,
    rescore: Rescore | None = None,
    owned: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` ids of the ranking that ``select`` keeps and that score at least
    ``min_score``, ``exclude`` left out, best first, with their (float64) scores.

    The ranking is that of ``rescore`` over a float32 shortlist (see ``MARGIN``), or of the
    scores themselves. It ranks a candidate pool a few times larger than ``k`` instead of the
    whole vocabulary, and widens it (x4) only when the filters leave fewer than ``k``: the
    usual case costs one top-k. The pool is always a prefix of the ranking, so a stateful
    ``select`` (folding variants into the first one seen) decides the same way at any pool
    size. ``owned``: ``scores`` is the caller's scratch, masked in place instead of copied.
    """
    row = np.asarray(scores)
    available = row.shape[0]
    if len(exclude):
        row = row if owned else row.copy()
        exclude = np.asarray(exclude, dtype=np.int64)
        row[exclude] = -np.inf
        # Not np.unique: it imports numpy.ma (10 ms) on the first call of a cached query.
        available -= len(set(exclude.tolist()))
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    filtered = select is not None or min_score is not None
    pool = min(available, max(4 * k, k + 64) if filtered else k)
    while True:
        ids, values = exact_prefix(row, pool, rescore)
        exhausted = pool >= available
        if min_score is not None:
            passing = values >= min_score
            # The prefix is sorted: once one falls below min_score, widening finds no more.
            exhausted = exhausted or not passing.all()
            ids, values = ids[passing], values[passing]
        if select is None:
            if len(ids) >= k or exhausted:
                return ids[:k], values[:k]
        else:
            chosen = np.asarray(select(ids), dtype=np.int64)[:k]
            if chosen.size >= k or exhausted:
                by_id = dict(zip(ids.tolist(), values.tolist()))
                return chosen, np.asarray([by_id[i] for i in chosen.tolist()], dtype=np.float64)
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
    Each row is taken in float64: a row of 1e30 values would overflow a float32 norm.
    """
    query = np.asarray(query, dtype=np.float64)
    query_norm = float(np.linalg.norm(query))
    out: list[float] = []
    for row in rows:
        row = np.asarray(row, dtype=np.float64)
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
