"""The HTTP server `tokneigh serve` runs its app under: uvicorn, with a deadline for reading a
request's header that uvicorn does not have.

uvicorn (0.55) closes a keep-alive connection that stays idle after an answer
(``timeout_keep_alive``), but nothing closes a connection that never sends a request, or sends
half a header and stops: each keeps a file descriptor for ever, and enough of them make every
new connection fail. So each connection gets a deadline whenever it is waiting for a request
(from when it opens, and from the end of each answer): if the request's header has not been
read by then, the connection is closed. The deadline does not cut model work: while a request
is being answered, the connection is left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Seconds a client has to send a request's header, on a new connection or after an answer.
HEADER_SECONDS = 5.0
# Seconds an idle keep-alive connection is kept after an answer (uvicorn's default).
IDLE_SECONDS = 5
# Seconds a stop (Ctrl-C, SIGTERM) waits for requests in progress before cancelling them.
SHUTDOWN_SECONDS = 10


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request header is not read
    within ``header_seconds`` of when the connection began waiting for it."""

    header_seconds = HEADER_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.header_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        answering = self.cycle is not None and not self.cycle.response_complete
        if not answering and not self.transport.is_closing():
            self.transport.close()


def make_server(
    app: Any,
    *,
    header_seconds: float = HEADER_SECONDS,
    idle_seconds: float = IDLE_SECONDS,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` (run it with ``.run(sockets=[...])``), quiet but for
    warnings, with the header deadline and keep-alive timeout given."""
    protocol = type("Protocol", (DeadlineProtocol,), {"header_seconds": header_seconds})
    config = uvicorn.Config(
        app,
        http=protocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_keep_alive=idle_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    return uvicorn.Server(config)
