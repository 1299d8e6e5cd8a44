"""1,000 queries in one call against their floor (issue 24, item 5).

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/batch_floor.py [--rounds 7]
        [--against OTHER_CHECKOUT]

The floor of a batch is one query's invocation (`tokneigh neighbors Mike --top 20 -f json`, a
whole process) plus the bare product of the 1,000 query vectors with the matrix
(1,000 x 768 by 768 x 50,257, numpy in this process, on an in-memory copy of the cached
matrix: no memory-mapping cost). Measured on bench.py's GPT-2-sized checkpoint, interleaved
round after round (the product after a short pause, BLAS threads at rest):

  - `tokneigh neighbors W1 ... W1000 --top 20 -f json` (1,000 arguments);
  - `tokneigh neighbors --queries FILE --top 20 -f json` (the same 1,000 words, one a line);
  - with --against, the other checkout's two batches in the same rounds.

Target (issue 24): the batch at most 1.25x its floor. Prints a Markdown table of medians.
Each checkout runs from its own ``src`` through PYTHONPATH, with this interpreter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (this folder's own helpers: the checkpoint, runs, interleaving)

TARGET = 1.25


def _env(src: Path) -> dict[str, str]:
    env = bench._env(bench.CACHE)
    env["PYTHONPATH"] = str(src)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another checkout, measured alongside")
    args = parser.parse_args()
    bench.ensure_checkpoint()
    checkouts = {"this checkout": Path(__file__).resolve().parents[1] / "src"}
    if args.against:
        checkouts["the other"] = args.against.resolve() / "src"
    words = bench.single_token_words(bench.MANY)
    lines = Path(tempfile.mkdtemp()) / "queries.txt"
    lines.write_text("\n".join(words) + "\n")
    model = ["--model", str(bench.CHECKPOINT)]
    cmd = [sys.executable, "-m", "tokneigh", "neighbors"]
    tail = ["--top", str(bench.TOP), "-f", "json", *model]
    one = [*cmd, bench.WORD, *tail]
    many = [*cmd, *words, *tail]
    from_file = [*cmd, "--queries", str(lines), *tail]

    contenders: dict[str, Callable[[], float]] = {}
    outputs: dict[str, str] = {}
    for name, src in checkouts.items():
        env = _env(src)
        bench.run(one, env)  # the cache entry, and each checkout's bytecode
        outputs[name] = bench.run(many, env, capture=True).stdout
        assert bench.run(from_file, env, capture=True).stdout == outputs[name]
        contenders[f"{name}: 1,000 arguments"] = lambda e=env: bench.run(many, e).wall
        contenders[f"{name}: --queries FILE"] = lambda e=env: bench.run(from_file, e).wall
    same = len(set(outputs.values())) == 1
    contenders["one query"] = lambda: bench.run(one, _env(checkouts["this checkout"])).wall

    import numpy as np

    import tokneigh

    emb = tokneigh.load(str(bench.CHECKPOINT), cache_dir=bench.CACHE)
    dense = np.array(emb.unit)  # in memory: the product at its best
    vectors = np.stack([emb.vector(w) for w in words])
    product = vectors @ dense.T  # first touches

    def bare() -> float:
        time.sleep(0.2)  # the BLAS threads of the last product at rest
        started = time.perf_counter()
        np.matmul(vectors, dense.T, out=product)
        return time.perf_counter() - started

    def bare_fresh() -> float:  # a new 200 MB result each time, as a script would
        time.sleep(0.2)
        started = time.perf_counter()
        _ = vectors @ dense.T
        return time.perf_counter() - started

    contenders["bare product"] = bare
    contenders["bare product, new result array"] = bare_fresh
    print(f"load average at start: {bench.load_average()}", file=sys.stderr)
    series = bench.interleave(args.rounds, contenders)
    floor = series["one query"].median + series["bare product"].median
    print(
        f"\n{bench.MANY:,} queries, --top {bench.TOP} -f json, {args.rounds} interleaved rounds "
        f"(medians); floor = one query + bare product = {floor:.3f} s\n"
    )
    print("| | seconds | x floor |\n| --- | ---: | ---: |")
    for name, s in series.items():
        print(f"| {name} | {s.median:.3f} | {s.median / floor:.2f} |")
    print(
        f"\nload average at the end: {bench.load_average()}; target: at most {TARGET}x; "
        f"outputs of the checkouts {'identical' if same else 'DIFFER'}"
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
