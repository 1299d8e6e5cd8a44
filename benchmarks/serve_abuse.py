"""`tokneigh serve` under abuse (issue #20), on the GPT-2-sized matrix (50,257 x 768), over
loopback only:

    python benchmarks/serve_abuse.py             # about 2 minutes
    python benchmarks/serve_abuse.py --quick     # shorter phases (about 1 minute)

Starts `tokneigh serve --metric cosine` on the checkpoint bench.py builds (benchmarks/out/),
then a victim client asks cheap neighbour queries (k=10, one connection, in a loop) through
each scenario, and its latency is reported beside its quiet figures:

  quiet        the victim alone;
  abandoned    300 /api/map requests (k=200) sent on 300 connections and dropped at once,
               then the victim (its first answer after the burst is shown too);
  heavy        8 clients looping: 4 on /api/map (k=200), 4 on /api/neighbors (k=1000);
  idle         200 connections that send nothing and 200 that send half a header, held open;
               how many the server has closed by the end of the phase is shown;
  again        the abandoned burst and the heavy clients once more, for the memory check.

The server's RSS (from /proc) is read before and after each scenario. Goal: with the 8 heavy
clients, the victim's p99 at most 5x its quiet p99, and RSS flat: the second round of burst
and heavy clients (the first has allocated what they need) grows it by less than 2 MB.
Exits 1 if the victim got an error (a 503 or a dropped connection counts).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CACHE, CHECKPOINT, _env, ensure_checkpoint, load_average, machine  # noqa: E402

VICTIM_K = 10
HEAVY = 8
BURST = 300
IDLE = 200


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def words(count: int) -> list[str]:
    """``count`` common English words that are one GPT-2 token each (seeded choice)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(CHECKPOINT / "tokenizer.json"))
    found = []
    for i in range(tokenizer.get_vocab_size()):
        token = tokenizer.id_to_token(i)
        if token.isascii() and token.isalpha() and len(token) >= 4:
            found.append(token)
    rng = random.Random(20)
    return rng.sample(found, count)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


class Victim:
    """Cheap neighbour queries in a loop on one connection, until ``stop`` is set."""

    def __init__(self, base: str, vocabulary: list[str]) -> None:
        self.base, self.vocabulary = base, vocabulary
        self.latencies: list[float] = []
        self.errors = 0

    async def run(self, stop: asyncio.Event, first: list[float] | None = None) -> None:
        import aiohttp

        rng = random.Random(7)
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while not stop.is_set():
                params = {"q": rng.choice(self.vocabulary), "k": str(VICTIM_K)}
                start = time.perf_counter()
                try:
                    async with session.get(self.base + "api/neighbors", params=params) as r:
                        await r.read()
                        ok = r.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                took = time.perf_counter() - start
                self.latencies.append(took)
                if first is not None and not first:
                    first.append(took)
                self.errors += not ok


async def heavy_client(base: str, number: int, vocabulary: list[str], stop: asyncio.Event) -> int:
    """Map (k=200) or neighbours (k=1000) in a loop; returns how many it was answered."""
    import aiohttp

    rng = random.Random(100 + number)
    path, k = ("api/map", 200) if number % 2 == 0 else ("api/neighbors", 1000)
    done = 0
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            params = {"q": rng.choice(vocabulary), "k": str(k)}
            try:
                async with session.get(base + path, params=params) as response:
                    await response.read()
                    done += response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
    return done


async def abandoned_burst(host: str, port: int, vocabulary: list[str]) -> None:
    """BURST map requests, each on its own connection, closed as soon as it is sent."""
    rng = random.Random(3)

    async def one() -> None:
        _, writer = await asyncio.open_connection(host, port)
        q = quote(rng.choice(vocabulary))
        writer.write(f"GET /api/map?q={q}&k=200 HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    await asyncio.gather(*(one() for _ in range(BURST)))


def idle_connections(host: str, port: int) -> list[socket.socket]:
    """IDLE connections that send nothing and IDLE that send half a header."""
    held = []
    for half in (False, True):
        for _ in range(IDLE):
            sock = socket.create_connection((host, port), timeout=5)
            if half:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
    return held


def closed_by_server(held: list[socket.socket]) -> int:
    closed = 0
    for sock in held:
        sock.setblocking(False)
        try:
            closed += sock.recv(4096) == b""  # EOF: the server closed it
        except BlockingIOError:
            pass  # still open
        except OSError:
            closed += 1  # reset by the server
        sock.close()
    return closed


async def phase(
    victim: Victim, seconds: float, load: Callable[[asyncio.Event], Awaitable[object]] | None
) -> tuple[list[float], int, object]:
    """The victim's latencies (and errors) while ``load`` runs for ``seconds``."""
    victim.latencies, victim.errors = [], 0
    stop = asyncio.Event()
    first: list[float] = []
    task = asyncio.ensure_future(victim.run(stop, first))
    extra = asyncio.ensure_future(load(stop)) if load is not None else None
    await asyncio.sleep(seconds)
    stop.set()
    await task
    result = await extra if extra is not None else None
    return victim.latencies, victim.errors, (first, result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases")
    args = parser.parse_args()
    seconds = 6.0 if args.quick else 15.0

    ensure_checkpoint()
    env = _env(CACHE)
    vocabulary = words(300)
    warm = subprocess.run(
        [sys.executable, "-m", "tokneigh", "neighbors", "the", "--model", str(CHECKPOINT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip  (builds the cache entry on a first run, outside the measured time)
    if warm.returncode != 0:
        raise SystemExit(f"tokneigh neighbors failed: {warm.stderr}")
    server = subprocess.Popen(
        [sys.executable, "-m", "tokneigh", "serve", "--model", str(CHECKPOINT), "--port", "0",
         "--metric", "cosine"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    rows: list[tuple[str, list[float], int, float, float, str]] = []
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the server did not start (printed {base!r})")
        host, port = "127.0.0.1", int(base.rsplit(":", 1)[1].rstrip("/"))
        victim = Victim(base, vocabulary)

        def measured(name: str, load, note=lambda extra: "") -> None:  # noqa: ANN001
            before = rss_mb(server.pid)
            latencies, errors, extra = asyncio.run(phase(victim, seconds, load))
            rows.append((name, latencies, errors, before, rss_mb(server.pid), note(extra)))

        asyncio.run(phase(victim, 2.0, None))  # warm up: pages, score buffers, connections
        measured("quiet", None)

        async def burst(stop: asyncio.Event) -> None:
            await abandoned_burst(host, port, vocabulary)

        measured(
            f"abandoned burst ({BURST} map requests dropped)",
            burst,
            lambda extra: (
                f"first answer after the burst {extra[0][0] * 1000:.0f} ms" if extra[0] else ""
            ),
        )

        async def heavy(stop: asyncio.Event) -> int:
            done = await asyncio.gather(
                *(heavy_client(base, i, vocabulary, stop) for i in range(HEAVY))
            )
            return sum(done)

        measured(
            f"{HEAVY} heavy clients looping (map k=200, neighbors k=1000)",
            heavy,
            lambda extra: f"heavy answers: {extra[1]:,}",
        )

        async def idle(stop: asyncio.Event) -> int:
            held = await asyncio.to_thread(idle_connections, host, port)
            await stop.wait()
            return closed_by_server(held)

        measured(
            f"{IDLE} idle + {IDLE} half-header connections",
            idle,
            lambda extra: f"closed by the server within {seconds:.0f} s: {extra[1]} of {2 * IDLE}",
        )
        measured(f"again: abandoned burst ({BURST} map requests dropped)", burst)
        measured(f"again: {HEAVY} heavy clients looping", heavy)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    quiet_p99 = percentile(rows[0][1], 0.99)
    print(f"# tokneigh serve under abuse ({'quick' if args.quick else 'full'} run)\n")
    for key, value in machine().items():
        print(f"- {key}: {value}")
    print(f"- load average after: {load_average()}")
    print(f"- victim: /api/neighbors k={VICTIM_K}, one connection, {seconds:.0f} s a scenario\n")
    print(
        "| scenario | victim answers | p50 | p99 | p99 / quiet p99 | errors | RSS before → "
        "after | |\n|---|---:|---:|---:|---:|---:|---|---|"
    )
    failed = False
    for name, latencies, errors, before, after, note in rows:
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        failed |= errors > 0
        print(
            f"| {name} | {len(latencies):,} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms | "
            f"{p99 / quiet_p99:.1f}x | {errors} | {before:,.0f} → {after:,.0f} MB | {note} |"
        )
    heavy_row = rows[2]
    ratio = percentile(heavy_row[1], 0.99) / quiet_p99
    growth = rows[-1][4] - rows[-2][3]  # over the second burst and heavy round
    print(
        f"\ngoal: heavy p99 ≤ 5x quiet p99: {ratio:.1f}x ({'pass' if ratio <= 5 else 'FAIL'}); "
        f"RSS over the second burst and heavy round: {growth:+.1f} MB "
        f"({'flat' if growth < 2 else 'GROWS'}; {rows[0][3]:,.0f} MB at the start)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
