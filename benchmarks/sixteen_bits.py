"""Would 16-bit rows reach the warm query's floor with half the disk and memory? (issue 24,
item 3: a measurement, not a change of the cache format)

    python benchmarks/sixteen_bits.py [--size llama3] [--rounds 7]

On sizes.py's checkpoint (bf16, built once) and this checkout's cache entry of it (float32
unit rows, built once under benchmarks/out/sizes/cache-16), one query ("the row of id 1000,
its top 20") in a whole process each, interleaved round after round:

  float32 unit rows   today's cache: one product over the memory-mapped float32 unit rows;
  bf16 model rows     the checkpoint's own bf16 rows (memory-mapped from the safetensors file,
                      as a 16-bit cache would store them) with float32 norms: each block of
                      rows widened to float32 (into a reused buffer), one product, divided by
                      the norms;
                      then the shortlist (top 200) rescored exactly in float64 from those rows;
  float16 unit rows   unit rows rounded to float16 (a file written once), widened a block at a
                      time, one product; the shortlist rescored from the float32 cache;
  numpy floor         import numpy and one product over the float32 rows (sizes.py's floor).

Prints the medians, the disk each needs, and whether each top 20 equals the float32 one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import sizes  # noqa: E402

_QUERY = r"""
import json, sys
import numpy as np
kind, matrix_path, norms_path, source, extra = sys.argv[1:6]
ROW, TOP, SHORT, BLOCK = 1000, 20, 200, 16384
norms = np.load(norms_path)
unit = np.load(matrix_path, mmap_mode="r")
if kind == "floor":
    (unit @ unit[ROW]).argmax()
    sys.exit()
if kind == "float32":
    scores = unit @ unit[ROW]
    top = np.argpartition(-scores, TOP)[:TOP]
    print(json.dumps(sorted(top[np.lexsort((top, -scores[top]))].tolist()[:TOP])))
    sys.exit()
if kind == "bf16":
    with open(source, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
    (entry,) = [v for k, v in header.items() if k != "__metadata__"]
    rows = np.memmap(source, np.uint16, "r", 8 + length + entry["data_offsets"][0],
                     tuple(entry["shape"]))
    # bfloat16 is a float32's top half: copied into the top halves of a zeroed uint32 buffer
    # (little-endian: the odd uint16s), reused block after block. 3-5x faster than
    # astype(uint32) << 16, the fastest numpy way found.
    wide = np.zeros((BLOCK, rows.shape[1]), np.uint32)
    def widened(block):
        out = wide[: len(block)]
        out.view(np.uint16)[:, 1::2] = block
        return out.view(np.float32)
    query = widened(rows[ROW : ROW + 1])[0] / norms[ROW]
else:  # float16 unit rows
    rows = np.load(extra, mmap_mode="r")
    wide = np.empty((BLOCK, rows.shape[1]), np.float32)
    def widened(block):
        np.copyto(wide[: len(block)], block)
        return wide[: len(block)]
    query = widened(rows[ROW : ROW + 1])[0].copy()
scores = np.empty(len(rows), np.float32)
for start in range(0, len(rows), BLOCK):
    scores[start:start + BLOCK] = widened(rows[start:start + BLOCK]) @ query
if kind == "bf16":
    with np.errstate(divide="ignore", invalid="ignore"):
        scores /= norms
    scores[~np.isfinite(scores)] = -np.inf
short = np.argpartition(-scores, SHORT)[:SHORT]
if kind == "bf16":  # exact: the model's own values, in float64
    cand = widened(rows[np.sort(short)]).astype(np.float64)
    q64 = widened(rows[ROW : ROW + 1])[0].astype(np.float64)
    exact = cand @ q64 / (np.linalg.norm(cand, axis=1) * np.linalg.norm(q64))
    ids = np.sort(short)
else:  # from the float32 unit rows, as today's ranking scores them
    ids = np.sort(short)
    exact = unit[ids].astype(np.float64) @ unit[ROW].astype(np.float64)
order = np.lexsort((ids, -exact))[:TOP]
print(json.dumps(sorted(ids[order].tolist())))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="llama3", choices=list(sizes.SHAPES))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import numpy as np

    folder = sizes.ensure_checkpoint(args.size)
    cache = sizes.OUT / "cache-16"
    env = bench._env(cache)
    env["PYTHONPATH"] = str(bench.ROOT / "src")
    if not list(cache.glob("*/matrix.npy")):
        bench.run([sys.executable, "-m", "tokneigh", "cache", "build", "--model", str(folder)], env)
    matrix = next(cache.glob("*/matrix.npy"))
    norms = matrix.parent / "norms.npy"
    half = sizes.OUT / f"{args.size}-unit-f16.npy"
    if not half.exists():
        unit = np.load(matrix, mmap_mode="r")
        out = np.lib.format.open_memmap(half, "w+", np.float16, unit.shape)
        for start in range(0, len(unit), 16384):
            out[start : start + 16384] = unit[start : start + 16384]
        out.flush()
        del out
    source = folder / "model.safetensors"

    def cmd(kind: str) -> list[str]:
        return [sys.executable, "-c", _QUERY, kind, str(matrix), str(norms), str(source), str(half)]

    kinds = {
        "float32 unit rows": "float32",
        "bf16 model rows": "bf16",
        "float16 unit rows": "float16",
        "numpy floor": "floor",
    }
    answers = {k: bench.run(cmd(k), env, capture=True).stdout for k in kinds.values()}
    contenders = {name: (lambda k=k: sizes.measured(cmd(k), env)[0]) for name, k in kinds.items()}
    series = bench.interleave(args.rounds, contenders)
    disk = {"float32": matrix.stat().st_size, "bf16": source.stat().st_size,
            "float16": half.stat().st_size, "floor": matrix.stat().st_size}
    floor = series["numpy floor"].median
    print(f"\n{args.size}, {args.rounds} rounds, load {bench.load_average()}\n")
    print("| rows | seconds | x floor | rows on disk | top 20 = float32's |")
    print("|---|---:|---:|---:|---|")
    for name, kind in kinds.items():
        same = "-" if kind == "floor" else str(answers[kind] == answers["float32"])
        print(f"| {name} | {series[name].median:.3f} | {series[name].median / floor:.2f} "
              f"| {disk[kind] / 1e9:.2f} GB | {same} |")


if __name__ == "__main__":
    main()
