"""`tokneigh serve`: the explorer in a browser."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    MODEL_KINDS,
    AgainstEmbeddingsOption,
    CacheDirOption,
    EmbeddingsOption,
    ModelOption,
    help_text,
)
from .help import HelpCommand
from .output import load, progress_bar, report

if TYPE_CHECKING:
    import socket

    import uvicorn

    from ..api.embeddings import Embeddings
    from ..reporting import Report
    from ..web.app import Served

HELP = """Serve the explorer on a local web page, with the matrix kept in memory.

The page ranks neighbours as you click (each neighbour a link that makes it the query),
shows the query's tokens, compares two words (with the dimension scatter), solves analogies,
maps a neighbourhood in 2-D, and maps the whole vocabulary (the Map view, laid out as --map
says); every view is a URL you can share. The same answers are JSON under /api/ (see the
README). The model and its metrics are fixed at start: each
--metric is prepared once (and cached), and the page offers those.

The server listens on 127.0.0.1 unless --host says otherwise: it has no authentication, so
anyone who can reach the port can query the model. It answers only requests that name it
(Host: localhost, 127.0.0.1, [::1], the address it listens on, or a name given with
--allow-host), and refuses requests that another site's page sends. --port 0 picks a free
port. The URL is printed on standard output.

With --against B the page shows two models: the Neighbours view lists A's neighbours and B's
side by side for the same query (each model tokenizes it; a #id is A's token, and B's list is
its counterpart's), links the tokens both lists hold (matched by what they decode to, as
`align` matches them), and gives the query's drift; the Drift view ranks the tokens that moved
most (1 - cos of A's vector mapped to B's space and B's, as `tokneigh align` computes it, once,
then cached). B is served under the same metrics.

Examples:

  tokneigh serve

  tokneigh serve --model ./my-checkpoint --metric cosine --metric csls --open

  tokneigh serve --model ./base --against ./fine-tuned
"""

DEFAULT_METRICS = ["cosine", "centered", "abtt", "csls"]


def serve(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="N", help="TCP port.")
    ] = 8000,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            metavar="cosine|centered|abtt[:D]|csls[:K]",
            help="A metric the page offers (repeatable; default cosine, centered, abtt and "
            "csls). The first is the page's default.",
            show_default=False,
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in a web browser.")
    ] = False,
    allow_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Another name requests may give in their Host header, e.g. the machine's "
            "name when listening on all addresses (repeatable).",
            show_default=False,
        ),
    ] = None,
    map_method: Annotated[
        str,
        typer.Option(
            "--map",
            metavar="umap|pca",
            help="How the Map view lays out the whole vocabulary: umap (slower, keeps "
            "neighbourhoods; computed when the page first asks, then cached) or pca (fast).",
        ),
    ] = "umap",
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="NAME",
            help=f"A second model B, shown beside A: {MODEL_KINDS}.",
            show_default=False,
        ),
    ] = None,
    against_embeddings: AgainstEmbeddingsOption = None,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    if map_method not in ("umap", "pca"):
        from ..errors import UsageError

        raise UsageError(f"--map takes umap or pca, not {map_method!r}")
    if against is not None and not against.strip():
        from ..errors import UsageError

        raise UsageError("--against takes a model name or folder, not an empty string")
    if against is None and against_embeddings is not None:
        from ..errors import UsageError

        raise UsageError("--against-embeddings needs --against")
    names = _host_names(allow_hosts or [])
    listener = _listen(host, port)  # a busy port fails before the model loads
    emb = load(model, cache_dir, embeddings)
    b = None  # B, loaded before A's metrics are prepared: a bad --against fails at once
    if against is not None:
        b_kind = embeddings if against_embeddings is None else against_embeddings
        b = load(against, cache_dir, b_kind)
    spaces = served_spaces(emb, metrics or DEFAULT_METRICS, report)

    from ..web.app import Served, create_app
    from ..web.server import make_server
    from ..web.worker import Worker

    pair = None
    if b is not None:
        from ..web.pair import Pair

        pair = Pair.of(emb, b, served_spaces(b, list(spaces), report))
    served = Served(spaces, pair)
    stopped: list[str] = []
    server = None

    def on_death(reason: str) -> None:  # the worker's thread died for good: stop serving
        stopped.append(reason)
        if server is not None:
            server.should_exit = True

    worker = Worker({**spaces, **(pair.worker_spaces() if pair else {})}, on_death=on_death)
    _warm_up(served)
    bound_host, bound_port = listener.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    names.append(shown)  # the printed URL's; for 0.0.0.0, other machines need --allow-host
    url = f"http://{shown}:{bound_port}/"
    if not _is_loopback(host):
        wildcard = bound_host in ("0.0.0.0", "::")
        report(
            f"warning: listening on {host}, not loopback: anyone who can reach port "
            f"{bound_port} can query {emb.model} (there is no authentication)"
            + ("; other machines must name it by an --allow-host name" if wildcard else "")
        )
    from ..results import model_label

    shape = f"{emb.vocab_size:,} x {emb.dim}"
    if pair is not None:
        matched = pair.health()["matched"]
        shape += f"; against {model_label(pair.b.model)}, {pair.b.vocab_size:,} x {pair.b.dim}, "
        shape += f"{matched:,} tokens matched"
    report(f"serving {model_label(emb.model)} ({shape}; {', '.join(spaces)}); Ctrl-C stops")
    try:
        print(url, flush=True)
    except OSError as exc:  # a full device or a closed stdout: the one line every command gives
        from ..present.render import output_error

        raise output_error(exc) from exc
    if open_browser:
        import webbrowser

        webbrowser.open(url)  # the socket is listening: the browser's request waits for us

    def log(line: str) -> None:
        report(f"warning: {line}")

    app = create_app(served, worker, hosts=names, log=log, map_method=map_method)
    server = make_server(app)
    try:
        if not stopped:
            _run(server, listener)
    finally:
        worker.close()
        listener.close()
    if stopped:
        from ..errors import TokneighError

        raise TokneighError(f"the model worker stopped ({stopped[0]}); the server has stopped")


def served_spaces(
    emb: Embeddings, metrics: Sequence[str], report: Report | Callable[[str], None]
) -> dict[str, Embeddings]:
    """Each metric's embeddings, resident in memory, by the metric's name; metrics that compare
    the same rows (cosine, csls) share one copy of them."""
    from ..errors import UsageError
    from ..space.metrics import parse_metric

    spaces: dict[str, Embeddings] = {}
    for spec in metrics:
        chosen = parse_metric(spec, emb.dim, emb.vocab_size - int(emb.unusable.size))
        if chosen.name in spaces:
            raise UsageError(f"metric {chosen.name} is given twice")
        with progress_bar(f"metric {chosen.name}") as progress:
            space = emb.under(chosen, report=report, progress=progress)  # type: ignore[arg-type]
            spaces[chosen.name] = space.resident(share=spaces.values())
    return spaces


def _host_names(given: list[str]) -> list[str]:
    """--allow-host's names as a Host header gives them (lower case, IPv6 in brackets)."""
    import ipaddress

    from ..errors import UsageError

    names = []
    for name in given:
        name = name.strip().lower()
        bare = name.strip("[]")
        try:
            if ipaddress.ip_address(bare).version == 6:
                name = f"[{bare}]"
        except ValueError:
            if not name or any(c in name for c in ":/[]@ ") or not name.isascii():
                raise UsageError(
                    f"--allow-host takes a host name or address, not {name!r}"
                ) from None
        names.append(name)
    return names


def _listen(host: str, port: int) -> socket.socket:
    import socket

    from ..errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror}") from None
    listener.set_inheritable(True)
    return listener


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warm_up(served: Served) -> None:
    """Read every matrix once, so the first request does not pay for paging it in."""
    groups = [list(served.spaces.values())]
    if served.pair is not None:
        groups.append(list(served.pair.spaces.values()))
    for spaces in groups:
        unusable = set(spaces[0].unusable.tolist())
        first = next((i for i in range(spaces[0].vocab_size) if i not in unusable), None)
        if first is None:
            continue
        for space in spaces:
            space.neighbors(first, k=1)


def _run(server: uvicorn.Server, listener: socket.socket) -> None:
    import gc

    # What is loaded now lives as long as the server: keep the collector off it.
    gc.collect()
    gc.freeze()
    server.run(sockets=[listener])


def register(app: typer.Typer) -> None:
    app.command("serve", cls=HelpCommand, help=help_text(HELP))(serve)
