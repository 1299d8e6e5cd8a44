"""An interrupted all-pairs pass resumes from its last saved state, and ends bit for bit where
an uninterrupted pass ends; a damaged or foreign state is never trusted (issue 24, item 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from tokneigh.space import allpairs, core


class Interrupted(Exception):
    pass


class MemoryCheckpoints:
    """``allpairs.Checkpoints`` in memory: copies of what was saved (the pass's arrays live on)."""

    def __init__(self) -> None:
        self.state: dict[str, np.ndarray] | None = None
        self.saves = 0
        self.rejected: list[str] = []

    def load(self) -> dict[str, np.ndarray] | None:
        return None if self.state is None else {k: v.copy() for k, v in self.state.items()}

    def save(self, state: dict[str, np.ndarray]) -> None:
        self.state = {k: np.array(v, copy=True) for k, v in state.items()}
        self.saves += 1

    def reject(self, reason: str) -> None:
        self.rejected.append(reason)


class Counter:
    """A progress callback counting the block products it hears of; raises after ``stop``."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.stop = stop

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        if self.stop is not None and len(self.calls) >= self.stop:
            raise Interrupted


def matrix(seed: int, n: int = 900, d: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[40:55] = x[40]  # a plateau of ties wider than the shortlist's slack
    x[300] = x[3]
    return core.normalize_rows(x)[0]


def pairs_of(n: int, block: int, keep: int) -> int:
    blocks = len(allpairs.block_bounds(n, block, keep))
    return blocks * (blocks + 1) // 2


@pytest.mark.parametrize("products", ["float32", "bf16"])
@pytest.mark.parametrize("csls", [False, True])
def test_an_interrupted_pass_resumes_and_equals_an_uninterrupted_one(products, csls):
    unit = matrix(1)
    rows = np.flatnonzero(np.arange(unit.shape[0]) % 11 != 5)  # some rows left out
    radius = np.random.default_rng(2).uniform(0.1, 0.4, unit.shape[0]) if csls else None
    k, block = 7, 64
    want = allpairs.knn_all_pairs(unit, rows, k, radius=radius, block=block, products=products)
    saved = MemoryCheckpoints()
    with pytest.raises(Interrupted):
        allpairs.knn_all_pairs(
            unit, rows, k, radius=radius, block=block, products=products,
            checkpoints=saved, progress=Counter(stop=40),
        )
    assert saved.state is not None and saved.saves >= 2
    finished = int(saved.state["pairs_done"])
    assert 14 <= finished < 40  # the diagonals (14 blocks) at least, not past the interruption
    again = Counter()
    got = allpairs.knn_all_pairs(
        unit, rows, k, radius=radius, block=block, products=products,
        checkpoints=saved, progress=again,
    )
    assert saved.rejected == []
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # The second run multiplied only the blocks the first had not finished (its first call
    # reports where it starts from, without a product).
    total = pairs_of(rows.size, block, min(k + 8, rows.size - 1))
    assert again.calls[0][0] > 0
    assert len(again.calls) - 1 == total - finished
    assert again.calls[-1][0] == again.calls[-1][1]


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda s: s.update(key=s["key"][::-1].copy()), "another pass"),
        (lambda s: s.update(values=s["values"][:, :-1].copy()), "wrong shape"),
        (lambda s: s["values"].__setitem__((3, 2), np.nan), "NaN"),
        (lambda s: s["ids"].__setitem__((5, 0), 10**9), "impossible row ids"),
        (lambda s: s.update(pairs_done=np.asarray(10**6)), "finished blocks"),
        (lambda s: s.pop("threshold"), "lacks threshold"),
    ],
)
def test_a_foreign_or_spoilt_state_is_ignored_and_the_pass_starts_over(spoil, reason):
    unit = matrix(3, n=500)
    rows = np.arange(unit.shape[0])
    want = allpairs.knn_all_pairs(unit, rows, 5, block=64, products="float32")
    saved = MemoryCheckpoints()
    with pytest.raises(Interrupted):
        allpairs.knn_all_pairs(
            unit, rows, 5, block=64, products="float32", checkpoints=saved,
            progress=Counter(stop=20),
        )
    assert saved.state is not None
    spoil(saved.state)
    again = Counter()
    got = allpairs.knn_all_pairs(
        unit, rows, 5, block=64, products="float32", checkpoints=saved, progress=again
    )
    assert len(saved.rejected) == 1 and reason in saved.rejected[0]
    assert again.calls[0][0] > 0 and len(again.calls) == pairs_of(500, 64, 13)  # from the start
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_a_state_of_other_inputs_is_foreign():
    """k, the rows and the matrix are all in the state's fingerprint."""
    unit = matrix(4, n=400)
    rows = np.arange(unit.shape[0])
    saved = MemoryCheckpoints()
    with pytest.raises(Interrupted):
        allpairs.knn_all_pairs(
            unit, rows, 5, block=64, products="float32", checkpoints=saved,
            progress=Counter(stop=12),
        )
    state = saved.state
    for other in [
        dict(unit=unit, rows=rows, k=6),
        dict(unit=unit, rows=rows[1:], k=5),
        dict(unit=matrix(5, n=400), rows=rows, k=5),
    ]:
        saved.state, saved.rejected = state, []
        allpairs.knn_all_pairs(
            other["unit"], other["rows"], other["k"], block=64, products="float32",
            checkpoints=saved,
        )
        assert len(saved.rejected) == 1, other


# --- through the cache and the command line ---------------------------------------------------


def partial_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/graph-*.partial.npz"))


def graph_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("*/graph-*.npz") if ".partial." not in p.name)


def test_a_killed_graph_command_resumes_on_the_next_run(gpt2_dir, cache_dir, tmp_path):
    """`tokneigh graph` SIGKILLed once its partial file exists, then run again: the second run
    starts where the first stopped, and the graph equals an uninterrupted pass's."""
    env = {**os.environ, "TOKNEIGH_CACHE_DIR": str(cache_dir)}
    args = [sys.executable, "-m", "tokneigh", "graph", "--k", "10", "--model", str(gpt2_dir)]
    first = subprocess.Popen(
        [*args, "--output", str(tmp_path / "first.npz")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not partial_files(cache_dir) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the pass ended before it saved a state"
    first.send_signal(signal.SIGKILL)
    first.wait()
    [partial] = partial_files(cache_dir)
    assert graph_files(cache_dir) == []
    with np.load(partial) as state:
        finished = int(state["pairs_done"])
    assert finished > 0

    from tokneigh import load

    emb = load(str(gpt2_dir))
    counter = Counter()
    notes: list[str] = []
    resumed = emb.graph(10, progress=counter, report=notes.append)
    assert not [n for n in notes if "partial" in n], notes
    rows = emb.graph_rows()
    total = pairs_of(rows.size, allpairs.BLOCK, 18)
    assert counter.calls[0][0] > 0 and len(counter.calls) - 1 == total - finished
    assert partial_files(cache_dir) == []  # the graph is kept: its state is gone
    assert len(graph_files(cache_dir)) == 1

    # Each row as an uninterrupted pass lists it (the same as a `neighbors --id` query, bit for
    # bit: tests/test_whole_vocabulary.py), on sampled rows: a full pass costs seconds more.
    unit, left_out = emb.view.unit, np.setdiff1d(np.arange(emb.view.vocab_size), rows)
    for at in np.random.default_rng(0).choice(rows.size, 150, replace=False).tolist():
        x = int(rows[at])
        query = core.query_vectors(unit, [[x]])
        [(ids, sims)] = core.rank_many(unit, query, 10, [np.concatenate([[x], left_out])])
        assert np.array_equal(resumed.neighbors[at], ids), x
        assert np.array_equal(resumed.similarities[at], sims), x


def test_a_corrupted_partial_file_is_ignored_with_a_warning(llama_dir, cache_dir, tmp_path):
    """A partial file whose bytes are damaged is reported and not used: the graph is computed
    from scratch, equals the pass's own, and the damaged file is gone once the graph is kept."""
    from tokneigh import load
    from tokneigh.store import derived

    emb = load(str(llama_dir))
    entry, rows = emb._entry, emb.graph_rows()
    name = "graph-cosine-k5.partial.npz"
    state = {"key": np.arange(32, dtype=np.uint8), "values": np.ones((rows.size, 13), np.float32)}
    derived.save(entry, name, state, print)
    partial = entry.path / name
    data = bytearray(partial.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroed bytes inside an array: its CRC fails
    partial.write_bytes(bytes(data))
    notes: list[str] = []
    assert derived.SavedState(entry, name, notes.append).load() is None
    assert len(notes) == 1 and "unusable" in notes[0]
    notes.clear()
    graph = emb.graph(5, report=notes.append)
    assert any(name in n and "unusable" in n for n in notes), notes
    view = emb.view
    ids, sims = allpairs.knn_all_pairs(view.unit, rows, 5)
    assert np.array_equal(graph.neighbors, ids) and np.array_equal(graph.similarities, sims)
    assert not partial.exists()
    result = cli("graph", "--k", "5", "--model", llama_dir, "--output", tmp_path / "g.npz")
    assert result.exit_code == 0, result.stderr
