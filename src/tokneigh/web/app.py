"""The ASGI application of ``tokneigh serve``: the page, its static files, and a JSON API
whose objects are the command line's JSON.

The model and its metrics are fixed when the app is made: a request can only query them (no
parameter names a model, a path or a cache), so nothing a request does loads or writes
anything. Every answer to a bad request is ``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..analyses.filters import Filters
from ..api.embeddings import Embeddings
from ..errors import TokenIdError, TokneighError
from ..results.json import json_text
from ..space.metrics import parse_metric
from .worker import Worker

STATIC = Path(__file__).parent / "static"

# What one request may ask: a query of a page's worth of text, k within a screenful of lists.
MAX_QUERY_CHARS = 1000
MAX_K = 1000
MAX_MAP_K = 200  # the PCA map's limit, as `tokneigh map` has it
MAX_QUERY_STRING = 8192  # bytes of the URL's query string
MAX_BODY = 16384  # the API reads no body; a bigger one is refused unread

_TOKEN_ID = re.compile(r"#(\d{1,18})")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# The page loads nothing from elsewhere; the policy makes sure of it.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class BadRequest(Exception):
    """A request parameter that is missing, malformed or beyond a limit (status 400)."""


@dataclass(frozen=True)
class Served:
    """What the server serves: one model, its embeddings kind, and its metrics by name."""

    spaces: Mapping[str, Embeddings]  # "cosine" first; every value is the same model

    @property
    def default(self) -> Embeddings:
        return next(iter(self.spaces.values()))

    def health(self) -> dict[str, Any]:
        emb = self.default
        return {
            "status": "ok",
            "model": emb.model,
            "embeddings": emb.embeddings,
            "vocab_size": emb.vocab_size,
            "dim": emb.dim,
            **({} if emb.quantization is None else {"quantization": emb.quantization}),
            "metrics": list(self.spaces),
            "limits": {"max_query_chars": MAX_QUERY_CHARS, "max_k": MAX_K, "max_map_k": MAX_MAP_K},
        }


class Params:
    """A request's query parameters, read strictly: each at most once, none unknown."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        items = request.query_params.multi_items()
        self._values: dict[str, str] = {}
        for name, value in items:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "none"
                raise BadRequest(f"unknown parameter {name!r} (this endpoint takes {takes})")
            if name in self._values:
                raise BadRequest(f"parameter {name!r} is given more than once")
            self._values[name] = value

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def text(self, name: str) -> str:
        value = self._values.get(name)
        if value is None or not value.strip():
            raise BadRequest(f"parameter {name!r} is missing or empty")
        if len(value) > MAX_QUERY_CHARS:
            raise BadRequest(
                f"parameter {name!r} is {len(value):,} characters long; the limit is "
                f"{MAX_QUERY_CHARS:,}"
            )
        return value

    def query(self, name: str) -> str | int:
        """A query: text, or ``#N`` for token id N."""
        value = self.text(name)
        match = _TOKEN_ID.fullmatch(value.strip())
        return int(match.group(1)) if match else value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"parameter {name!r} must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise BadRequest(f"parameter {name!r} must be between {low} and {high}, got {number}")
        return number

    def flag(self, name: str) -> bool:
        value = self._values.get(name, "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise BadRequest(f"parameter {name!r} is 1 or 0, got {value!r}")

    def number(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise BadRequest(f"parameter {name!r} must be a number, got {value!r}") from None

    def filters(self) -> Filters:
        return Filters(
            skip_special=not self.flag("include_special"),
            words_only=self.flag("words_only"),
            dedupe=self.flag("dedupe"),
            min_sim=self.number("min_sim"),  # Filters refuses NaN and values outside [-1, 1]
        )


FILTERS = {"include_special", "words_only", "dedupe", "min_sim"}


def create_app(served: Served, worker: Worker) -> Starlette:
    """The app serving ``served``; model work runs on ``worker``."""

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
        stats = worker.stats
        batching = {"products": stats.products, "queries": stats.queries, "largest": stats.largest}
        return _json({**served.health(), "batching": batching})

    async def neighbors(request: Request) -> Response:
        p = Params(request, {"q", "k", "metric", "exclude_query"} | FILTERS)
        query, k, filters = p.query("q"), p.integer("k", 20, 1, MAX_K), p.filters()
        name, _ = space(p)
        result = await worker.neighbors(name, query, k, filters, p.flag("exclude_query"))
        return _json(result.to_json())

    async def tokenize(request: Request) -> Response:
        p = Params(request, {"q"})
        text = p.text("q")
        emb = served.default
        return _json((await worker.call(lambda: emb.tokenize(text))).to_json())

    async def compare(request: Request) -> Response:
        p = Params(request, {"a", "b", "metric", "include_special"})
        a, b = p.query("a"), p.query("b")
        filters = Filters(skip_special=not p.flag("include_special"))
        _, emb = space(p)
        result = await worker.call(lambda: emb.compare(a, b, filters=filters))
        return _json(result.to_json())

    async def vector(request: Request) -> Response:
        p = Params(request, {"q"})
        query = p.query("q")
        emb = served.default

        def raw() -> dict[str, Any]:
            return {
                "query": emb.query_tokens(query).to_json(),
                "values": emb.raw_vector(query).tolist(),
            }

        return _json(await worker.call(raw))

    async def analogy(request: Request) -> Response:
        p = Params(request, {"a", "b", "c", "k", "metric"} | FILTERS)
        a, b, c = p.query("a"), p.query("b"), p.query("c")
        k, filters = p.integer("k", 10, 1, MAX_K), p.filters()
        _, emb = space(p)
        result = await worker.call(lambda: emb.analogy(a, b, c, k, filters=filters))
        return _json(result.to_json())

    async def token_map(request: Request) -> Response:
        p = Params(request, {"q", "k", "metric"} | FILTERS)
        query, k, filters = p.query("q"), p.integer("k", 30, 1, MAX_MAP_K), p.filters()
        _, emb = space(p)
        result = await worker.call(lambda: emb.map(query, k, filters=filters))
        return _json(result.to_json())

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def error_page(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if not request.url.path.startswith("/api/"):
            return Response(f"{status} {detail}\n", status, media_type="text/plain")
        return _error(str(detail).lower(), status)

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/api/health", _guarded(health), methods=["GET", "HEAD"]),
        Route("/api/neighbors", _guarded(neighbors), methods=["GET"]),
        Route("/api/tokenize", _guarded(tokenize), methods=["GET"]),
        Route("/api/compare", _guarded(compare), methods=["GET"]),
        Route("/api/vector", _guarded(vector), methods=["GET"]),
        Route("/api/analogy", _guarded(analogy), methods=["GET"]),
        Route("/api/map", _guarded(token_map), methods=["GET"]),
        # StaticFiles serves only files under STATIC: `..` and symlinks out are refused.
        Mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static"),
    ]
    handlers = {HTTPException: error_page, Exception: error_page}
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    app.add_middleware(Limits)
    return app


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """``handler`` with the library's refusals and bad parameters turned into 4xx JSON."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(str(exc), 400)
        except TokenIdError as exc:
            return _error(str(exc), 404)
        except TokneighError as exc:
            return _error(str(exc), 400)

    return guarded


def _json(data: Any, status: int = 200) -> Response:
    return Response(json_text(data).encode("utf-8"), status, media_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


class Limits:
    """Refuses, before routing, a query string or body larger than the API ever needs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> Response | None:
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
            return _error(f"the query string is longer than {MAX_QUERY_STRING:,} bytes", 414)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    return _error("the Content-Length header is not a number", 400)
                if size > MAX_BODY:
                    return _error(f"the request body is larger than {MAX_BODY:,} bytes", 413)
            elif name == b"transfer-encoding":
                return _error("the API reads no request body", 413)
        return None
