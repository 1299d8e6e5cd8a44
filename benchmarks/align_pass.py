"""`tokneigh align` on a GPT-2-sized pair, timed as a whole process (issue 23: at most 30 s with
the default refinement).

A is bench.py's checkpoint (GPT-2's real tokenizer, random 50,257 x 768 weights). B is A turned
by a seeded random rotation, with Gaussian noise (a tenth of a row's typical coordinate) on every
row and 200 seeded tokens replaced by fresh random rows: "retrained" tokens, which the drift
ranking should put first. Both entries are cached first (their build is not what is timed);
the map is then computed (timed), and read back from the cache (timed again). Wall and CPU
seconds of each process are printed: BLAS uses both cores, so on an idle two-core machine the
wall time is about half the CPU time.

    .venv/bin/python benchmarks/align_pass.py [--refine 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
from bench import CHECKPOINT, OUT, ROOT, ensure_checkpoint

ROTATED = OUT / "gpt2-768-rotated"
CACHE = OUT / "cache-align"
CHANGED = 200


def make_rotated() -> np.ndarray:
    """B's checkpoint (built once); the ids of the tokens replaced."""
    from safetensors.numpy import load_file

    rng = np.random.default_rng(23)
    weights = load_file(str(CHECKPOINT / "model.safetensors"))["wte.weight"].astype(np.float32)
    changed = np.sort(rng.choice(weights.shape[0], CHANGED, replace=False))
    if not (ROTATED / "model.safetensors").is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        from checkpoints import write_tied_gpt2
        from tokenizers import Tokenizer

        q, r = np.linalg.qr(rng.standard_normal((weights.shape[1], weights.shape[1])))
        rotation = q * np.sign(np.diag(r))
        scale = float(np.linalg.norm(weights, axis=1).mean() / np.sqrt(weights.shape[1]))
        rows = weights @ rotation + 0.1 * scale * rng.standard_normal(weights.shape)
        rows[changed] = scale * rng.standard_normal((CHANGED, weights.shape[1]))
        shutil.rmtree(ROTATED, ignore_errors=True)
        tokenizer = Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
        write_tied_gpt2(ROTATED, tokenizer, rows.astype(np.float32))
    return changed


def tokneigh(*args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds of the process, what it wrote): CPU time too, because on a
    shared machine the wall clock mostly measures the other processes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tokneigh", *args, "--cache-dir", str(CACHE)],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return seconds, cpu, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refine", type=int, default=1)
    options = parser.parse_args()
    ensure_checkpoint()
    changed = make_rotated()
    for folder in (CHECKPOINT, ROTATED):  # the entries: built once, not timed
        tokneigh("neighbors", "king", "--model", str(folder))
    for entry in CACHE.glob("*/align-*.npz"):
        entry.unlink()  # the map itself is what is timed
    args = ["align", "--model", str(CHECKPOINT), "--against", str(ROTATED)]
    args += ["--refine", str(options.refine), "--top", "200", "--format", "json"]
    first, first_cpu, done = tokneigh(*args)
    second, second_cpu, _ = tokneigh(*args)
    data = json.loads(done.stdout)
    top = [d["id_a"] for d in data["drift"]]
    found = len(set(top) & set(changed.tolist()))
    print(
        json.dumps(
            {
                "align_seconds": round(first, 1),
                "align_cpu_seconds": round(first_cpu, 1),
                "align_cached_seconds": round(second, 1),
                "align_cached_cpu_seconds": round(second_cpu, 1),
                "refine": options.refine,
                "matching": data["matching"],
                "map": data["map"],
                "split": data["split"],
                "retrieval": data["retrieval"],
                "mean_cosine": data["mean_cosine"],
                "residual": data["residual"],
                "replaced_tokens_in_top_200_drift": f"{found}/{CHANGED}",
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
