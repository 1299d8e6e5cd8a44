"""`tokneigh serve` under load (issue #14), on the GPT-2-sized matrix (50,257 x 768), over
loopback:

    python benchmarks/serve_load.py              # 1 client x 1,000 queries, 16 clients x 20 s
    python benchmarks/serve_load.py --quick      # 300 queries, 16 clients x 5 s

Starts `tokneigh serve --metric cosine` on the checkpoint bench.py builds (benchmarks/out/),
then measures with aiohttp clients in this process:

  (1) one client in a loop: the latency of each /api/neighbors answer (p50, p90, p99);
  (2) 16 concurrent clients for 20 s: answers per second, p50/p99 latency, errors;

with varied queries (single-token words, multi-token words and token ids, drawn in a seeded
order). Every answer is checked against the CLI's JSON for the same query (`tokneigh
neighbors ... --format json`, one run for all of them), the server's RSS is sampled every
0.2 s, and the server's /api/health says how many queries each matrix product answered.
Memory is flat when the RSS at the end is within 2 MB of the RSS 2 s into the 16 clients' run
(once batches of 16 have allocated their score buffers).
Exits with status 1 if an answer differs from the CLI's or a request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CACHE, CHECKPOINT, _env, ensure_checkpoint, load_average, machine  # noqa: E402

TOP = 20
CLIENTS = 16


def queries(count: int) -> list[str]:
    """``count`` varied queries: words of one and of several tokens, and ``#id`` queries."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
    rng = random.Random(14)
    single, multi = [], []
    for i in rng.sample(range(tokenizer.get_vocab_size()), 20_000):
        word = tokenizer.decode([i])
        if not word.strip().isalpha() or not word.isascii():
            continue
        ids = tokenizer.encode(word, add_special_tokens=False).ids
        (single if ids == [i] else multi).append(word)
    out = single[: count // 2] + [w + w[::-1] for w in single[count // 2 : count // 2 + count // 4]]
    out += [f"#{i}" for i in rng.sample(range(tokenizer.get_vocab_size() - 1), count - len(out))]
    rng.shuffle(out)
    return out


def cli_answers(words: list[str], env: dict[str, str]) -> dict[str, object]:
    """The CLI's JSON object for each query (one `neighbors` run for all of them)."""
    texts = [w for w in words if not w.startswith("#")]
    ids = [w[1:] for w in words if w.startswith("#")]
    cmd = [sys.executable, "-m", "tokneigh", "neighbors", *texts, "--top", str(TOP)]
    cmd += [arg for i in ids for arg in ("--id", i)]
    cmd += ["--model", str(CHECKPOINT), "--format", "json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    lists = json.loads(out)
    return dict(zip(texts + [f"#{i}" for i in ids], lists))


class Memory:
    """The server's resident set size, sampled every 0.2 s on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.samples.append((time.perf_counter(), self.rss_mb()))

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def one_client(url: str, words: list[str]) -> tuple[list[float], dict[str, set[bytes]], int]:
    import aiohttp

    latencies, answers, errors = [], {}, 0
    async with aiohttp.ClientSession() as session:
        for word in words:
            start = time.perf_counter()
            async with session.get(url, params={"q": word, "k": str(TOP)}) as response:
                body = await response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                errors += 1
            answers.setdefault(word, set()).add(body)
    return latencies, answers, errors


async def many_clients(
    url: str, words: list[str], seconds: float
) -> tuple[list[float], dict[str, set[bytes]], int, float]:
    import aiohttp

    latencies: list[float] = []
    answers: dict[str, set[bytes]] = {}
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        rng = random.Random(number)
        while time.perf_counter() < deadline:
            word = rng.choice(words)
            start = time.perf_counter()
            try:
                async with session.get(url, params={"q": word, "k": str(TOP)}) as response:
                    body = await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok, body = False, b""
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors += 1
            answers.setdefault(word, set()).add(body)

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(i, session) for i in range(CLIENTS)))
        elapsed = time.perf_counter() - began
    return latencies, answers, errors, elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def mismatches(answers: dict[str, set[bytes]], expected: dict[str, object]) -> int:
    wrong = 0
    for word, bodies in answers.items():
        for body in bodies:
            try:
                if json.loads(body) != expected[word]:
                    wrong += 1
            except ValueError:
                wrong += 1
    return wrong


def health(base: str) -> dict[str, object]:
    from urllib.request import urlopen

    with urlopen(base + "api/health") as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    args = parser.parse_args()
    single_count, seconds = (300, 5.0) if args.quick else (1000, 20.0)

    ensure_checkpoint()
    env = _env(CACHE)
    words = queries(400)
    expected = cli_answers(words, env)  # also builds the cache entry on a first run
    server = subprocess.Popen(
        [sys.executable, "-m", "tokneigh", "serve", "--model", str(CHECKPOINT), "--port", "0",
         "--metric", "cosine"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        if not base.startswith("http://"):
            raise SystemExit(f"the server did not start (printed {base!r})")
        url = base + "api/neighbors"
        with Memory(server.pid) as memory:
            start_mb = memory.rss_mb()
            rng = random.Random(1)
            loop_words = [rng.choice(words) for _ in range(single_count)]
            one = asyncio.run(one_client(url, loop_words))
            warm_mb = memory.rss_mb()
            before = health(base)["batching"]
            began = time.perf_counter()
            many = asyncio.run(many_clients(url, words, seconds))
            after = health(base)["batching"]
            end_mb = memory.rss_mb()
        samples = [mb for _, mb in memory.samples]
        # The first batches of 16 allocate their score buffers: memory is flat from then on.
        settled = [mb for t, mb in memory.samples if t >= began + 2.0]
        settled_mb = settled[0] if settled else end_mb
    finally:
        server.terminate()
        server.wait(timeout=30)

    lat1, answers1, errors1 = one
    lat16, answers16, errors16, elapsed = many
    wrong = mismatches(answers1, expected) + mismatches(answers16, expected)
    rate = len(lat16) / elapsed
    products = after["products"] - before["products"]  # type: ignore[index, operator]
    batched = after["queries"] - before["queries"]  # type: ignore[index, operator]
    ms = 1000.0
    rows = [
        ("one client: p50 per answer", f"{percentile(lat1, 0.5) * ms:.2f} ms", "≤ 10 ms",
         percentile(lat1, 0.5) <= 0.010),
        ("one client: p90 / p99", f"{percentile(lat1, 0.9) * ms:.2f} / "
         f"{percentile(lat1, 0.99) * ms:.2f} ms", "", None),
        (f"{CLIENTS} clients: answers per second ({elapsed:.1f} s)", f"{rate:,.0f}", "≥ 300",
         rate >= 300),
        (f"{CLIENTS} clients: p50 / p99", f"{percentile(lat16, 0.5) * ms:.1f} / "
         f"{percentile(lat16, 0.99) * ms:.1f} ms", "p99 ≤ 150 ms",
         percentile(lat16, 0.99) <= 0.150),
        ("errors (both runs)", f"{errors1 + errors16}", "0", errors1 + errors16 == 0),
        ("answers unlike the CLI's", f"{wrong} of {len(lat1) + len(lat16):,}", "0", wrong == 0),
        (f"{CLIENTS} clients: queries per matrix product", f"{batched / max(products, 1):.1f} "
         f"({batched:,} in {products:,})", "", None),
        ("server RSS: started / after one client / 2 s into 16 clients / max / end",
         f"{start_mb:,.0f} / {warm_mb:,.0f} / {settled_mb:,.0f} / "
         f"{max(samples, default=end_mb):,.0f} / {end_mb:,.0f} MB", "flat",
         end_mb - settled_mb < 2),
    ]  # fmt: skip
    print(f"# tokneigh serve under load ({'quick' if args.quick else 'full'} run)\n")
    for key, value in machine().items():
        print(f"- {key}: {value}")
    print(f"- load average after: {load_average()}\n")
    print("| measure | result | target | |\n|---|---:|---|---|")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("pass" if ok else "FAIL")
        print(f"| {name} | {value} | {target} | {mark} |")
    return 0 if wrong == 0 and errors1 + errors16 == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
