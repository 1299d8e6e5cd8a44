"""First use and warm query at today's model sizes, against their floors (issue 24).

    python benchmarks/sizes.py                         # GPT-2 and Llama-3 sizes, 3 rounds
    python benchmarks/sizes.py --sizes gpt2 llama3 gemma3 --rounds 2
    python benchmarks/sizes.py --against /work/main    # and another checkout, interleaved

Makes (once, under benchmarks/out/sizes/, never committed) bf16 safetensors checkpoints shaped
like three models' input embeddings, random low-rank-plus-noise rows (as trained embeddings
are: a few strong directions and noise), with GPT-2's real tokenizer padded with synthetic
vocabulary entries to the row count:

  gpt2    50,257 x 768     ( 77 MB bf16, 154 MB float32)
  llama3  128,256 x 4,096  (1.05 GB bf16, 2.1 GB float32)
  gemma3  262,144 x 3,840  (2.0 GB bf16, 4.0 GB float32)

and measures, each a whole process, round after round interleaved with its floor:

  first use   `tokneigh neighbors Mike --top 20` on an empty cache, against the I/O floor: a
              process that reads the source tensor once and writes a file the size of the
              cached matrix once, fsync included;
  warm query  the same command on the built cache, against the memory floor: a process that
              starts Python, imports numpy and makes one matrix-vector product over the
              memory-mapped cached matrix (one pass of numpy over it);
  peak RSS    of each first use and warm query (wait4's ru_maxrss of the process alone),
              against the float32 matrix's size.

With --against, the other checkout's first use and warm query run in the same rounds (each
checkout from its own src through PYTHONPATH, this interpreter). Prints a Markdown table of
medians. Targets (issue 24): first use at most 2x its floor and at most 1.25x the matrix in
peak RSS; the warm query at Llama-3 size at most 1.3x its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (this folder's helpers: runs, interleaving, machine facts)

OUT = bench.OUT / "sizes"
SHAPES = {
    "gpt2": (50_257, 768, "gpt2", "wte.weight"),
    "llama3": (128_256, 4_096, "llama", "model.embed_tokens.weight"),
    "gemma3": (262_144, 3_840, "gemma3_text", "model.embed_tokens.weight"),
}
RANK = 64  # the low-rank part of each row
BLOCK = 8192  # rows generated (and read, and written by the floors) at a time


# --- the checkpoints ------------------------------------------------------------------------


def ensure_checkpoint(size: str) -> Path:
    rows, dim, model_type, tensor = SHAPES[size]
    folder = OUT / size
    if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    import numpy as np

    print(f"writing a {rows:,} x {dim:,} bf16 checkpoint in {folder} ...", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text(padded_gpt2_tokenizer(rows), encoding="utf-8")
    config = {
        "model_type": model_type,
        "architectures": ["CausalLM"],
        "vocab_size": rows,
        "hidden_size": dim,
        "tie_word_embeddings": True,
    }
    (folder / "config.json").write_text(json.dumps(config))
    # safetensors by hand, a block of rows at a time: the whole float32 matrix never exists.
    header = {
        "__metadata__": {"format": "pt"},
        tensor: {"dtype": "BF16", "shape": [rows, dim], "data_offsets": [0, rows * dim * 2]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((RANK, dim), dtype=np.float32) / RANK**0.5  # stays float32
    with open(folder / "model.safetensors.part", "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for start in range(0, rows, BLOCK):
            count = min(BLOCK, rows - start)
            block = rng.standard_normal((count, RANK), dtype=np.float32) @ basis
            block += 0.5 * rng.standard_normal((count, dim), dtype=np.float32)
            block *= 0.02
            assert block.dtype == np.float32
            # bfloat16: the top half of each float32, rounded to nearest even.
            bits = block.view(np.uint32)
            bits += 0x7FFF + ((bits >> 16) & 1)
            handle.write((bits >> 16).astype("<u2").tobytes())
    os.replace(folder / "model.safetensors.part", folder / "model.safetensors")
    return folder


def padded_gpt2_tokenizer(rows: int) -> str:
    """GPT-2's real tokenizer, its vocabulary padded with synthetic entries to ``rows`` ids
    (entries no merge produces, as a larger model's own tokens would be to GPT-2's merges)."""
    sys.path.insert(0, str(bench.ROOT / "tests"))
    from checkpoints import gpt2_tokenizer

    data = json.loads(gpt2_tokenizer().backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    taken = len(vocab) + len(data.get("added_tokens", []))
    for i in range(taken, rows):
        vocab[f"Ġsynthetic{i}"] = i
    return json.dumps(data, ensure_ascii=False)


# --- the floors -----------------------------------------------------------------------------

_IO_FLOOR = """
import json, os, sys
path, out = sys.argv[1], sys.argv[2]
block = 16 << 20
with open(path, "rb", buffering=0) as handle:
    length = int.from_bytes(handle.read(8), "little")
    header = json.loads(handle.read(length))
    (entry,) = [v for k, v in header.items() if k != "__metadata__"]
    begin, end = entry["data_offsets"]
    rows, dim = entry["shape"]
    handle.seek(8 + length + begin)
    buffer = bytearray(block)
    left = end - begin
    while left:
        got = handle.readinto(memoryview(buffer)[: min(block, left)])
        left -= got
zeros = bytes(block)
with open(out, "wb") as handle:
    left = rows * dim * 4
    while left:
        left -= handle.write(zeros[: min(block, left)])
    handle.flush()
    os.fsync(handle.fileno())
os.unlink(out)
"""

_MEMORY_FLOOR = """
import sys
import numpy as np
matrix = np.load(sys.argv[1], mmap_mode="r")
(matrix @ matrix[1000]).argmax()
"""

# Runs a command and prints its wall time and its own peak RSS: a small parent, so that the
# child's peak counts no page shared with a large one (bench.peak_rss's reason).
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]  # the child's stdout
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
print(wall, usage.ru_maxrss * 1024 if os.waitstatus_to_exitcode(status) == 0 else -1)
"""


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of ``cmd``, run from a small launcher."""
    out = bench.run([sys.executable, "-S", "-c", _LAUNCHER, *cmd], env, capture=True).stdout
    wall, rss = out.split()
    if int(rss) < 0:
        raise SystemExit(f"command failed: {' '.join(cmd)[:200]}")
    return float(wall), int(rss)


# --- the run --------------------------------------------------------------------------------


def measure(size: str, checkouts: dict[str, Path], rounds: int, warm_rounds: int) -> tuple:
    """One size: first use against the I/O floor, then the warm query against the memory floor."""
    folder = ensure_checkpoint(size)
    rows, dim = SHAPES[size][:2]
    query = ["neighbors", bench.WORD, "--top", str(bench.TOP), "--model", str(folder)]

    def tokneigh(name: str, cache: Path) -> tuple[float, int]:
        env = bench._env(cache)
        env["PYTHONPATH"] = str(checkouts[name])
        return measured([sys.executable, "-m", "tokneigh", *query], env)

    def cold(name: str) -> tuple[float, int]:
        root = OUT / f"cold-{name}"
        shutil.rmtree(root, ignore_errors=True)
        try:
            return tokneigh(name, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    source = str(folder / "model.safetensors")
    io_floor = [sys.executable, "-c", _IO_FLOOR, source, str(OUT / "io-floor.tmp")]
    contenders = {f"first use ({n})": (lambda n=n: cold(n)) for n in checkouts}
    contenders["I/O floor"] = lambda: measured(io_floor, bench._env(OUT / "none"))
    print(f"{size}: first use, {rounds} rounds ...", file=sys.stderr)
    first = _interleave(rounds, contenders)

    warm_roots = {n: OUT / f"warm-{n}-{size}" for n in checkouts}
    for name, root in warm_roots.items():
        shutil.rmtree(root, ignore_errors=True)
        tokneigh(name, root)  # builds the entry
        tokneigh(name, root)  # and warms the page cache and the bytecode
    matrices = {n: next(root.glob("*/matrix.npy")) for n, root in warm_roots.items()}
    # Both checkouts' caches, byte for byte (the meta differs: its creation time).
    same = {n: _same_files(matrices["this"].parent, m.parent) for n, m in matrices.items()}
    memory_floor = [sys.executable, "-c", _MEMORY_FLOOR, str(matrices["this"])]
    contenders = {f"warm query ({n})": (lambda n=n: tokneigh(n, warm_roots[n])) for n in checkouts}
    contenders["memory floor"] = lambda: measured(memory_floor, bench._env(OUT / "none"))
    print(f"{size}: warm query, {warm_rounds} rounds ...", file=sys.stderr)
    warm = _interleave(warm_rounds, contenders)
    for root in warm_roots.values():
        shutil.rmtree(root, ignore_errors=True)
    print(f"{size}: matrix.npy and norms.npy equal to this checkout's: {same}", file=sys.stderr)
    return size, rows, dim, rows * dim * 4, first, warm


def _same_files(a: Path, b: Path) -> bool:
    import filecmp

    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in ("matrix.npy", "norms.npy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["gpt2", "llama3"], choices=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another checkout, measured alongside")
    args = parser.parse_args()

    checkouts = {"this": bench.ROOT / "src"}
    if args.against:
        checkouts["other"] = args.against.resolve() / "src"
    print(f"load at start: {bench.load_average()}", file=sys.stderr)
    results = [measure(size, checkouts, args.rounds, args.warm_rounds) for size in args.sizes]
    print(f"\nload at end: {bench.load_average()}; {json.dumps(bench.machine())}\n")
    print("| size | measure | seconds | x floor | peak RSS | x float32 matrix |")
    print("|---|---|---:|---:|---:|---:|")
    for size, rows, dim, matrix_bytes, first, warm in results:
        for series, floor_name in ((first, "I/O floor"), (warm, "memory floor")):
            floor = statistics.median(w for w, _ in series[floor_name])
            for name, samples in series.items():
                wall = statistics.median(w for w, _ in samples)
                rss = max(r for _, r in samples)
                print(
                    f"| {size} {rows:,} x {dim:,} | {name} | {wall:.2f} | {wall / floor:.2f} "
                    f"| {rss / 1e6:,.0f} MB | {rss / matrix_bytes:.2f} |"
                )


def _interleave(rounds: int, contenders: dict) -> dict[str, list[tuple[float, int]]]:
    """A, B, C, then C, B, A, ...: no contender always runs right after the same one."""
    series: dict[str, list[tuple[float, int]]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            series[name].append(contenders[name]())
            time.sleep(0.5)
    return series


if __name__ == "__main__":
    main()
