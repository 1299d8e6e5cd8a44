"""What every request passes before the API sees it: it must name this server and come from
its own page (``SameSite``), and stay within the sizes the API ever needs (``Limits``). A
refused request is answered here as the API answers: one JSON line and a 4xx."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..results.json import json_text

MAX_QUERY_STRING = 8192  # bytes of the URL's query string
MAX_BODY = 16384  # the API reads no body; a bigger one is refused unread

# Names a request may give in its Host header, besides the bound address and --allow-host's.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# A Host header: a name or IPv4 address, or an IPv6 address in brackets; then maybe a port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?")


def json_response(data: object, status: int = 200) -> Response:
    return Response(json_text(data).encode("utf-8"), status, media_type="application/json")


def error_response(message: str, status: int) -> Response:
    """The API's error: ``{"error": "one line"}``."""
    return json_response({"error": message}, status)


class _Guard:
    """An ASGI middleware that answers a refused request itself; ``_refusal`` says which."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        raise NotImplementedError


class SameSite(_Guard):
    """Refuses a request that does not name this server in its Host (403; a page elsewhere
    whose name was rebound to this address would name its own), or that a page of another
    site sent (its Origin is not this server's scheme://host:port; 403)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        super().__init__(app)
        self.hosts = {name.lower() for name in (*LOOPBACK_NAMES, *hosts)}

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        given = headers.get("host", "")
        host = _HOST.fullmatch(given.lower())
        if host is None:
            return error_response(f"the Host header is missing or malformed ({given[:100]!r})", 400)
        name = host.group(1)
        if name not in self.hosts:
            return error_response(
                f"host {name[:100]!r} is not allowed: this server answers to "
                f"{', '.join(sorted(self.hosts))} (tokneigh serve --allow-host NAME adds one)",
                403,
            )
        origin = headers.get("origin")
        if origin is not None and _origin(origin) != _origin(f"{scope['scheme']}://{given}"):
            return error_response(
                f"origin {origin[:100]!r} is another site: this server answers its own page only",
                403,
            )
        return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None for "null"."""
    try:
        parts = urlsplit(url.lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname or "", default if port is None else port


class Limits(_Guard):
    """Refuses, before routing, a query string or body larger than the API ever needs."""

    def _refusal(self, scope: Scope) -> Response | None:
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
            limit = f"{MAX_QUERY_STRING:,} bytes"
            return error_response(f"the query string is longer than {limit}", 414)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    return error_response("the Content-Length header is not a number", 400)
                if size > MAX_BODY:
                    limit = f"{MAX_BODY:,} bytes"
                    return error_response(f"the request body is larger than {limit}", 413)
            elif name == b"transfer-encoding":
                return error_response("the API reads no request body", 413)
        return None
