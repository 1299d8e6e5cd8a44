"""The exact all-pairs pass: the k nearest rows of every row of a matrix, self excluded.

numpy, like ``core`` (torch only for bf16 products, in ``bf16``). The similarity matrix of
a set of rows with itself is symmetric, so the rows are cut into blocks and each pair of
blocks is multiplied once: block (i, j) offers its rows' scores to the rows of block i and its
columns' scores to the rows of block j. The products are nearly the whole cost; selection
stays a few per cent of it because every row keeps a running threshold (its ``keep``-th
best so far), seeded by its own diagonal block: after that a block offers each row only the
few scores above the row's threshold, found by one comparison and one ``flatnonzero`` over
the block.

Exactness is ``core``'s (see ``core.MARGIN``): the float32 products only shortlist, each
row's shortlist is rescored in float64 exactly as ``core.exact_scores`` scores one query, and
rows are ordered by (-score, id). A row whose shortlist might miss a candidate within the
margin of its k-th score (a plateau of ties) is ranked again on its own by ``core``.

Where the CPU multiplies bf16 fast, the products can be bf16 instead (``bf16``): each row
then keeps every candidate the bf16 score's proven error bound cannot rule out, those are
rescored in float32 and ranked as above, so the lists are the float32 pass's, bit for bit.
The pass can save its state at block-row ends and resume from it (``resume``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ..reporting import Progress
from . import bf16, core, resume
from .bf16 import Products
from .resume import Checkpoints

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

BLOCK = 4096  # rows per block: 64 MB float32 score blocks, large enough for BLAS to run at speed
_EXTRA = 8  # candidates kept beyond k per row: room for near-ties at the k-th score
_EXACT_ROWS = 128  # rows rescored together in float64: the temporary stays in the L3 cache
_PLATEAU_ROWS = 256  # rows ranked again together: one product of 256 rows by the matrix
_RESCORED_ROWS = 32  # bf16 candidates rescored in float32 together (up to k + 56 rows each)
CHECKPOINT_SECONDS = 60.0  # at most this long between two saved states
# A block row's end saves the state unless the last save was less than this many times its
# own cost ago: saving stays a few per cent of the pass (a Llama-sized state is ~130 MB).
_SAVE_SHARE = 20



def knn_all_pairs(
    unit: np.ndarray,
    rows: np.ndarray,
    k: int,
    *,
    radius: np.ndarray | None = None,
    progress: Progress | None = None,
    block: int = BLOCK,
    products: Products = "auto",
    checkpoints: Checkpoints | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(neighbour ids (n, k) int64, scores (n, k) float64) of each row id in ``rows`` among
    the other ``rows``, best first, ties broken by lower id.

    The score is the cosine of the unit rows, or with ``radius`` the CSLS score
    2 cos(x, y) - radius[x] - radius[y]. Each row's list is the one ``core.rank_many`` gives
    for that row as a one-token query with everything outside ``rows`` left out.

    ``products`` picks the block products (``bf16.choose``): float32, or bf16 candidates
    that are rescored (the same lists, bit for bit). With ``checkpoints`` the pass saves its
    state at the end of block rows (each, unless saving would cost more than 1/20 of the
    time; at least every ``CHECKPOINT_SECONDS``) and starts from the last state saved by a
    pass with the same inputs (``resume``).
    """
    from concurrent.futures import ThreadPoolExecutor

    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be between 1 and {n - 1}, got {k}")
    bias = None if radius is None else np.asarray(radius, dtype=np.float64)[rows]
    bias32 = None if bias is None else bias.astype(np.float32)
    mode = bf16.choose(products, unit.shape[1], n)
    fast = bf16.Bf16Rows(unit, rows, radius is not None) if mode == "bf16" else None
    if fast is not None and not fast.usable:
        fast, mode = None, "float32"  # rows not unit to 1e-6: the bound would not hold
    # The rows are read in place, never copied whole (a second matrix is gigabytes).
    source = unit if unit.dtype == np.float32 else unit.astype(np.float32)
    keep = min(k + (_EXTRA if fast is None else bf16.EXTRA), n - 1)
    best = _Best(n, keep, None if fast is None else (k, fast.floor))
    bounds = block_bounds(n, block, keep)
    # Diagonal blocks first: they seed every row's threshold. Then each pair above the
    # diagonal, block row by block row: once row i is done, its rows' lists are final.
    pairs = [(i, i) for i in range(len(bounds))]
    pairs += [(i, j) for i in range(len(bounds)) for j in range(i + 1, len(bounds))]
    # The last pair that offers a block row anything: after it, those rows are final.
    last = len(bounds) - 1
    finished_by: dict[tuple[int, int], list[int]] = {}
    for r in range(len(bounds)):
        finished_by.setdefault((r, last) if r < last else pairs[-1], []).append(r)
    # Where a state may be saved: after the diagonals, after each block row.
    row_ends = {len(bounds)} | {pairs.index((r, last)) + 1 for r in range(last)}
    sizes = [(bounds[i][1] - bounds[i][0]) * (bounds[j][1] - bounds[j][0]) for i, j in pairs]
    total = sum(sizes)
    widest = max(b - a for a, b in bounds)
    # Two buffers: BLAS fills one while a worker thread selects from the other, so selection
    # (numpy work on one core) hides behind the products. The worker runs its jobs in order,
    # so no two of them ever touch the same rows at once.
    buffers = [np.empty(widest * widest, dtype=np.float32) for _ in range(2)]
    busy: list[Future[None] | None] = [None, None]
    out_ids = np.zeros((n, k), dtype=np.int64)  # zeros, not empty: a saved state is clean
    out_scores = np.zeros((n, k), dtype=np.float64)
    final = _Final(source, rows, radius, best, k, bias, out_ids, out_scores, fast)
    key = resume.fingerprint(unit, rows, radius, k, keep, block, mode)
    live = (best.values, best.ids, best.threshold, out_ids, out_scores)
    state = resume.State(key, live, final.unsound)
    first = state.restore(checkpoints, len(pairs)) if checkpoints else 0
    done = sum(sizes[:first])
    if progress and first:
        progress(done, total)
    saved, cost = time.monotonic(), 0.0
    ranked: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1) as worker:
        for number in range(first, len(pairs)):
            i, j = pairs[number]
            (a, b), (c, d) = bounds[i], bounds[j]
            slot = number % 2
            if busy[slot] is not None:
                busy[slot].result()  # type: ignore[union-attr]
            scores = _view(buffers[slot], b - a, d - c)
            if fast is not None:
                fast.multiply(a, b, c, d, scores)
            else:
                left = _block(source, rows, a, b)
                right = left if (c, d) == (a, b) else _block(source, rows, c, d)
                np.matmul(left, right.T, out=scores)
            busy[slot] = worker.submit(best.absorb, scores, a, c, i == j, bias32)
            ranked += [worker.submit(final.rows, *bounds[r]) for r in finished_by.get((i, j), [])]
            done += sizes[number]
            since = time.monotonic() - saved
            if checkpoints and number + 1 < len(pairs) and (
                (number + 1 in row_ends and since >= _SAVE_SHARE * cost)
                or since >= CHECKPOINT_SECONDS
            ):
                for job in [*busy, *ranked]:  # the state is whole once the worker is idle
                    if job is not None:
                        job.result()
                began = time.monotonic()
                checkpoints.save(state.arrays(number + 1))
                saved = time.monotonic()
                cost = saved - began
            if progress:
                progress(done, total)
        for job in [*busy, *ranked]:
            if job is not None:
                job.result()
    final.plateaus()
    return rows[out_ids], out_scores


def _block(source: np.ndarray, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``rows[start:stop]`` of ``source``: a view when they are consecutive (left-out
    rows are mostly special tokens at the end), else a copy of this block only."""
    first, last = int(rows[start]), int(rows[stop - 1])
    if last - first == stop - 1 - start:
        return source[first : last + 1]
    return source[rows[start:stop]]


def block_bounds(n: int, block: int, keep: int) -> list[tuple[int, int]]:
    """(start, stop) of each block of rows. A last block much smaller than the rest would
    give its rows too few candidates to seed a threshold from: it joins the one before."""
    starts = list(range(0, n, block))
    if len(starts) > 1 and n - starts[-1] < 8 * keep:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


def _view(buffer: np.ndarray, height: int, width: int) -> np.ndarray:
    return buffer[: height * width].reshape(height, width)


Floor = tuple[int, "Callable[[np.ndarray, np.ndarray], np.ndarray]"]


class _Best:
    """Each row's ``keep`` best (float32 score, column) so far, unordered, and its threshold:
    the smallest score kept (-inf until ``keep`` are known)."""

    def __init__(self, n: int, keep: int, floor: Floor | None = None) -> None:
        self.keep = keep
        # With ``floor`` (k, rule) the threshold is also at least rule(rows, k-th best): a
        # score at or below it can never be needed (bf16 candidates: ``Bf16Rows.floor``).
        self.floor = floor
        self.values = np.full((n, keep), -np.inf, dtype=np.float32)
        self.ids = np.full((n, keep), -1, dtype=np.int64)
        self.threshold = np.full(n, -np.inf, dtype=np.float32)
        self._masks = np.empty(0, dtype=bool)

    def _mask(self, shape: tuple[int, int]) -> np.ndarray:
        # One reused buffer: a fresh 16 MB array per block costs its page faults every time.
        size = shape[0] * shape[1]
        if self._masks.size < size:
            self._masks = np.empty(size, dtype=bool)
        return self._masks[:size].reshape(shape)

    def absorb(
        self, scores: np.ndarray, row0: int, col0: int, diagonal: bool, bias: np.ndarray | None
    ) -> None:
        """Offer one score block (rows row0.., columns col0..) to every row it concerns."""
        height, width = scores.shape
        if diagonal:  # its own transpose: the rows' share is all of it
            if bias is not None:
                scores *= 2
                scores -= bias[None, col0 : col0 + width]
            np.fill_diagonal(scores, -np.inf)
            self.absorb_rows(row0, scores, col0, seed=True)
        elif bias is not None:
            self.absorb_rows(row0, 2 * scores - bias[None, col0 : col0 + width], col0)
            self.absorb_columns(col0, 2 * scores - bias[row0 : row0 + height, None], row0)
        else:
            self.absorb_both(scores, row0, col0)

    def absorb_both(self, scores: np.ndarray, row0: int, col0: int) -> None:
        """Offer a block to its rows and to the rows its columns stand for, in one pass: what
        beats the lower of all the thresholds involved; each side then keeps what beats its
        own rows' thresholds. When the thresholds differ so much that the pass finds a crowd
        (a tenth of the block), each side makes its own pass instead."""
        height, width = scores.shape
        floor = min(
            self.threshold[row0 : row0 + height].min(), self.threshold[col0 : col0 + width].min()
        )
        flat = np.flatnonzero(np.greater(scores, floor, out=self._mask(scores.shape)))
        if flat.size > scores.size // 10:
            self.absorb_rows(row0, scores, col0)
            self.absorb_columns(col0, scores, row0)
            return
        values = scores.ravel()[flat]
        rows, cols = row0 + flat // width, col0 + flat % width
        by_row = values > self.threshold[rows]
        self._merge(rows[by_row], cols[by_row], values[by_row])
        by_column = values > self.threshold[cols]
        order = np.argsort(cols[by_column], kind="stable")
        self._merge(cols[by_column][order], rows[by_column][order], values[by_column][order])

    def absorb_rows(self, row0: int, scores: np.ndarray, col0: int, seed: bool = False) -> None:
        """Offer block ``scores`` (rows row0.., columns col0..) to its rows."""
        height, width = scores.shape
        if seed:
            # >=, not >: a cut-off met by ties must keep them (at least `keep` reach it).
            cutoff = _group_cutoff(scores, self.keep)[:, None]
            flat = np.flatnonzero(np.greater_equal(scores, cutoff, out=self._mask(scores.shape)))
        else:
            threshold = self.threshold[row0 : row0 + height, None]
            flat = np.flatnonzero(np.greater(scores, threshold, out=self._mask(scores.shape)))
        if flat.size:
            self._merge(row0 + flat // width, col0 + flat % width, scores.ravel()[flat])

    def absorb_columns(self, col0: int, scores: np.ndarray, row0: int) -> None:
        """Offer block ``scores`` (rows row0.., columns col0..) to the rows its columns stand
        for (the block's transpose, without transposing it)."""
        width = scores.shape[1]
        threshold = self.threshold[col0 : col0 + width]
        flat = np.flatnonzero(np.greater(scores, threshold[None, :], out=self._mask(scores.shape)))
        if flat.size:
            served = col0 + flat % width
            order = np.argsort(served, kind="stable")
            flat = flat[order]
            self._merge(served[order], row0 + flat // width, scores.ravel()[flat])

    def _merge(self, owners: np.ndarray, ids: np.ndarray, values: np.ndarray) -> None:
        """Add candidates (grouped by owner row, in increasing owner order) and keep each
        owner's ``keep`` best."""
        if owners.size == 0:
            return
        touched, first, counts = _runs(owners)
        width = int(counts.max())
        slot = np.arange(owners.size) - np.repeat(first, counts)
        which = np.repeat(np.arange(touched.size), counts)
        pool_v = np.full((touched.size, self.keep + width), -np.inf, dtype=np.float32)
        pool_i = np.full((touched.size, self.keep + width), -1, dtype=np.int64)
        pool_v[:, : self.keep] = self.values[touched]
        pool_i[:, : self.keep] = self.ids[touched]
        pool_v[which, self.keep + slot] = values
        pool_i[which, self.keep + slot] = ids
        if width > 0:
            pick = np.argpartition(-pool_v, self.keep - 1, axis=1)[:, : self.keep]
            pool_v = np.take_along_axis(pool_v, pick, axis=1)
            pool_i = np.take_along_axis(pool_i, pick, axis=1)
        self.values[touched] = pool_v
        self.ids[touched] = pool_i
        threshold = pool_v.min(axis=1)
        if self.floor is not None:
            k, rule = self.floor
            kth = np.partition(pool_v, self.keep - k, axis=1)[:, self.keep - k]
            threshold = np.maximum(threshold, rule(touched, kth))
        self.threshold[touched] = threshold


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values, index of each one's first occurrence, run lengths) of a sorted array
    (np.unique would import numpy.ma on first use)."""
    change = np.flatnonzero(np.diff(sorted_values)) + 1
    first = np.concatenate([[0], change])
    counts = np.diff(np.concatenate([first, [sorted_values.size]]))
    return sorted_values[first], first, counts


def _group_cutoff(scores: np.ndarray, keep: int) -> np.ndarray:
    """A score per row that at least ``keep`` of the row's scores reach (see
    ``core._top_k_by_group_maxima``): the ``keep``-th largest of its strided group maxima.
    -inf where a row has fewer than ``keep`` finite scores."""
    height, width = scores.shape
    groups = min(64, width // max(1, 4 * keep))
    if groups < 2:  # too narrow to group: the exact keep-th best
        if width < keep:
            return np.full(height, -np.inf, dtype=np.float32)
        return np.partition(scores, width - keep, axis=1)[:, width - keep]
    span = width // groups
    maxima = scores[:, : groups * span].reshape(height, groups, span).max(axis=1)
    return np.partition(maxima, span - keep, axis=1)[:, span - keep]


class _Final:
    """Each row's k best in exact order, from its shortlist: rows whose shortlists are
    complete, a block at a time (``rows``), then the plateaus (``plateaus``).

    Rows are positions 0..n-1 in the pass; ``index`` maps them to rows of ``source``;
    ``radius`` is per row of ``source``. With ``fast`` the shortlists hold bf16
    scores: their candidates are rescored in float32 first (``bf16.Bf16Rows.candidates``)."""

    def __init__(
        self,
        source: np.ndarray,
        index: np.ndarray,
        radius: np.ndarray | None,
        best: _Best,
        k: int,
        bias: np.ndarray | None,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
        fast: bf16.Bf16Rows | None = None,
    ) -> None:
        self.source, self.best, self.k, self.bias = source, best, k, bias
        self.index, self.radius = index, radius
        self.fast = fast
        self.out_ids, self.out_scores = out_ids, out_scores
        self.margin = core.MARGIN * (2 if bias is not None else 1)
        self._norms: np.ndarray | None = None
        self.unsound: list[np.ndarray] = []

    @property
    def norms(self) -> np.ndarray:
        if self._norms is None:  # first needed in the worker thread, behind the products
            self._norms = _row_norms(self.source)
        return self._norms

    def rows(self, first: int, stop: int) -> None:
        for start in range(first, stop, _EXACT_ROWS):
            self._rank(start, min(stop, start + _EXACT_ROWS))

    def _shortlist(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 scores, row positions) of each row's shortlist, best first (-inf past its
        end); rows it may have missed something for join ``unsound``."""
        order = np.argsort(-self.best.values[start:stop], axis=1, kind="stable")
        values = np.take_along_axis(self.best.values[start:stop], order, axis=1)
        ids = np.take_along_axis(self.best.ids[start:stop], order, axis=1)
        complete = self.best.keep >= self.index.size - 1
        if self.fast is None:
            kth = values[:, self.k - 1].astype(np.float64)
            # Sound when the shortlist holds every row within the margin of the k-th score:
            # a row left out scored at most the last one kept (thresholds only rise).
            if not complete:
                self.unsound.append(start + np.flatnonzero(values[:, -1] >= kth - self.margin))
            return values, ids
        keep, dropped = self.fast.candidates(values, self.k, slice(start, stop), complete)
        self.unsound.append(start + np.flatnonzero(dropped))
        width = max(self.k, int(keep.sum(axis=1).max()))
        keep, ids = keep[:, :width], np.where(keep[:, :width], ids[:, :width], 0)
        # The float32 scores the float32 pass would have shortlisted with, then its ranking.
        rescored = np.empty(ids.shape, dtype=np.float32)
        for at in range(0, stop - start, _RESCORED_ROWS):  # the gathered rows stay ~35 MB
            part = slice(at, at + _RESCORED_ROWS)
            queries = self.source[self.index[start:stop][part]]
            # Batched matrix-vector products (BLAS): faster than einsum's loop, and any
            # order of summation will do here, the float64 rescoring decides.
            gathered = self.source[self.index[ids[part]]]
            rescored[part] = np.matmul(gathered, queries[:, :, None])[:, :, 0]
        if self.bias is not None:
            rescored = 2 * rescored - self.bias[ids].astype(np.float32)
        rescored = np.where(keep, rescored, np.float32(-np.inf))
        order = np.argsort(-rescored, axis=1, kind="stable")
        return np.take_along_axis(rescored, order, axis=1), np.take_along_axis(ids, order, axis=1)

    def _rank(self, start: int, stop: int) -> None:
        k, margin, bias = self.k, self.margin, self.bias
        values, ids = self._shortlist(start, stop)
        kth = values[:, k - 1].astype(np.float64)
        # As core.exact_prefix, only what scores within the margin of the k-th in float32 is
        # rescored: a prefix of each sorted shortlist.
        eligible = values >= (kth - margin)[:, None]
        width = int(eligible.sum(axis=1).max())
        shortlist, eligible = ids[:, :width], eligible[:, :width]
        exact = _exact_block(
            self.source, self.norms, self.index[start:stop], self.index[shortlist]
        )
        if bias is not None:
            exact = 2.0 * exact - bias[shortlist] - bias[start:stop, None]
        # The float32 scores leave out CSLS's constant -radius[x] of each row; exact has it.
        shift = 0.0 if bias is None else bias[start:stop, None]
        keep = eligible & (exact + shift >= (kth - margin / 2)[:, None])
        key = np.where(keep, -exact, np.inf)
        chosen = np.lexsort((shortlist, key), axis=1)[:, :k]
        self.out_ids[start:stop] = np.take_along_axis(shortlist, chosen, axis=1)
        self.out_scores[start:stop] = np.take_along_axis(exact, chosen, axis=1)

    def plateaus(self) -> None:
        """Rank again, by ``core``'s own exact ranking, the rows whose shortlist may be
        incomplete (a plateau of ties at the k-th score, or a bf16 window wider than the
        shortlist), many at a time: one matrix product per batch instead of one pass each."""
        rows = np.unique(np.concatenate([np.empty(0, dtype=np.int64), *self.unsound]))
        if rows.size == 0:
            return
        position = np.full(self.source.shape[0], -1, dtype=np.int64)
        position[self.index] = np.arange(self.index.size)
        outside = np.flatnonzero(position < 0)  # rows of the source the pass leaves out
        for start in range(0, rows.size, _PLATEAU_ROWS):
            batch = rows[start : start + _PLATEAU_ROWS]
            ranked = _ranked_alone(self.source, self.index[batch], self.k, self.radius, outside)
            for row, (ids, scores) in zip(batch.tolist(), ranked):
                self.out_ids[row], self.out_scores[row] = position[ids], scores


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    """Each row's float64 norm, as core.exact_scores computes it for the rows it scores."""
    out = np.empty(matrix.shape[0], dtype=np.float64)
    step = max(1, 2**22 // max(1, matrix.shape[1]))  # 32 MB of float64 at a time
    for start in range(0, matrix.shape[0], step):
        rows = matrix[start : start + step].astype(np.float64)
        out[start : start + rows.shape[0]] = np.sqrt(np.einsum("wd,wd->w", rows, rows))
    return out


def _query_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    # Each row as core.query_vectors makes a one-token query: normalized again (bit for bit).
    return core.normalize_rows(matrix[rows])[0].astype(np.float64)


def _exact_block(
    matrix: np.ndarray, norms: np.ndarray, rows: np.ndarray, shortlist: np.ndarray
) -> np.ndarray:
    """Float64 cosines of each row against its shortlist, computed as ``core.exact_scores``
    does (``einsum``'s loop along each row, the same norms), so the numbers match a
    ``neighbors`` query to the last bit."""
    queries = _query_rows(matrix, rows)
    q_norms = np.sqrt(np.einsum("cd,cd->c", queries, queries))
    dots = np.einsum("cwd,cd->cw", matrix[shortlist].astype(np.float64), queries)
    denominators = norms[shortlist] * q_norms[:, None]
    cos = np.zeros_like(dots)
    np.divide(dots, denominators, out=cos, where=denominators > 0)
    np.clip(cos, -1.0, 1.0, out=cos)
    return cos


def _ranked_alone(
    matrix: np.ndarray, rows: np.ndarray, k: int, radius: np.ndarray | None, outside: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each row's list by ``core.rank_many`` as a one-token query (the same lists, bit for
    bit, in any batch), ``outside`` and the row itself left out."""
    queries = _query_rows(matrix, rows).astype(np.float32)
    exclude = [np.concatenate([[row], outside]) for row in rows.tolist()]
    if radius is None:
        return core.rank_many(matrix, queries, k, exclude)
    return core.rank_many(
        matrix, queries, k, exclude, radius=radius, query_radius=radius[rows].tolist()
    )
