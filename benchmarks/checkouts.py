"""Two checkouts of tokneigh side by side: did a change (a refactor, say) cost speed?

    python benchmarks/checkouts.py --against /path/to/other/checkout [--rounds 21]

On bench.py's GPT-2-sized checkpoint (50,257 x 768, built once under benchmarks/out/), in one
session and interleaved (this checkout, the other, ``import numpy``, round after round):

  - the warm query, ``tokneigh neighbors Mike --top 20`` from a warm cache, as a ratio to
    ``python -c "import numpy"`` (its floor: a query is a Python start plus one product);
  - with ``--graph``, the all-pairs pass (``knn_all_pairs``, K = 10) of each checkout as a
    ratio to FAISS ``IndexFlatIP`` on the same matrix (benchmarks/graph_pass.py's contenders),
    each in a process of its own per round.

Each checkout runs from its own ``src`` through PYTHONPATH, with this interpreter. Prints a
Markdown table of medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (this folder's own helpers: the checkpoint, runs, interleaving)

_GRAPH = """
import sys, time
import numpy as np
rows, dim = 50257, 768
rng = np.random.default_rng(0)
matrix = rng.standard_normal((rows, dim), dtype=np.float32)
matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
if sys.argv[1] == "faiss":
    import faiss
    index = faiss.IndexFlatIP(dim)
    index.add(matrix)
    started = time.perf_counter()
    index.search(matrix, 11)
else:
    from tokneigh.allpairs import knn_all_pairs
    ids = np.arange(rows)
    started = time.perf_counter()
    knn_all_pairs(matrix, ids, 10)
print(time.perf_counter() - started)
"""


def _env(src: Path) -> dict[str, str]:
    env = bench._env(bench.CACHE)
    env["PYTHONPATH"] = str(src)
    return env


def _query(src: Path) -> float:
    cmd = [sys.executable, "-m", "tokneigh", "neighbors", bench.WORD, "--top", "20"]
    return bench.run([*cmd, "--model", str(bench.CHECKPOINT)], _env(src)).wall


def _graph(src: Path, contender: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _GRAPH, contender],
        env=_env(src), capture_output=True, text=True, check=True,
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--graph", action="store_true", help="also the all-pairs pass")
    parser.add_argument("--graph-rounds", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "src"
    there = args.against.resolve() / "src"
    bench.ensure_checkpoint()
    for src in (here, there):  # the cache entry once, and each checkout's bytecode
        _query(src)
        _query(src)
    numpy = [sys.executable, "-c", "import numpy"]
    series = bench.interleave(
        args.rounds,
        {
            "this checkout": lambda: _query(here),
            "the other": lambda: _query(there),
            "import numpy": lambda: bench.run(numpy, _env(here)).wall,
        },
    )
    floor = series["import numpy"].median
    print(f"\nwarm query, {args.rounds} interleaved rounds (medians)\n")
    print("| | seconds | x import numpy |\n|---|---:|---:|")
    for name, s in series.items():
        print(f"| {name} | {s.median:.3f} | {s.median / floor:.2f} |")
    if args.graph:
        graph = bench.interleave(
            args.graph_rounds,
            {
                "pass, this checkout": lambda: _graph(here, "pass"),
                "pass, the other": lambda: _graph(there, "pass"),
                "faiss IndexFlatIP": lambda: _graph(here, "faiss"),
            },
        )
        faiss = graph["faiss IndexFlatIP"].median
        print(f"\nall-pairs pass, 50,257 x 768, K = 10, {args.graph_rounds} rounds\n")
        print("| | seconds | x faiss |\n|---|---:|---:|")
        for name, s in graph.items():
            print(f"| {name} | {statistics.median(s.samples):.2f} | {s.median / faiss:.2f} |")


if __name__ == "__main__":
    main()
