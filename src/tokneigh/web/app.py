"""The ASGI application of ``tokneigh serve``: the page, its static files, and a JSON API
whose objects are the command line's JSON.

The model and its metrics are fixed when the app is made: a request can only query them (no
parameter names a model, a path or a cache), so nothing a request does loads or writes
anything. Every answer to a bad request is ``{"error": "..."}`` with a 4xx status; a request
that meets a bug gets the same with 500, and only that request fails.

Requests must name this server: a ``Host`` other than a loopback name, the bound address or a
name the owner allowed is refused (a page elsewhere whose name was rebound to 127.0.0.1 cannot
read the API), and so is a request whose ``Origin`` is another site. A request whose client
has gone is not worked on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..analyses.filters import Filters
from ..api.embeddings import Embeddings
from ..errors import TokenIdError, TokneighError
from ..space.metrics import parse_metric
from .background import Once
from .guards import Limits, SameSite, error_response, json_response
from .mapdata import MAX_MAP_POINTS, MapData, build, map_points
from .pair import Pair, pair_handlers
from .params import FILTERS, MAX_QUERY_CHARS, BadRequest, ClientGone, Params, Refused
from .worker import Unavailable, Worker

STATIC = Path(__file__).parent / "static"

# What one request may ask: a query of a page's worth of text, k within a screenful of lists.
MAX_K = 1000
MAX_MAP_K = 200  # the PCA map's limit, as `tokneigh map` has it

# Names a request may give in its Host header, besides the bound address and --allow-host's.
# A Host header: a name or IPv4 address, or an IPv6 address in brackets; then maybe a port.


# The page loads nothing from elsewhere; the policy makes sure of it.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Served:
    """What the server serves: one model, its embeddings kind, and its metrics by name; with
    --against, a second model under the same metrics (``pair``)."""

    spaces: Mapping[str, Embeddings]  # "cosine" first; every value is the same model
    pair: Pair | None = None  # B, with --against

    @property
    def default(self) -> Embeddings:
        return next(iter(self.spaces.values()))

    def health(self) -> dict[str, Any]:
        emb = self.default
        return {
            "status": "ok",
            "ok": True,
            "model": emb.model,
            "embeddings": emb.embeddings,
            "vocab_size": emb.vocab_size,
            "dim": emb.dim,
            **({} if emb.quantization is None else {"quantization": emb.quantization}),
            "metrics": list(self.spaces),
            "limits": {"max_query_chars": MAX_QUERY_CHARS, "max_k": MAX_K, "max_map_k": MAX_MAP_K},
            **({} if self.pair is None else {"against": self.pair.health()}),
        }


def create_app(
    served: Served,
    worker: Worker,
    *,
    hosts: Iterable[str] = (),
    log: Callable[[str], None] | None = None,
    map_method: str = "umap",
    map_budget: int = MAX_MAP_POINTS,
) -> Starlette:
    """The app serving ``served``; model work runs on ``worker``. ``hosts``: the names a
    request's Host may give besides the loopback ones (the bound address, --allow-host's).
    ``log`` is told, in one line, of each request that met a bug. The whole-vocabulary map is
    laid out by ``map_method`` (under the first metric) when first asked for, on its own
    thread; a map of more than ``map_budget`` points is refused."""

    points = map_points(served.default)
    if served.pair is not None:
        served.pair.alignment.start()  # the page asks for it soon: start at once
    map_job: Once[MapData] = Once(lambda progress: build(served.default, map_method, progress))

    def space(params: Params) -> tuple[str, Embeddings]:
        asked = params.get("metric")
        if not asked:
            name = next(iter(served.spaces))
        else:  # "csls" is "csls:10", "ABTT" is "abtt:4" here: the metric's own name
            emb = served.default
            name = parse_metric(asked, emb.dim, emb.vocab_size - int(emb.unusable.size)).name
        if name not in served.spaces:
            raise BadRequest(
                f"metric {name!r} is not served here (this server serves "
                f"{', '.join(served.spaces)})"
            )
        return name, served.spaces[name]

    async def health(request: Request) -> Response:
        Params(request, set())
        if not worker.alive:
            why = worker.failure or "its thread has ended"
            stopped = {"status": "error", "ok": False, "error": f"the model worker stopped ({why})"}
            return json_response(stopped, 503)
        stats = worker.stats
        batching = {"products": stats.products, "queries": stats.queries, "largest": stats.largest}
        answer = {**served.health(), "batching": batching}
        answer["map"] = {"points": points, "method": map_method, "max_points": map_budget}
        return json_response(answer)

    def map_allowed() -> None:
        if points > map_budget:
            raise Refused(
                f"the map would hold {points:,} points; the page draws at most {map_budget:,}",
                413,
            )

    async def layout(request: Request) -> Response:
        Params(request, set())
        map_allowed()
        map_job.start()
        for _ in range(10):  # a cached layout is done at once: answer it without a poll
            if map_job.finished.is_set():
                break
            await asyncio.sleep(0.05)
        if not map_job.finished.is_set():
            done, total = map_job.progress
            computing = {"status": "computing", "method": map_method, "count": points}
            computing |= {"done": done, "total": total, "seconds": round(map_job.seconds, 1)}
            return json_response(computing, 202)
        if map_job.error is not None:
            raise map_job.error
        assert map_job.result is not None
        return json_response(map_job.result.facts)

    async def layout_arrays(request: Request) -> Response:
        Params(request, set())
        map_allowed()
        if not map_job.finished.is_set():
            raise Refused("the map is not computed yet: GET /api/layout starts it", 409)
        if map_job.error is not None:
            raise map_job.error
        assert map_job.result is not None
        return Response(map_job.result.body, media_type="application/octet-stream")

    async def on_worker(request: Request, function: Callable[[], Any], *kind: Any) -> Any:
        """``function``'s result, run on the worker in turn (``kind``: what it costs like)."""
        return await _answer(request, lambda: worker.call(function, (request.url.path, *kind)))

    async def neighbors(request: Request) -> Response:
        p = Params(request, {"q", "k", "metric", "exclude_query"} | FILTERS)
        query, k, filters = p.query("q"), p.integer("k", 20, 1, MAX_K), p.filters()
        name, _ = space(p)
        exclude = p.flag("exclude_query")
        result = await _answer(
            request,
            lambda: worker.neighbors(name, query, k, filters, exclude),
        )
        return json_response(result.to_json())

    async def tokenize(request: Request) -> Response:
        p = Params(request, {"q"})
        text = p.text("q")
        emb = served.default
        return json_response((await on_worker(request, lambda: emb.tokenize(text))).to_json())

    async def compare(request: Request) -> Response:
        p = Params(request, {"a", "b", "metric", "include_special"})
        a, b = p.query("a"), p.query("b")
        filters = Filters(skip_special=not p.flag("include_special"))
        _, emb = space(p)
        result = await on_worker(request, lambda: emb.compare(a, b, filters=filters), emb.metric)
        return json_response(result.to_json())

    async def vector(request: Request) -> Response:
        p = Params(request, {"q"})
        query = p.query("q")
        emb = served.default

        def raw() -> dict[str, Any]:
            return {
                "query": emb.query_tokens(query).to_json(),
                "values": emb.raw_vector(query).tolist(),
            }

        return json_response(await on_worker(request, raw))

    async def analogy(request: Request) -> Response:
        p = Params(request, {"a", "b", "c", "k", "metric"} | FILTERS)
        a, b, c = p.query("a"), p.query("b"), p.query("c")
        k, filters = p.integer("k", 10, 1, MAX_K), p.filters()
        _, emb = space(p)
        result = await on_worker(
            request, lambda: emb.analogy(a, b, c, k, filters=filters), emb.metric, k, filters
        )
        return json_response(result.to_json())

    async def token_map(request: Request) -> Response:
        p = Params(request, {"q", "k", "metric"} | FILTERS)
        query, k, filters = p.query("q"), p.integer("k", 30, 1, MAX_MAP_K), p.filters()
        _, emb = space(p)
        result = await on_worker(
            request, lambda: emb.map(query, k, filters=filters), emb.metric, k, filters
        )
        return json_response(result.to_json())

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def error_page(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if not request.url.path.startswith("/api/"):
            return Response(f"{status} {detail}\n", status, media_type="text/plain")
        return error_response(str(detail).lower(), status)

    def guarded(handler: Handler) -> Handler:
        return _guarded(handler, log)

    pair_neighbors, drift = pair_handlers(
        served.pair, worker, _answer, lambda p: space(p)[0], MAX_K
    )

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/api/health", guarded(health), methods=["GET", "HEAD"]),
        Route("/api/neighbors", guarded(neighbors), methods=["GET"]),
        Route("/api/tokenize", guarded(tokenize), methods=["GET"]),
        Route("/api/compare", guarded(compare), methods=["GET"]),
        Route("/api/vector", guarded(vector), methods=["GET"]),
        Route("/api/analogy", guarded(analogy), methods=["GET"]),
        Route("/api/map", guarded(token_map), methods=["GET"]),
        Route("/api/layout", guarded(layout), methods=["GET"]),
        Route("/api/pair/neighbors", guarded(pair_neighbors), methods=["GET"]),
        Route("/api/drift", guarded(drift), methods=["GET"]),
        Route("/api/layout.bin", guarded(layout_arrays), methods=["GET"]),
        # StaticFiles serves only files under STATIC: `..` and symlinks out are refused.
        Mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static"),
    ]
    handlers = {HTTPException: error_page, Exception: error_page}
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    app.add_middleware(Limits)
    app.add_middleware(SameSite, hosts=hosts)  # outermost: nothing else runs for other sites
    return app


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler, log: Callable[[str], None] | None = None) -> Handler:
    """``handler`` with the library's refusals and bad parameters turned into 4xx JSON, a
    worker that cannot answer into 503, and a bug into a one-line 500 (``log`` hears of it)."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error_response(str(exc), 400)
        except Refused as exc:
            return error_response(str(exc), exc.status)
        except TokenIdError as exc:
            return error_response(str(exc), 404)
        except TokneighError as exc:
            return error_response(str(exc), 400)
        except Unavailable as exc:
            return error_response(str(exc), 503)
        except ClientGone:
            return error_response("the client has gone", 503)  # nobody reads it
        except Exception as exc:  # noqa: BLE001 - a bug fails this request, not the server
            line = f"internal error: {_one_line(exc)}"
            if log is not None:
                log(f"{request.url.path}: {line}")
            return error_response(f"{line} (please report it)", 500)

    return guarded


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:300]}" if lines else exc.__class__.__name__


T = TypeVar("T")


async def _answer(request: Request, submit: Callable[[], asyncio.Future[T]]) -> T:
    """The result of the job ``submit`` queues, unless the client leaves first: a client that
    has gone before queues nothing, and one that goes while waiting has its job cancelled (the
    worker drops it unrun)."""
    if await request.is_disconnected():
        raise ClientGone
    future = submit()
    gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait([future, gone], return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not future.done():
            future.cancel()
    if future.cancelled():
        raise ClientGone
    return future.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client closes its connection (the API reads no body)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
