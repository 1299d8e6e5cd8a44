"""`tokneigh shell`: load a model once, then answer many queries (like fastText's ``nn``).

A bare line is a neighbours query; lines starting with ``:`` are commands (``:help``). On a
terminal there is a prompt, line editing and history (stdlib ``readline``, history kept under
the cache root). From a pipe there is no prompt and no colour, and every input line gives one
result block (one JSON object with ``--format json``), so the shell can be scripted:

    printf 'Mike\\n:top 5\\nbanana\\n' | tokneigh shell --model gpt2 --format json

A bad line prints one error line on stderr and the loop goes on; end of input exits with 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_METRIC,
    CacheDirOption,
    EmbeddingsOption,
    MetricOption,
    ModelOption,
    error_line,
    help_text,
)
from .filters import IncludeSpecialOption
from .help import HelpCommand
from .output import load

HELP = """Load a model once and answer many queries, one per line.

A line of text is a neighbours query (the whole line, leading spaces included: " Mike" and
"Mike" are different GPT-2 tokens). Commands: :compare A B, :tokenize TEXT, :analogy A B C,
:id N, :vector FILE[:ROW], :centroid, :top N, :model NAME, :embeddings input|output,
:metric M, :help, :quit (or Ctrl-D). Quote
arguments that hold spaces: :compare " Mike" "New York".

Special tokens are left out of neighbour lists and ranks unless --include-special, as in
`tokneigh neighbors`.

On a terminal: a prompt, line editing and history. From a pipe: no prompt, no colour, one
result block per line (one JSON object per line with --format json).

Examples:

  tokneigh shell --model gpt2

  printf 'Mike\\n:top 5\\nbanana\\n' | tokneigh shell --format json
"""

COMMANDS = """\
TEXT                      nearest tokens to TEXT (the whole line)
:neighbors TEXT  (:n)     the same, for text that starts with ':'
:id N                     nearest tokens to token id N
:compare A B     (:c)     cosine, angle, Pearson, norms, B's rank among A's neighbours
:tokenize TEXT…  (:t)     how the tokenizer splits each TEXT
:analogy A B C   (:a)     A is to B as C is to ?  (nearest to B - A + C)
:top [N]                  show or set how many neighbours (now {top})
:model [NAME]             show the model, or load another one
:embeddings [KIND]        show or switch the matrix: input or output
:metric [M]               show or switch the metric: cosine, centered, abtt[:D], csls[:K]
:vector FILE[:ROW]        nearest tokens to a vector saved with numpy (.npy)
:centroid                 nearest tokens to the mean row
:help            (:h, :?) this list
:quit            (:q)     leave (Ctrl-D too)
Quote arguments with spaces: :compare " Mike" "New York"."""

HISTORY_FILE = "shell_history"
HISTORY_LENGTH = 1000


class ShellFormat(str, Enum):
    table = "table"
    json = "json"


class ShellError(Exception):
    """A bad shell line (unknown command, wrong arguments): reported, and the loop goes on."""


# Lines already waiting in a pipe are answered together, at most this many at a time: one
# matrix-matrix product for a run of neighbour queries instead of one product per line.
BATCH_LINES = 256


class Shell:
    """The query loop's state and one-line dispatcher; ``run_line`` is what each line does."""

    def __init__(
        self,
        emb: Any,  # api.Embeddings (import kept lazy)
        *,
        top: int,
        output: ShellFormat,
        interactive: bool,
        loader: Callable[[str, str, str], Any],
        embeddings: str = "input",
        skip_special: bool = True,
        metric: str = "cosine",
    ) -> None:
        from ..analyses.filters import Filters

        self.emb = emb
        self.filters = Filters(skip_special=skip_special)  # as `neighbors`: specials hidden
        self.top = top
        self.output = output
        self.interactive = interactive
        # (model, embeddings, metric) -> Embeddings, for :model, :embeddings and :metric
        self.loader = loader
        self.embeddings = embeddings
        self.metric = metric
        self._console: Any = None
        self._commands: dict[str, Callable[[str], None]] = {
            "neighbors": self.cmd_neighbors,
            "n": self.cmd_neighbors,
            "id": self.cmd_id,
            "compare": self.cmd_compare,
            "c": self.cmd_compare,
            "tokenize": self.cmd_tokenize,
            "t": self.cmd_tokenize,
            "analogy": self.cmd_analogy,
            "a": self.cmd_analogy,
            "top": self.cmd_top,
            "k": self.cmd_top,
            "model": self.cmd_model,
            "embeddings": self.cmd_embeddings,
            "metric": self.cmd_metric,
            "vector": self.cmd_vector,
            "centroid": self.cmd_centroid,
            "help": self.cmd_help,
            "h": self.cmd_help,
            "?": self.cmd_help,
        }

    # --- the loop ---------------------------------------------------------------------------

    def run_line(self, line: str | None | TooLong) -> bool:
        """Handle one input line (None: a line that was not UTF-8); False when the shell should
        stop (:quit)."""
        return self.run_lines([line])

    def run_lines(self, lines: list[str | None | TooLong]) -> bool:
        """Handle lines in order, answering each run of neighbour queries with one batch;
        False when a line said :quit (the lines after it are not run)."""
        queries: list[Any] = []  # the pending run: a query (text or id) per line
        for line in lines:
            parsed = self._parse(line)
            if parsed is None:  # :quit
                self._flush(queries)
                return False
            command, rest = parsed
            if command == "" and rest is None:
                continue  # a blank line in table mode asks nothing
            query = self._neighbors_query(command, rest)
            if query is not None:
                queries.append((command or "neighbors", query))
                continue
            self._flush(queries)
            queries = []
            self._guarded(command, partial(self._dispatch, command, rest))
        self._flush(queries)
        return True

    def _parse(self, line: str | None | TooLong) -> tuple[str, Any] | None:
        """(command, its argument text) of a line; ("", error) for a line with no query."""
        if line is None:
            return "", ShellError("the line is not valid UTF-8 text")
        if isinstance(line, TooLong):
            from ..api.vocabulary import MAX_TEXT_BYTES

            return "", ShellError(
                f"the line has {line.size:,} bytes; a line holds at most {MAX_TEXT_BYTES:,}"
            )
        line = line.rstrip("\r\n")
        if not line.strip():
            if self.output is not ShellFormat.json:
                return "", None
            return "", ShellError("the line is empty: nothing to look up")
        if not line.startswith(":"):
            return "neighbors", line
        name, _, rest = line[1:].partition(" ")
        command = name.strip().lower()
        if command in ("quit", "q", "exit"):
            return None
        return command, rest

    def _neighbors_query(self, command: str, rest: Any) -> Any:
        """The query of a neighbours line (text, or a ShellError for it), else None."""
        if command in ("neighbors", "n"):
            return rest if rest.strip() else ShellError("give the text to look up: :neighbors TEXT")
        if command == "id":
            try:
                return _int_arg(rest, ":id N")
            except ShellError as exc:
                return exc
        return None

    def _flush(self, queries: list[Any]) -> None:
        """Answer a run of neighbour queries with one batch, each line's result or error in
        input order."""
        if not queries:
            return
        from ..errors import TokneighError

        valid: list[Any] = []
        for _, q in queries:
            if isinstance(q, ShellError):
                continue
            try:
                self.emb.query_tokens(q)
                valid.append(q)
            except TokneighError:
                pass
        answers = iter(
            self._guarded(
                "neighbors",
                lambda: self.emb.neighbors_many(valid, k=self.top, filters=self.filters),
                quiet=True,
            )
            or []
        )
        for command, q in queries:
            if isinstance(q, ShellError):
                self.error(command, q)
            elif q in valid:
                result = next(answers, None)
                if result is None:  # the batch itself failed: answer this line alone
                    self._guarded(command, partial(self._show_one, q))
                else:
                    self.show("neighbors", result)
            else:
                self._guarded(command, partial(self._show_one, q))  # reports its error

    def _show_one(self, query: Any) -> None:
        self.show("neighbors", self.emb.neighbors(query, k=self.top, filters=self.filters))

    def _dispatch(self, command: str, rest: Any) -> None:
        if isinstance(rest, ShellError):
            raise rest
        handler = self._commands.get(command)
        if handler is None:
            raise ShellError(f"unknown command :{command} (type :help for the list)")
        handler(rest)

    def _guarded(self, command: str, action: Callable[[], Any], quiet: bool = False) -> Any:
        """Run one line's action; a bad line is reported and the loop goes on."""
        from ..errors import TokneighError

        try:
            return action()
        except (TokneighError, ShellError) as exc:
            if not quiet:
                self.error(command or "neighbors", exc)
        except BrokenPipeError:  # `tokneigh shell | head`: the reader left, so must we
            raise
        except Exception as exc:  # never let one line end the session
            if not quiet:
                self.error(command or "neighbors", exc, internal=True)
        return None

    def error(self, command: str, exc: BaseException, internal: bool = False) -> None:
        from .errors import describe

        if internal:
            message = f"internal error: {exc.__class__.__name__}: {exc}"
        elif isinstance(exc, ShellError):
            message = str(exc)
        else:
            message = describe(exc)[0]  # type: ignore[arg-type]
        error_line(message)
        if self.output is ShellFormat.json:
            # Scripts read one object per line: keep the outputs in step with the inputs.
            self.emit({"command": command, "error": " ".join(message.split())})

    # --- commands ---------------------------------------------------------------------------

    def cmd_neighbors(self, text: str) -> None:
        self._flush([("neighbors", self._neighbors_query("neighbors", text))])

    def cmd_id(self, rest: str) -> None:
        self._flush([("id", self._neighbors_query("id", rest))])

    def cmd_compare(self, rest: str) -> None:
        a, b = _args(rest, 2, ":compare A B")
        self.show("compare", self.emb.compare(a, b, filters=self.filters))

    def cmd_tokenize(self, rest: str) -> None:
        texts = _args(rest, None, ":tokenize TEXT")
        self.show("tokenize", self.emb.vocabulary.tokenize_all(texts))

    def cmd_analogy(self, rest: str) -> None:
        a, b, c = _args(rest, 3, ":analogy A B C")
        self.show("analogy", self.emb.analogy(a, b, c, k=self.top, filters=self.filters))

    def cmd_top(self, rest: str) -> None:
        if rest.strip():
            self.top = _int_arg(rest, ":top N", minimum=1)
        self.notice("top", {"top": self.top}, f"showing {self.top} neighbours per query")

    def cmd_model(self, rest: str) -> None:
        name = rest.strip()
        if name:
            # A failure keeps the current model.
            self.emb = self.loader(name, self.embeddings, self.metric)
        self.notice("model", self._describe(), self._banner())

    def cmd_embeddings(self, rest: str) -> None:
        kind = rest.strip().lower()
        if kind:
            if kind not in ("input", "output"):
                raise ShellError(f"embeddings are 'input' or 'output', not {kind!r}")
            self.emb = self.loader(self.emb.model, kind, self.metric)
            self.embeddings = kind
        self.notice("embeddings", self._describe(), self._banner())

    def cmd_vector(self, rest: str) -> None:
        from ..analyses.vectors import load_vector

        [spec] = _args(rest, 1, ":vector FILE.npy[:ROW]")
        result = self.emb.neighbors(load_vector(spec), k=self.top, filters=self.filters)
        self.show("neighbors", result)

    def cmd_centroid(self, rest: str) -> None:
        result = self.emb.neighbors(self.emb.centroid(), k=self.top, filters=self.filters)
        self.show("neighbors", result)

    def cmd_metric(self, rest: str) -> None:
        name = rest.strip().lower()
        if name:
            self.emb = self.emb.under(name)  # a bad name keeps the current metric
            self.metric = self.emb.metric.name
        self.notice("metric", self._describe(), self._banner())

    def cmd_help(self, rest: str) -> None:
        text = COMMANDS.format(top=self.top)
        if self.output is ShellFormat.json:
            self.emit({"command": "help", "help": text})
        else:
            self.write(text + "\n")

    # --- output -----------------------------------------------------------------------------

    def show(self, command: str, result: Any) -> None:
        """One result, as every command renders it (``render.emit``): in JSON mode the
        command's own object plus ``"command"``, on one line."""
        from ..present.render import emit

        if self.output is ShellFormat.json:
            emit(result, "json", command=command)
            sys.stdout.flush()
        else:
            emit(result, "table", console=self.console)

    def _describe(self) -> dict[str, Any]:
        return {
            "model": self.emb.model,
            "embeddings": getattr(self.emb, "embeddings", "input"),
            "metric": self.metric,
            "vocab_size": self.emb.vocab_size,
            "dim": self.emb.dim,
        }

    def _banner(self) -> str:
        from ..results import model_label

        kind = getattr(self.emb, "embeddings", "input")
        return (
            f"{model_label(self.emb.model)} ({kind} embeddings) · {self.emb.vocab_size:,} "
            f"tokens × {self.emb.dim} dims · top {self.top}"
            + ("" if self.metric == "cosine" else f" · {self.metric}")
        )

    def notice(self, command: str, data: dict[str, Any], text: str) -> None:
        """A settings change: an object in JSON mode; on a terminal a line on stderr; from a
        pipe, in table mode, nothing (it is not a result)."""
        if self.output is ShellFormat.json:
            self.emit({"command": command, **data})
        elif self.interactive:
            print(f"tokneigh: {text}", file=sys.stderr, flush=True)

    def emit(self, data: dict[str, Any]) -> None:
        """One compact JSON object on one line (JSON Lines)."""
        from ..results.json import json_text

        self.write(json_text(data) + "\n")

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            class _Console(Console):
                def on_broken_pipe(self) -> None:
                    # Rich would exit(1) here; the shell stops the same way for tables and JSON.
                    self.quiet = True
                    raise BrokenPipeError

            # From a pipe: no colour and no bold, whatever stdout is (color_system=None).
            kwargs: dict[str, Any] = {} if self.interactive else {"color_system": None}
            self._console = _Console(highlight=False, soft_wrap=False, **kwargs)
        return self._console


def _args(rest: str, count: int | None, usage: str) -> list[str]:
    import shlex  # only when a command has arguments: every tokneigh run imports this module

    try:
        args = shlex.split(rest)
    except ValueError as exc:  # an unclosed quote
        raise ShellError(f"cannot split the arguments ({exc}): expected {usage}") from exc
    if (count is not None and len(args) != count) or not args:
        raise ShellError(f"expected {usage}")
    return args


def _int_arg(rest: str, usage: str, minimum: int | None = None) -> int:
    text = rest.strip()
    try:
        value = int(text)
    except ValueError:
        raise ShellError(f"expected a whole number: {usage}") from None
    if minimum is not None and value < minimum:
        raise ShellError(f"expected a number of at least {minimum}: {usage}")
    return value


# --- input ------------------------------------------------------------------------------------


class TooLong:
    """A line over the size limit, dropped as it was read (memory stays bounded)."""

    def __init__(self, size: int) -> None:
        self.size = size


def _pipe_batches(fd: int) -> Iterator[list[str | None | TooLong]]:
    """Lines from a non-terminal stdin, in batches of those already waiting (so a coprocess
    that writes one line and waits still gets each answer before it sends the next). Each line
    is decoded, None when it is not UTF-8, or TooLong past ``MAX_TEXT_BYTES``."""
    import select

    from ..api.vocabulary import MAX_TEXT_BYTES

    pending = bytearray()
    dropped = 0  # bytes of an overlong line thrown away so far
    ended = False
    batch: list[str | None | TooLong] = []

    def waiting() -> bool:
        return bool(select.select([fd], [], [], 0)[0])

    while True:
        # Block for the first line; then take more only while more is already there.
        if not ended and (not batch or (len(batch) < BATCH_LINES and waiting())):
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                ended = True
            pending += chunk
            while True:
                at = pending.find(b"\n")
                if at < 0:
                    break
                if dropped:
                    batch.append(TooLong(dropped + at))
                    dropped = 0
                else:
                    batch.append(_decode(bytes(pending[:at])))
                del pending[: at + 1]
            if ended and (pending or dropped):
                batch.append(
                    TooLong(dropped + len(pending)) if dropped else _decode(bytes(pending))
                )
                pending.clear()
                dropped = 0
            if len(pending) > MAX_TEXT_BYTES:  # no newline yet: drop it, remember its size
                dropped += len(pending)
                pending.clear()
            continue
        if batch:
            yield batch
            batch = []
        elif ended:
            return


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _history(cache_dir: Path | None) -> Path | None:
    from ..store.layout import resolve_root

    try:
        return resolve_root(cache_dir) / HISTORY_FILE
    except Exception:  # no usable cache root: a session without history
        return None


def _interactive_loop(sh: Shell, cache_dir: Path | None) -> None:
    try:
        import readline  # noqa: F401  (input() gains line editing and history)
    except ImportError:  # pragma: no cover - Python built without readline
        readline = None  # type: ignore[assignment]
    path = _history(cache_dir)
    if readline is not None and path is not None:
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(str(path))
        except OSError:  # first session, or unreadable: start empty
            pass
    print(
        f"tokneigh shell · {sh._banner()}\n"
        "Type text for its nearest tokens, :help for commands, :quit or Ctrl-D to leave.",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            try:
                line = input("tokneigh> ")
            except EOFError:
                print(file=sys.stderr)
                return
            except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does
                print(file=sys.stderr)
                continue
            try:
                if not sh.run_line(line):
                    return
            except KeyboardInterrupt:  # Ctrl-C stops a slow query, not the session
                error_line("interrupted")
    finally:
        if readline is not None and path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(str(path))
            except OSError:  # a read-only cache root: history is a convenience
                pass


def shell(
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, metavar="N", help="How many neighbours per query.")
    ] = 10,
    output: Annotated[
        ShellFormat,
        typer.Option(
            "--format",
            "-f",
            metavar="table|json",
            case_sensitive=False,
            help="table for people; json for scripts (one JSON object per input line).",
        ),
    ] = ShellFormat.table,
    include_special: IncludeSpecialOption = False,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    kind = embeddings.value
    # A model that cannot load ends the command, as elsewhere.
    emb = load(model, cache_dir, kind, metric)
    interactive = sys.stdin.isatty()
    sh = Shell(
        emb,
        top=top,
        output=output,
        interactive=interactive,
        loader=lambda name, which, how: load(name, cache_dir, which, how),
        embeddings=kind,
        skip_special=not include_special,
        metric=emb.metric.name,
    )
    try:
        if interactive:
            _interactive_loop(sh, cache_dir)
            return
        for batch in _pipe_batches(sys.stdin.fileno()):
            if not sh.run_lines(batch):
                break
    except BrokenPipeError:
        # `tokneigh shell | head`: the reader left. Stop quietly, and point stdout at /dev/null
        # so that the interpreter's last flush cannot fail again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def register(app: typer.Typer) -> None:
    app.command("shell", cls=HelpCommand, help=help_text(HELP))(shell)
