"""The shell's piped batches: 1,000 queries piped into `tokneigh shell --format json` against
the same 1,000 as arguments of one `tokneigh neighbors --format json` call.

Target (issue 9): piped lines cost at most 2x the arguments. Runs are interleaved in one
session on the GPT-2-sized benchmark checkpoint of bench.py; medians and their ratio.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python benchmarks/shell_batch.py [--rounds N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (  # noqa: E402
    CACHE,
    CHECKPOINT,
    MANY,
    _env,
    ensure_checkpoint,
    interleave,
    single_token_words,
    tokneigh_command,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ensure_checkpoint()
    env = _env(CACHE)
    cmd = tokneigh_command()
    words = single_token_words(MANY)
    model = ["--model", str(CHECKPOINT)]
    subprocess.run([*cmd, "cache", "build", *model], env=env, check=True, capture_output=True)
    piped_input = ("\n".join(words) + "\n").encode()

    def as_arguments() -> float:
        started = time.perf_counter()
        out = subprocess.run(
            [*cmd, "neighbors", *words, "--top", "10", "-f", "json", *model],
            env=env, check=True, capture_output=True,
        ).stdout
        assert out.count(b'"query":') == MANY
        return time.perf_counter() - started

    def piped() -> float:
        started = time.perf_counter()
        out = subprocess.run(
            [*cmd, "shell", "--top", "10", "-f", "json", *model],
            input=piped_input, env=env, check=True, capture_output=True,
        ).stdout
        assert out.count(b"\n") == MANY
        return time.perf_counter() - started

    series = interleave(args.rounds, {"arguments": as_arguments, "piped": piped})
    a, p = series["arguments"].median, series["piped"].median
    ratio = p / a
    print(f"1,000 queries as arguments of one neighbors call: {a * 1000:.0f} ms (median)")
    print(f"1,000 queries piped into the shell:               {p * 1000:.0f} ms (median)")
    print(f"ratio piped / arguments: {ratio:.2f}x (target <= 2x): "
          f"{'PASS' if ratio <= 2 else 'FAIL'}")
    sys.exit(0 if ratio <= 2 else 1)


if __name__ == "__main__":
    main()
