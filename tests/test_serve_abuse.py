"""`tokneigh serve` under abuse (issue 20): a request that hits a bug fails alone and the worker
lives on; other hosts and other sites are refused; abandoned requests are dropped, the queue is
bounded and fair; silent connections are closed; one resident copy of the unit matrix.

In-process against all-MiniLM-L6-v2 (cosine only), with real uvicorn on 127.0.0.1 where sockets
matter. Every wait is bounded: a hang fails the test instead of stopping the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

SHARED_CACHE = True
WAIT = 20.0  # seconds any one answer may take before the test calls it a hang


@pytest.fixture(scope="module")
def served(minilm_dir: Path, module_cache: Path):
    from tokneigh.api import loading as api
    from tokneigh.web.app import Served

    emb = api.load(str(minilm_dir), cache_dir=module_cache, report=lambda _: None)
    return Served({"cosine": emb.resident()})


def _answer(client, path: str, params: dict[str, str] | None = None, **kw):
    """``client.get`` on a thread, or a failure after WAIT seconds (a hung worker)."""
    out: list = []
    thread = threading.Thread(
        target=lambda: out.append(client.get(path, params=params, **kw)), daemon=True
    )
    thread.start()
    thread.join(WAIT)
    if not out:
        pytest.fail(f"GET {path} {params} got no answer within {WAIT:.0f} s")
    return out[0]


def _one_line_error(response, status: int, says: str = "") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"], body
    assert "Traceback" not in response.text and says in body["error"], body
    return body["error"]


# --- case 1: a bug in model work fails that request alone ----------------------------------


@pytest.fixture
def buggy(served, monkeypatch: pytest.MonkeyPatch):
    """The tokenizer raises a plain Exception for "zzz" (as a GGUF BERT without an unknown
    token does for text it cannot split)."""
    codec = served.default.codec
    encode = codec.encode

    def broken(text: str, *args, **kwargs):
        if "zzz" in text:
            raise Exception("no token for 'zzz'")  # noqa: TRY002 - a plain Exception, on purpose
        return encode(text, *args, **kwargs)

    monkeypatch.setattr(codec, "encode", broken)
    return served


def test_a_bug_in_model_work_fails_that_request_alone(buggy):
    from starlette.testclient import TestClient

    from tokneigh.web.app import create_app
    from tokneigh.web.worker import Worker

    worker = Worker(buggy.spaces)
    try:
        with TestClient(create_app(buggy, worker), base_url="http://127.0.0.1:8000") as client:
            for path, params in [
                ("/api/neighbors", {"q": "zzz"}),
                ("/api/tokenize", {"q": "zzz"}),
                ("/api/compare", {"a": "zzz", "b": "king"}),
                ("/api/map", {"q": "zzz"}),
            ]:
                said = _one_line_error(_answer(client, path, params), 500, "internal error")
                assert "no token for 'zzz'" in said
            # The worker lives on: the same and other requests are answered as before.
            first = _answer(client, "/api/neighbors", {"q": "#0", "k": "3"})
            assert first.status_code == 200 and len(first.json()["neighbors"]) == 3
            king = _answer(client, "/api/neighbors", {"q": "king", "k": "3"})
            assert king.json()["neighbors"][0]["token"] == "king"
            health = _answer(client, "/api/health")
            assert health.status_code == 200 and health.json()["ok"] is True
    finally:
        worker.close()


class _Fatal(BaseException):
    """What no job handler catches: stands for a bug in the worker's own loop."""


def test_a_dead_worker_restarts_then_reports_itself(served, monkeypatch: pytest.MonkeyPatch):
    """The worker's loop dying restarts it (the jobs it held fail alone); once it cannot be
    restarted, /api/health is 503 with ok false, requests fail at once with 503 instead of
    hanging, and the owner is told (serve stops uvicorn with an error)."""
    from starlette.testclient import TestClient

    from tokneigh.web import worker as worker_module
    from tokneigh.web.app import create_app

    real_work = worker_module.Worker._work
    breaks = {"left": 1}

    def flaky(self, jobs):
        if breaks["left"]:
            breaks["left"] -= 1
            raise _Fatal("the loop broke")
        return real_work(self, jobs)

    monkeypatch.setattr(worker_module.Worker, "_work", flaky)
    deaths: list[str] = []
    worker = worker_module.Worker(served.spaces, on_death=deaths.append)
    try:
        with TestClient(create_app(served, worker), base_url="http://localhost") as client:
            _one_line_error(_answer(client, "/api/neighbors", {"q": "king"}), 503, "worker")
            again = _answer(client, "/api/neighbors", {"q": "king", "k": "2"})
            assert again.status_code == 200 and worker.restarts == 1 and not deaths
            # Now the loop breaks every time and the restarts run out.
            breaks["left"] = 10**6
            for _ in range(worker_module.MAX_RESTARTS + 1):
                _answer(client, "/api/neighbors", {"q": "queen"})
            assert not worker.alive and len(deaths) == 1 and "the loop broke" in deaths[0]
            health = _answer(client, "/api/health")
            assert health.status_code == 503 and health.json()["ok"] is False
            _one_line_error(_answer(client, "/api/tokenize", {"q": "king"}), 503, "worker")
    finally:
        worker.close()


DYING_SERVER = """
import sys
from tokneigh.web import worker

def broken(self, jobs):
    raise SystemExit("the loop broke")  # a BaseException no job handler catches

worker.Worker._work = broken
sys.argv = ["tokneigh", *sys.argv[1:]]
from tokneigh.entry import main
main()
"""


def test_serve_exits_when_its_worker_cannot_go_on(minilm_dir, module_cache, served):
    """(``served`` has built the module's cache entry.)"""
    from urllib.error import HTTPError
    from urllib.request import urlopen

    command = [sys.executable, "-c", DYING_SERVER, "serve", "--model", str(minilm_dir)]
    command += ["--cache-dir", str(module_cache), "--port", "0", "--metric", "cosine"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        statuses = []
        for _ in range(10):  # the warm-up query already broke the loop once or more
            try:
                with urlopen(url + "api/neighbors?q=king", timeout=WAIT) as response:
                    statuses.append(response.status)
            except HTTPError as exc:
                statuses.append(exc.code)
            except OSError:
                break  # the server has gone
        _, err = server.communicate(timeout=WAIT)
    finally:
        server.kill()
    assert set(statuses) <= {503}
    assert server.returncode == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("tokneigh: error: the model worker stopped"), err
    assert "Traceback" not in err


# --- case 2: other hosts and other sites are refused ---------------------------------------


def test_other_hosts_and_other_sites_are_refused(served):
    from starlette.testclient import TestClient

    from tokneigh.web.app import create_app
    from tokneigh.web.worker import Worker

    worker = Worker(served.spaces)
    app = create_app(served, worker, hosts=["192.0.2.7", "tok.example"])

    def get(base: str, path: str = "/api/health", **headers: str):
        with TestClient(app, base_url=base) as client:
            return _answer(client, path, headers=headers)

    try:
        for base in (
            "http://localhost:8000",
            "http://127.0.0.1:1234",
            "http://[::1]:8000",
            "http://LocalHost",
            "http://192.0.2.7:8000",
            "http://tok.example:80",
        ):
            assert get(base).status_code == 200, base
        for base in (
            "http://evil.example:8000",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://192.0.2.8",
        ):
            for path in ("/api/health", "/api/vector?q=king", "/"):
                _one_line_error(get(base, path), 403, "is not allowed")
        _one_line_error(get("http://x", Host=""), 400, "Host header")
        # The page's own origin answers; any other site (or none, "null") is refused.
        same = get("http://localhost:8000", Origin="http://localhost:8000")
        assert same.status_code == 200
        for origin in (
            "http://evil.example",
            "http://localhost:9999",
            "https://localhost:8000",
            "null",
            "http://127.0.0.1:8000",
        ):
            _one_line_error(get("http://localhost:8000", Origin=origin), 403, "origin")
    finally:
        worker.close()


# --- case 3: abandoned requests, a bounded queue, fair order --------------------------------


def _blocked_worker(served, **options):
    """A Worker, and a function that blocks it in a call until the returned event is set."""
    from tokneigh.web.worker import Worker

    worker = Worker(served.spaces, **options)
    release = threading.Event()
    return worker, release


async def _hold(worker, release: threading.Event) -> asyncio.Future:
    busy = asyncio.ensure_future(worker.call(lambda: release.wait(WAIT)))
    await asyncio.sleep(0.05)  # the worker is now inside the call
    return busy


def test_jobs_whose_client_left_are_skipped(served):
    """A job whose request was cancelled (its client left) is not run; the request of a client
    that left before its job was queued queues nothing."""
    from tokneigh.analyses.filters import Filters
    from tokneigh.web.app import create_app

    worker, release = _blocked_worker(served)
    filters = Filters(skip_special=True)
    app = create_app(served, worker)

    async def scenario() -> None:
        busy = await _hold(worker, release)
        ran: list[int] = []
        dropped = [asyncio.ensure_future(worker.call(lambda i=i: ran.append(i))) for i in range(20)]
        dropped += [
            asyncio.ensure_future(worker.neighbors("cosine", w, 5, filters, False))
            for w in ["king", "queen", "river"]
        ]
        kept = asyncio.ensure_future(worker.neighbors("cosine", "paris", 5, filters, False))
        await asyncio.sleep(0.01)
        for task in dropped:
            task.cancel()

        # A request whose client has gone before its job is queued: nothing is queued.
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http", "method": "GET", "path": "/api/map", "raw_path": b"/api/map",
            "query_string": b"q=king", "headers": [(b"host", b"localhost")],
            "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5),
            "root_path": "", "http_version": "1.1",
        }  # fmt: skip
        await asyncio.wait_for(app(scope, receive, send), WAIT)
        release.set()
        await asyncio.wait_for(busy, WAIT)
        result = await asyncio.wait_for(kept, WAIT)
        assert result.neighbors[0].token == "paris"
        assert ran == [] and worker.stats.queries == 1

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        worker.close()


def test_a_full_queue_answers_503_at_once(served):
    import httpx

    from tokneigh.web.app import create_app

    worker, release = _blocked_worker(served, max_queued=4)
    app = create_app(served, worker)

    async def scenario() -> list[httpx.Response]:
        busy = await _hold(worker, release)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            waiting = [
                asyncio.ensure_future(client.get("/api/map", params={"q": w}))
                for w in ["king", "queen", "river", "paris"]
            ]
            await asyncio.sleep(0.05)
            refused = await asyncio.wait_for(
                client.get("/api/neighbors", params={"q": "dog"}), WAIT
            )
            release.set()
            await busy
            return [refused, *await asyncio.wait_for(asyncio.gather(*waiting), WAIT)]

    try:
        refused, *answered = asyncio.run(scenario())
    finally:
        release.set()
        worker.close()
    _one_line_error(refused, 503, "busy")
    assert [r.status_code for r in answered] == [200] * 4


def test_a_burst_of_costly_work_does_not_hold_back_a_cheap_query(served):
    """Jobs are taken cheapest first (by what the last of their kind took), not first come
    first served: behind 20 costly jobs queued first (as many clients' maps would be), a
    neighbour query is answered right after the job in progress; the costly ones all finish."""
    from tokneigh.analyses.filters import Filters

    worker, release = _blocked_worker(served)
    order: list[str] = []
    filters = Filters(skip_special=True)

    def costly(i: int) -> None:
        # The job the worker learns the kind's cost from is clearly costly (a neighbour query
        # on a loaded machine can take tens of milliseconds); the burst's own are short.
        time.sleep(0.3 if i < 0 else 0.02)
        order.append(f"costly{i}")

    async def scenario() -> None:
        # What each kind costs is learnt from the jobs done.
        await asyncio.wait_for(worker.call(lambda: costly(-1), "costly"), WAIT)
        await asyncio.wait_for(worker.neighbors("cosine", "dog", 5, filters, False), WAIT)
        order.clear()
        busy = await _hold(worker, release)
        burst = [worker.call(lambda i=i: costly(i), "costly") for i in range(20)]
        cheap = worker.neighbors("cosine", "king", 5, filters, False)
        cheap.add_done_callback(lambda _: order.append("cheap"))
        await asyncio.sleep(0.02)
        release.set()
        await asyncio.wait_for(asyncio.gather(busy, cheap, *burst), WAIT)

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        worker.close()
    assert len(order) == 21 and order.index("cheap") <= 1, order


# --- case 4: header and idle timeouts -------------------------------------------------------


@pytest.fixture
def live(served) -> Iterator[tuple[str, int]]:
    """The app under uvicorn as `serve` runs it, on 127.0.0.1, with 0.5 s timeouts."""
    from tokneigh.web.app import create_app
    from tokneigh.web.server import make_server
    from tokneigh.web.worker import Worker

    worker = Worker(served.spaces)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = make_server(create_app(served, worker), header_seconds=0.5, idle_seconds=0.5)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])))
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        yield listener.getsockname()
    finally:
        server.should_exit = True
        thread.join(WAIT)
        worker.close()
        listener.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (reads and drops what it sends)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if sock.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except OSError:
        return True  # reset
    return False


def test_silent_slow_and_idle_connections_are_closed(live):
    host, port = live
    silent = socket.create_connection((host, port), timeout=5)
    half = socket.create_connection((host, port), timeout=5)
    half.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    idle = socket.create_connection((host, port), timeout=5)
    idle.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert b"200 OK" in idle.recv(65536)
    # A connection that keeps trickling half a header is closed all the same.
    trickle = socket.create_connection((host, port), timeout=5)
    trickle.sendall(b"GET /api/health HTTP/1.1\r\n")
    cut = False
    for _ in range(50):  # 5 s at most
        time.sleep(0.1)
        try:
            trickle.sendall(b"X-A: b\r\n")
        except OSError:
            cut = True
            break
    assert cut or _closed_within(trickle, 1.0)
    try:
        for sock in (silent, half, idle):
            assert _closed_within(sock, 5.0)
        # The server still answers a client that sends its request.
        with socket.create_connection((host, port), timeout=5) as fresh:
            fresh.sendall(b"GET /api/neighbors?q=king&k=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert b"200 OK" in fresh.recv(65536)
    finally:
        for sock in (silent, half, idle, trickle):
            sock.close()


def test_a_long_answer_is_not_cut_by_the_header_deadline(live, served, monkeypatch):
    """The deadline is for reading the request: model work that takes longer still answers."""
    host, port = live
    codec = served.default.codec
    encode = codec.encode

    def slow(text: str, *args, **kwargs):
        time.sleep(1.2)
        return encode(text, *args, **kwargs)

    monkeypatch.setattr(codec, "encode", slow)
    with socket.create_connection((host, port), timeout=WAIT) as sock:
        sock.sendall(b"GET /api/tokenize?q=king HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)


# --- case 5: one resident copy of the unit matrix -------------------------------------------


def test_cosine_and_csls_share_one_resident_matrix(tiny_dir, module_cache):
    from tokneigh.analyses.filters import Filters
    from tokneigh.api import loading as api
    from tokneigh.cli.serve import served_spaces

    emb = api.load(str(tiny_dir), cache_dir=module_cache, report=lambda _: None)
    for metrics in (["cosine", "centered", "abtt:2", "csls:5"], ["csls:5", "cosine"]):
        spaces = served_spaces(emb, metrics, report=lambda _: None)
        cosine, csls = spaces["cosine"], spaces["csls:5"]
        assert np.shares_memory(cosine.unit, csls.unit) and cosine.unit is csls.unit
        assert not isinstance(cosine.unit, np.memmap) and not cosine.unit.flags.writeable
        for name in ("centered", "abtt:2"):
            if name in spaces:
                assert not np.shares_memory(spaces[name].unit, cosine.unit)
        # The answers are the memory-mapped cache's, under each metric.
        filters = Filters(skip_special=True)
        for name, space in spaces.items():
            mapped = emb.under(name, report=lambda _: None)
            for query in ("Mike", "banana", 40):
                want = mapped.neighbors(query, 8, filters=filters).to_json()
                assert space.neighbors(query, 8, filters=filters).to_json() == want


# --- the command line: --allow-host -----------------------------------------------------------


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_serve_allow_host(minilm_dir, module_cache, served):
    """`serve --allow-host NAME` (repeatable) adds names to the loopback ones."""
    command = [sys.executable, "-m", "tokneigh", "serve", "--model", str(minilm_dir), "--port",
               "0", "--metric", "cosine", "--allow-host", "tok.example", "--allow-host",
               "Other.Example", "--cache-dir", str(module_cache)]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        answers = {}
        for host in ("tok.example", f"other.example:{port}", "127.0.0.1", "evil.example"):
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                request = f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                sock.sendall(request.encode())
                head, _, body = _read_all(sock).partition(b"\r\n\r\n")
                answers[host] = (int(head.split()[1]), json.loads(body))
        server.terminate()
        server.communicate(timeout=WAIT)
    finally:
        server.kill()
    assert [status for status, _ in answers.values()] == [200, 200, 200, 403]
    assert "'evil.example' is not allowed" in answers["evil.example"][1]["error"]


@pytest.mark.parametrize("name", ["a/b", "host:80", "", "bad name"])
def test_serve_refuses_a_malformed_allow_host_in_one_line(name):
    from helpers import run_cli

    done = run_cli("serve", "--allow-host", name, "--port", "0", timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("tokneigh: error: --allow-host takes a host name"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
