"""The all-pairs neighbour pass (``tokneigh graph``) against what a user would run instead.

One process, one GPT-2-sized matrix (50,257 x 768 unit rows, seeded Gaussian), K = 10, three
contenders run in interleaved rounds so that the machine's noise falls on all of them:

- ``pass``: ``allpairs.knn_all_pairs``, exact, self excluded (what ``graph`` computes);
- ``faiss``: FAISS ``IndexFlatIP`` searching every row for K + 1 (its own BLAS, the same two
  threads);
- ``products``: the bare block products the pass must do (the symmetric half), nothing else.

Targets (issue 11): pass <= 0.6 x faiss, pass <= 1.3 x products. Peak memory is the process's
largest resident set above the matrix while each contender runs (sampled from /proc).

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/graph_pass.py [--rounds 3] [--rows 50257] [--dim 768]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time

import numpy as np

from tokneigh.space import allpairs, core


def bare_products(matrix: np.ndarray, block: int = allpairs.BLOCK) -> float:
    """The pass's own block schedule, products only; returns a checksum to keep them live."""
    n = matrix.shape[0]
    bounds = allpairs.block_bounds(n, block, keep=10 + 8)
    widest = max(b - a for a, b in bounds)
    buffer = np.empty(widest * widest, dtype=np.float32)
    total = 0.0
    for i, (a, b) in enumerate(bounds):
        for c, d in bounds[i:]:
            out = buffer[: (b - a) * (d - c)].reshape(b - a, d - c)
            np.matmul(matrix[a:b], matrix[c:d].T, out=out)
            total += float(out[0, 0])
    return total


def faiss_search(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    scores, ids = index.search(matrix, k + 1)
    return ids, scores


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """The most resident memory seen (sampled every 10 ms) while the block runs, above what
    was resident when it started (the matrix and the interpreter)."""

    def __enter__(self) -> PeakMemory:
        self.base = rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def above(self) -> float:
        return self.peak - self.base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50257)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    import faiss

    faiss.omp_set_num_threads(2)
    rng = np.random.default_rng(0)
    matrix, _ = core.normalize_rows(rng.standard_normal((args.rows, args.dim), dtype=np.float32))
    print(f"matrix {args.rows:,} x {args.dim} float32 ({matrix.nbytes / 2**20:.0f} MB), "
          f"K = {args.k}, {args.rounds} interleaved rounds")
    times: dict[str, list[float]] = {"pass": [], "faiss": [], "products": []}
    peaks: dict[str, float] = {}
    rows = np.arange(args.rows)
    check = None
    for round_ in range(args.rounds):
        for name in ("pass", "faiss", "products"):
            with PeakMemory() as memory:
                started = time.perf_counter()
                if name == "pass":
                    ids, _ = allpairs.knn_all_pairs(matrix, rows, args.k)
                    check = ids
                elif name == "faiss":
                    f_ids, _ = faiss_search(matrix, args.k)
                else:
                    bare_products(matrix)
                times[name].append(time.perf_counter() - started)
            peaks[name] = max(peaks.get(name, 0.0), memory.above)
            print(f"  round {round_ + 1} {name:9s} {times[name][-1]:7.2f} s", flush=True)
    # FAISS's list is self then the K others, unless a tie or rounding put self second.
    assert check is not None
    same = np.mean([set(check[i]) == set(f_ids[i][f_ids[i] != i][: args.k])
                    for i in range(0, args.rows, 97)])
    med = {name: statistics.median(v) for name, v in times.items()}
    print()
    print("| contender | median s | ratio to pass | peak MB above the matrix |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("pass", "faiss", "products"):
        print(f"| {name} | {med[name]:.2f} | {med[name] / med['pass']:.2f} | {peaks[name]:.0f} |")
    print()
    print(f"pass / faiss    = {med['pass'] / med['faiss']:.2f}  (target <= 0.60)")
    print(f"pass / products = {med['pass'] / med['products']:.2f}  (target <= 1.30)")
    print(f"neighbour sets equal to FAISS's on sampled rows: {same:.3f}")


if __name__ == "__main__":
    main()
