"""`neighbors QUERY --in B` against a plain `neighbors QUERY` on a GPT-2-sized pair, the map
cached (issue 23: "as fast as plain ones plus one matrix-vector product").

The pair is align_pass.py's (bench.py's 50,257 x 768 checkpoint, and a rotated, noised copy).
Both entries and the map are cached first; then ROUNDS rounds, each running the plain query and
the --in query once as whole processes, one after the other (interleaved, so both see the same
load on a shared machine). Printed: the median wall and CPU seconds of each, their ratio, and
the same two queries timed in one process (the model loads excluded), which is the cost of the
mapping and B's ranking themselves.

    .venv/bin/python benchmarks/cross_pass.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from align_pass import CACHE, ROTATED, make_rotated, tokneigh
from bench import CHECKPOINT, ROOT, ensure_checkpoint


def in_process(repeats: int) -> dict[str, float]:
    """Median milliseconds of ``neighbors`` and ``neighbors_in`` once both models are loaded."""
    sys.path.insert(0, str(ROOT / "src"))
    import tokneigh as api

    a = api.load(str(CHECKPOINT), cache_dir=CACHE)
    b = api.load(str(ROTATED), cache_dir=CACHE)
    skip = api.Filters(skip_special=True)
    a.neighbors_in(b, ["king"], k=20, filters=skip)  # warm: the map read once, pages touched
    plain, cross = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a.neighbors(" king", k=20, filters=skip)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        a.neighbors_in(b, [" king"], k=20, filters=skip)
        cross.append(time.perf_counter() - start)
    return {
        "plain_ms": round(1000 * statistics.median(plain), 1),
        "in_ms": round(1000 * statistics.median(cross), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    ensure_checkpoint()
    make_rotated()
    plain = ["neighbors", " king", "--model", str(CHECKPOINT), "--format", "json"]
    cross = [*plain, "--in", str(ROTATED)]
    tokneigh(*cross)  # the entries built and the map fitted and kept: not timed
    walls: dict[str, list[float]] = {"plain": [], "in": []}
    cpus: dict[str, list[float]] = {"plain": [], "in": []}
    for _ in range(options.rounds):
        for name, args in (("plain", plain), ("in", cross)):
            wall, cpu, done = tokneigh(*args)
            walls[name].append(wall)
            cpus[name].append(cpu)
    assert json.loads(done.stdout)[0]["alignment"]["cached"] is True
    median = {k: statistics.median(v) for k, v in walls.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpus.items()}
    print(
        json.dumps(
            {
                "rounds": options.rounds,
                "plain_seconds": round(median["plain"], 3),
                "in_seconds": round(median["in"], 3),
                "ratio_wall": round(median["in"] / median["plain"], 2),
                "plain_cpu_seconds": round(median_cpu["plain"], 3),
                "in_cpu_seconds": round(median_cpu["in"], 3),
                "ratio_cpu": round(median_cpu["in"] / median_cpu["plain"], 2),
                "in_process": in_process(options.rounds * 3),
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
