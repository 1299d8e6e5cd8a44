"""The server's model work, on one thread: neighbour queries that arrive together share one
matrix-matrix product, jobs are taken in fair order across connections, and a bug fails the
request that met it, never the thread.

One query reads the whole matrix (154 MB for GPT-2) for a single matrix-vector product, so
on a small machine concurrent requests answered one by one are bound by memory bandwidth. When
the worker takes a neighbour query it answers, with one ``neighbors_many`` call, every waiting
query that asks the same thing (metric, k, filters): one product for all of them, the same rows
bit for bit as each alone.

A product costs about the same for 2 queries as for 16 here (BLAS packs the whole matrix
either way), so batches should be full. Under load they would not be: clients answered
together come back a few at a time, the first few would start the next product alone, and
the rest would wait a whole product for the one after (batches of 2, 14, 2, 14...). So when
one of the last two batches held several queries, the worker waits up to ``GATHER_SECONDS``
for as many as the larger held, as dynamic batching servers do (Triton's queue delay, TF
Serving's batch timeout). After lone queries it never waits: one client in a loop is not
slowed.

Order. First come, first served lets clients that loop on costly work (maps, k=1000) make a
cheap query wait behind all of theirs: with eight of them, a neighbour query took 0.5 s instead
of 17 ms. Fair shares of the worker's time across connections would not help a person who
clicks while scripts loop: each gets 1/9 of the time, so a query waits for eight others. So
the worker takes the job expected to be cheapest first (shortest job first: the time the last
jobs of its kind took, ``Worker.cost``), and a job's expected cost counts down by ``AGING`` of
the time it has waited, so costly work is delayed, never starved (a job expected to take 40 ms
more than the others goes first after 2 s). A cheap query then waits for at most the job in
progress. An HTTP/1.1 connection has one request in flight at a time (uvicorn answers a
connection's requests in turn), so each connection already holds at most one job; the bound
on the whole queue (``MAX_QUEUED``; a full queue is refused at once) limits a burst spread
over many connections, and a job whose request was cancelled (its client left) is dropped
unrun.

One thread also means the ``Embeddings`` objects are never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..analyses.filters import Filters
from ..api.embeddings import Embeddings
from ..errors import TokneighError
from ..results import NeighborList

# Queries answered by one product at most: bounds the score block (64 x vocab float32, 13 MB
# for GPT-2) and how long the last query of a batch waits for the first.
MAX_BATCH = 64
# How long the worker waits, after a batch of several queries, for the next one to fill.
GATHER_SECONDS = 0.005
# Jobs waiting at most: past it a request is refused at once (503) rather than left waiting
# behind minutes of work. Far above what the page makes (a few per tab) or 50 clients do.
MAX_QUEUED = 256
# How much of the time a job has waited counts off its expected cost (seconds per second).
AGING = 0.02
# How often the thread is started again after its loop died (a bug outside any one job).
MAX_RESTARTS = 3


class Unavailable(Exception):
    """The worker cannot answer now (the server answers 503)."""


class Busy(Unavailable):
    """The queue is full."""


class Stopped(Unavailable):
    """The worker's thread died while holding the job, or for good."""


@dataclass
class _Job:
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # A neighbour query (batched with others of the same key), or any other call.
    key: Hashable | None = None
    query: str | int | None = None
    call: Callable[[], Any] | None = None
    kind: Hashable = None  # jobs of a kind cost about the same (a neighbour query's: its key)
    queued: float = field(default_factory=time.monotonic)
    seq: int = 0


@dataclass(frozen=True)
class NeighborsKey:
    """What must be equal for neighbour queries to share a product."""

    metric: str
    k: int
    filters: Filters
    exclude_query: bool


@dataclass
class BatchStats:
    """How the worker has batched: products run, and queries answered by them."""

    products: int = 0
    queries: int = 0
    largest: int = 0


class Worker:
    """Runs model work for an asyncio server on one thread, batching neighbour queries.

    ``on_death(reason)`` is called (on the worker's thread) when the thread died and could not
    be started again: the owner should stop serving."""

    def __init__(
        self,
        spaces: Mapping[str, Embeddings],
        max_batch: int = MAX_BATCH,
        max_queued: int = MAX_QUEUED,
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        self._spaces = spaces
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._on_death = on_death
        self._jobs: list[_Job] = []
        self._current: list[_Job] = []  # the jobs being worked on
        self._wake = threading.Condition()
        self._stopping = False
        self._recent = [0, 0]  # neighbour queries in the last two batches
        self._seq = itertools.count()
        self.cost: dict[Hashable, float] = {}  # seconds the last jobs of each kind took
        self.stats = BatchStats()
        self.restarts = 0
        self.failure: str | None = None  # why the worker stopped for good
        self._thread = self._start()

    @property
    def alive(self) -> bool:
        return self.failure is None and self._thread.is_alive()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def neighbors(
        self,
        metric: str,
        query: str | int,
        k: int,
        filters: Filters,
        exclude_query: bool,
    ) -> asyncio.Future[NeighborList]:
        """``Embeddings.neighbors`` under ``metric``, batched with concurrent queries: a future
        (cancel it to drop the job). Raises ``Unavailable`` at once when it cannot be queued."""
        key = NeighborsKey(metric, k, filters, exclude_query)
        return self._submit(_Job(*self._future(), key=key, query=query, kind=key))

    def call(self, function: Callable[[], Any], kind: Hashable = None) -> asyncio.Future[Any]:
        """Run ``function`` on the worker thread, in turn with the other jobs (a future).
        ``kind`` names what it does (calls of a kind are expected to cost the same)."""
        return self._submit(_Job(*self._future(), call=function, kind=("call", kind)))

    @staticmethod
    def _future() -> tuple[asyncio.Future[Any], asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        return loop.create_future(), loop

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        with self._wake:
            if self.failure is not None:
                raise Stopped(f"the model worker has stopped ({self.failure})")
            if len(self._jobs) >= self._max_queued:
                self._jobs = [j for j in self._jobs if not j.future.done()]  # left clients
                if len(self._jobs) >= self._max_queued:
                    raise Busy(f"the server is busy ({len(self._jobs)} requests waiting)")
            job.seq = next(self._seq)
            self._jobs.append(job)
            self._wake.notify()
        return job.future

    # --- the order (under the lock) -----------------------------------------------------------

    def _learn(self, kind: Hashable, seconds: float) -> None:
        if len(self.cost) > 4 * self._max_queued:  # kinds include every k and min_sim asked
            self.cost.clear()
        old = self.cost.get(kind)
        self.cost[kind] = seconds if old is None else 0.7 * old + 0.3 * seconds

    def _take(self) -> list[_Job]:
        """The next job in fair order, and the waiting queries that share its product."""
        self._jobs = [job for job in self._jobs if not job.future.done()]  # clients that left
        if not self._jobs:
            return []
        now = time.monotonic()

        def due(job: _Job) -> tuple[float, int]:  # cheapest first, less the time waited
            return self.cost.get(job.kind, 0.0) - AGING * (now - job.queued), job.seq

        first = min(self._jobs, key=due)
        if first.call is not None:
            taken = [first]
        else:  # with every waiting query that shares its product, first come first
            taken = [job for job in self._jobs if job.key == first.key][: self._max_batch]
        chosen = {id(job) for job in taken}
        self._jobs = [job for job in self._jobs if id(job) not in chosen]
        return taken

    # --- the thread -----------------------------------------------------------------------

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._main, name="tokneigh-worker", daemon=True)
        thread.start()
        return thread

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - the loop itself broke: start again, or stop
            self._died(exc)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._stopping:
                    self._wake.wait()
                expected = min(max(self._recent), self._max_batch)
                if expected > 1:
                    deadline = time.monotonic() + GATHER_SECONDS
                    while len(self._jobs) < expected and not self._stopping:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._wake.wait(left)
                if self._stopping:
                    return
                self._current = jobs = self._take()
            if not jobs:
                continue
            if jobs[0].call is None:
                self._recent = [self._recent[1], len(jobs)]
            began = time.perf_counter()
            self._work(jobs)
            with self._wake:
                self._learn(jobs[0].kind, time.perf_counter() - began)
                self._current = []

    def _died(self, exc: BaseException) -> None:
        reason = _one_line(exc)
        with self._wake:
            held, self._current = self._current, []
            if self._stopping:
                return
            self.restarts += 1
            again = self.restarts <= MAX_RESTARTS
        for job in held:  # the jobs in hand may be what broke it: they fail, the queue waits
            _deliver(job, None, Stopped(f"the model worker failed on this request ({reason})"))
        if again:
            try:
                self._thread = self._start()
                return
            except RuntimeError as start:  # no thread can be started
                reason = f"{reason}; restarting it failed: {_one_line(start)}"
        with self._wake:
            self.failure = reason
            waiting, self._jobs = self._jobs, []
        for job in waiting:
            _deliver(job, None, Stopped(f"the model worker has stopped ({reason})"))
        if self._on_death is not None:
            self._on_death(reason)

    def _work(self, jobs: list[_Job]) -> None:
        if jobs[0].call is not None:
            for job in jobs:
                self._settle(job, job.call)  # type: ignore[arg-type]
            return
        key = jobs[0].key
        assert isinstance(key, NeighborsKey)
        self._answer(key, jobs)

    def _answer(self, key: NeighborsKey, group: Sequence[_Job]) -> None:
        emb = self._spaces[key.metric]

        def ask(queries: Sequence[str | int]) -> list[NeighborList]:
            return emb.neighbors_many(
                list(queries), k=key.k, exclude_query=key.exclude_query, filters=key.filters
            )

        # A query the model refuses (an unknown id, text that yields no token) or that meets a
        # bug (a tokenizer raising) fails alone: check each first, then rank the rest together.
        good: list[_Job] = []
        for job in group:
            assert job.query is not None
            try:
                emb.query_tokens(job.query)
            except Exception as exc:  # noqa: BLE001 - delivered to the request that asked
                _deliver(job, None, exc)
            else:
                good.append(job)
        if not good:
            return
        try:
            results = ask([job.query for job in good])  # type: ignore[misc]
        except TokneighError:
            # Refused as a batch (e.g. a query whose tokens' vectors cancel out): one by one,
            # so each query gets its own answer or error.
            for job in good:
                self._settle(job, lambda job=job: ask([job.query])[0])  # type: ignore[misc]
            return
        except Exception as exc:  # noqa: BLE001 - a bug must reach each request, not kill the thread
            for job in good:
                _deliver(job, None, exc)
            return
        self._count(len(good))
        for job, result in zip(good, results):
            _deliver(job, result, None)

    def _count(self, size: int) -> None:
        stats = self.stats
        stats.products += 1
        stats.queries += size
        stats.largest = max(stats.largest, size)

    @staticmethod
    def _settle(job: _Job, function: Callable[[], Any]) -> None:
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - delivered to the request that asked
            _deliver(job, None, exc)
        else:
            _deliver(job, result, None)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:200]}" if text else exc.__class__.__name__


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():  # the client went away and the request was cancelled
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop has closed: the server is shutting down
        pass
