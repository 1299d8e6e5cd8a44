"""The all-pairs pass with float32 products against the pass with bf16 candidates (issue 24,
item 4), interleaved on the same matrix so that the machine's noise falls on both.

Two sizes:

- ``gpt2`` (default): the GPT-2-shaped checkpoint of ``bench.py`` (50,257 x 768, random
  weights, its real tokenizer: the special token left out as ``graph`` leaves it out);
- ``llama``: a seeded Gaussian 128,256 x 4,096 matrix, its last 256 rows left out (Llama 3's
  special tokens). A float32 pass there takes minutes: it runs only when the load average is
  below 3 (the machine may be shared), once per contender unless ``--rounds`` says more.

For each contender: seconds, peak resident memory above what was resident before (the
matrix, the interpreter), whether the graph equals the float32 pass's bit for bit, and how
well the ETA held (the remaining time the progress predicted at 25 % and 50 % against what it
took). ``--faiss`` adds FAISS ``IndexFlatIP`` (K + 1 per row, the same threads).

    .venv/bin/python benchmarks/graph_bf16.py [--size gpt2|llama] [--rounds 2] [--faiss]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from graph_pass import PeakMemory, faiss_search  # noqa: E402

from tokneigh.space import allpairs, bf16, core  # noqa: E402


def gpt2_matrix() -> tuple[np.ndarray, np.ndarray]:
    from bench import CHECKPOINT, ensure_checkpoint

    import tokneigh

    ensure_checkpoint()
    emb = tokneigh.load(str(CHECKPOINT), cache_dir=os.environ.get("TOKNEIGH_BENCH_CACHE"))
    return np.asarray(emb.view.unit), emb.graph_rows()


def llama_matrix() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n, d = 128_256, 4096
    unit = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 8192):  # normalized a slice at a time: no second full copy
        part = rng.standard_normal((min(8192, n - start), d), dtype=np.float32)
        unit[start : start + part.shape[0]] = core.normalize_rows(part)[0]
    return unit, np.arange(n - 256)


class Eta:
    """The remaining time the progress predicts (elapsed x (total - done) / done, as a bar's
    ETA does) at 25 % and 50 %, to compare with what the pass then took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.predicted: dict[int, tuple[float, float]] = {}

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        for mark in (25, 50):
            if mark not in self.predicted and done * 100 >= total * mark:
                self.predicted[mark] = (elapsed, elapsed * (total - done) / done)

    def report(self, seconds: float) -> str:
        parts = []
        for mark, (at, left) in sorted(self.predicted.items()):
            parts.append(f"at {mark}%: predicted {left:.0f} s left, took {seconds - at:.0f} s")
        return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["gpt2", "llama"], default="gpt2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--faiss", action="store_true")
    parser.add_argument("--force", action="store_true", help="run llama whatever the load")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.size == "llama" and load >= 3 and not args.force:
        raise SystemExit(f"load average {load:.1f} >= 3: the machine is busy, not running llama")
    print(f"CPU fast bf16 products: {bf16.fast_bf16_products()}; load average {load:.1f}")
    unit, rows = gpt2_matrix() if args.size == "gpt2" else llama_matrix()
    print(f"matrix {unit.shape[0]:,} x {unit.shape[1]} float32 ({unit.nbytes / 2**20:.0f} MB), "
          f"{rows.size:,} rows ranked, K = {args.k}, {args.rounds} interleaved rounds",
          flush=True)
    contenders = ["float32", "bf16"] + (["faiss"] if args.faiss else [])
    times: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, float] = {}
    graphs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for round_ in range(args.rounds):
        for name in contenders:
            eta = Eta()
            with PeakMemory() as memory:
                started = time.perf_counter()
                if name == "faiss":
                    faiss_search(np.ascontiguousarray(unit[rows]), args.k)
                else:
                    graphs[name] = allpairs.knn_all_pairs(
                        unit, rows, args.k, products=name, progress=eta  # type: ignore[arg-type]
                    )
                seconds = time.perf_counter() - started
            times[name].append(seconds)
            peaks[name] = max(peaks.get(name, 0.0), memory.above)
            extra = "" if name == "faiss" else f"  ETA {eta.report(seconds)}"
            print(f"  round {round_ + 1} {name:8s} {seconds:8.2f} s  peak +{memory.above:.0f} MB"
                  f"{extra}", flush=True)
    same = all(np.array_equal(a, b) for a, b in zip(graphs["float32"], graphs["bf16"]))
    med = {name: statistics.median(v) for name, v in times.items()}
    print()
    print("| contender | median s | ratio to float32 | peak MB above the matrix |")
    print("| --- | ---: | ---: | ---: |")
    for name in contenders:
        print(f"| {name} | {med[name]:.2f} | {med[name] / med['float32']:.2f} | "
              f"{peaks[name]:.0f} |")
    print()
    print(f"bf16 / float32 = {med['bf16'] / med['float32']:.2f}  (target <= 0.50 at llama size)")
    if "faiss" in med:
        print(f"bf16 / faiss   = {med['bf16'] / med['faiss']:.2f}  (target <= 0.25 at llama size)")
    print(f"graphs equal bit for bit (ids and scores): {same}")


if __name__ == "__main__":
    main()
