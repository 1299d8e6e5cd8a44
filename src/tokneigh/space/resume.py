"""The all-pairs pass's state between runs: what it saves at a block row's end, and what it
accepts back.

The pass is deterministic: the same inputs, the same blocks in the same order give the same
running shortlists. So a state is the shortlists (``_Best``), the rows already final, the rows
left for ``plateaus``, and how many block pairs are done; the pass resumes at the next pair
and ends bit for bit where an uninterrupted pass would. A state is used only if its
fingerprint (the rows, k, the shortlist's length, the block size, the product, the radius and
a sample of the matrix) is this pass's and its arrays are possible; anything else is
``reject``-ed and ignored.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

FORMAT = 1  # bumped whenever the state's meaning changes: older states are then foreign
_SAMPLED_ROWS = 2048  # rows of the matrix hashed: enough to tell matrices apart, in milliseconds


class Checkpoints(Protocol):
    """Where a pass keeps its state between runs (the store implements it: ``space`` knows no
    files). ``load`` gives the last state saved, or None; ``reject`` hears why a state given
    by ``load`` was not used (it is then ignored: the pass starts over)."""

    def load(self) -> dict[str, np.ndarray] | None: ...

    def save(self, state: dict[str, np.ndarray]) -> None: ...

    def reject(self, reason: str) -> None: ...


def fingerprint(
    unit: np.ndarray,
    rows: np.ndarray,
    radius: np.ndarray | None,
    k: int,
    keep: int,
    block: int,
    mode: str,
) -> np.ndarray:
    """A digest of what determines the pass's state, as a uint8 array (a .npz holds it)."""
    digest = hashlib.sha256()
    digest.update(f"{FORMAT} {unit.shape} {k} {keep} {block} {mode}".encode())
    digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
    if radius is not None:
        digest.update(np.ascontiguousarray(radius, dtype=np.float64)[rows].tobytes())
    step = max(1, rows.size // _SAMPLED_ROWS)
    digest.update(np.ascontiguousarray(unit[rows[::step]], dtype=np.float32).tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


class State:
    """The live arrays of one pass (``arrays``: the running shortlists, then the final lists,
    and ``unsound``, the list the pass appends the rows to rank again to), saved as a dict and
    restored in place."""

    NAMES = ("values", "ids", "threshold", "out_ids", "out_scores")

    def __init__(
        self, key: np.ndarray, arrays: tuple[np.ndarray, ...], unsound: list[np.ndarray]
    ) -> None:
        self.key, self.live, self.unsound = key, dict(zip(self.NAMES, arrays)), unsound

    def arrays(self, pairs_done: int) -> dict[str, np.ndarray]:
        unsound = np.concatenate([np.empty(0, dtype=np.int64), *self.unsound])
        return {
            "key": self.key,
            "pairs_done": np.asarray(pairs_done, dtype=np.int64),
            **self.live,
            "unsound": unsound,
        }

    def restore(self, checkpoints: Checkpoints, pairs: int) -> int:
        """How many block pairs a saved state has done (its arrays copied in), or 0."""
        state = checkpoints.load()
        if state is None:
            return 0
        problem = self._problem(state, pairs)
        if problem:
            checkpoints.reject(problem)
            return 0
        for name, array in self.live.items():
            array[...] = state[name]
        self.unsound[:] = [state["unsound"].astype(np.int64)]
        return int(state["pairs_done"])

    def _problem(self, state: dict[str, np.ndarray], pairs: int) -> str | None:
        """What makes a state unusable for this pass, or None."""
        mine = self.arrays(0)
        missing = sorted(set(mine) - set(state))
        if missing:
            return f"it lacks {', '.join(missing)}"
        if not np.array_equal(state["key"], self.key):
            return "it belongs to another pass (other rows, k, metric or matrix)"
        for name in self.NAMES:
            if state[name].shape != mine[name].shape or state[name].dtype != mine[name].dtype:
                return f"its {name} have the wrong shape or type"
        n = self.live["ids"].shape[0]
        done, unsound = state["pairs_done"], state["unsound"]
        if done.shape != () or done.dtype != np.int64 or not 0 < int(done) < pairs:
            return "its count of finished blocks is impossible"
        if unsound.ndim != 1 or unsound.dtype != np.int64 or ((unsound < 0) | (unsound >= n)).any():
            return "its rows to rank again are impossible"
        if np.isnan(state["values"]).any() or np.isnan(state["threshold"]).any():
            return "it holds NaN scores"
        if not np.isfinite(state["out_scores"]).all():
            return "it holds impossible scores"
        ids, out = state["ids"], state["out_ids"]
        if ((ids < -1) | (ids >= n)).any() or ((out < 0) | (out >= n)).any():
            return "it holds impossible row ids"
        return None
