"""`tokneigh shell`: load a model once, then answer many queries (like fastText's ``nn``).

A bare line is a neighbours query; lines starting with ``:`` are commands (``:help``). On a
terminal there is a prompt, line editing and history (stdlib ``readline``, history kept under
the cache root). From a pipe there is no prompt and no colour, and every input line gives one
result block (one JSON object with ``--format json``), so the shell can be scripted:

    printf 'Mike\\n:top 5\\nbanana\\n' | tokneigh shell --model gpt2 --format json

A bad line prints one error line on stderr and the loop goes on; end of input exits with 0.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    CacheDirOption,
    EmbeddingsOption,
    ModelOption,
    error_line,
    help_text,
    load,
)
from .filters import IncludeSpecialOption

HELP = """Load a model once and answer many queries, one per line.

A line of text is a neighbours query (the whole line, leading spaces included: " Mike" and
"Mike" are different GPT-2 tokens). Commands: :compare A B, :tokenize TEXT, :analogy A B C,
:id N, :top N, :model NAME, :embeddings input|output, :help, :quit (or Ctrl-D). Quote
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


class Shell:
    """The query loop's state and one-line dispatcher; ``run_line`` is what each line does."""

    def __init__(
        self,
        emb: Any,  # api.Embeddings (import kept lazy)
        *,
        top: int,
        output: ShellFormat,
        interactive: bool,
        loader: Callable[[str, str], Any],
        embeddings: str = "input",
        skip_special: bool = True,
    ) -> None:
        self.emb = emb
        self.skip_special = skip_special  # as the other commands: --include-special turns it off
        self.top = top
        self.output = output
        self.interactive = interactive
        self.loader = loader  # (model, embeddings) -> Embeddings, for :model and :embeddings
        self.embeddings = embeddings
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
            "help": self.cmd_help,
            "h": self.cmd_help,
            "?": self.cmd_help,
        }

    # --- the loop ---------------------------------------------------------------------------

    def run_line(self, line: str) -> bool:
        """Handle one input line; False when the shell should stop (:quit)."""
        from ..errors import TokneighError

        line = line.rstrip("\r\n")
        if not line.strip():
            return True  # a blank line asks nothing
        command = "neighbors"
        try:
            if line.startswith(":"):
                name, _, rest = line[1:].partition(" ")
                command = name.strip().lower()
                if command in ("quit", "q", "exit"):
                    return False
                handler = self._commands.get(command)
                if handler is None:
                    raise ShellError(f"unknown command :{name.strip()} (type :help for the list)")
                handler(rest)
            else:
                self.cmd_neighbors(line)
        except (TokneighError, ShellError) as exc:
            self.error(command, str(exc))
        except BrokenPipeError:  # `tokneigh shell | head`: the reader left, so must we
            raise
        except Exception as exc:  # never let one line end the session
            self.error(command, f"internal error: {exc.__class__.__name__}: {exc}")
        return True

    def error(self, command: str, message: str) -> None:
        error_line(message)
        if self.output is ShellFormat.json:
            # Scripts read one object per line: keep the outputs in step with the inputs.
            self.emit({"command": command, "error": " ".join(message.split())})

    # --- commands ---------------------------------------------------------------------------

    def cmd_neighbors(self, text: str) -> None:
        if not text.strip():
            raise ShellError("give the text to look up: :neighbors TEXT")
        self._show_neighbors(
            self.emb.neighbors(text, k=self.top, skip_special=self.skip_special)
        )

    def cmd_id(self, rest: str) -> None:
        token_id = _int_arg(rest, ":id N")
        self._show_neighbors(
            self.emb.neighbors(token_id, k=self.top, skip_special=self.skip_special)
        )

    def _show_neighbors(self, result: Any) -> None:
        from .. import render

        if self.output is ShellFormat.json:
            self.emit({"command": "neighbors", **render.neighbors_json(result)})
            return
        table = self._neighbor_table(render.query_title(result) + self._kind(), result.neighbors)
        self.console.print(table)

    def cmd_compare(self, rest: str) -> None:
        from .. import render

        a, b = _args(rest, 2, ":compare A B")
        c = self.emb.compare(a, b, skip_special=self.skip_special)
        if self.output is ShellFormat.json:
            self.emit({"command": "compare", **render.comparison_json(c)})
            return
        from rich.table import Table
        from rich.text import Text

        title = f"{json.dumps(a, ensure_ascii=False)} vs {json.dumps(b, ensure_ascii=False)}"
        title = f"{title} · {self.emb.model}{self._kind()}"
        table = Table(title=Text(_safe(title)), title_justify="left")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for name, value in (
            ("pieces of A", render.pieces(c.a)),
            ("pieces of B", render.pieces(c.b)),
            ("cosine similarity", f"{c.cosine:.3f}"),
            ("angle", f"{c.angle_degrees:.1f}°"),
            ("Pearson correlation (raw)", f"{c.pearson:.3f}"),
            ("norm of A (raw)", f"{c.norm_a:.3f}"),
            ("norm of B (raw)", f"{c.norm_b:.3f}"),
            ("rank of B among A's neighbours", f"{c.rank_of_b:,}"),
        ):
            table.add_row(name, Text(_safe(value)))
        self.console.print(table)

    def cmd_tokenize(self, rest: str) -> None:
        from .. import render

        texts = _args(rest, None, ":tokenize TEXT")
        if any(not t for t in texts):
            raise ShellError("a TEXT is empty")
        items = [self.emb.tokenize(t) for t in texts]
        if self.output is ShellFormat.json:
            data = [render.tokenization_json(t) for t in items]
            self.emit({"command": "tokenize", "items": data})
            return
        emb = self.emb
        spaced = [None if t.text.startswith(" ") else emb.tokenize(" " + t.text) for t in items]
        render.tokenize_lines(list(zip(items, spaced)))

    def cmd_analogy(self, rest: str) -> None:
        a, b, c = _args(rest, 3, ":analogy A B C")
        neighbors = self.emb.analogy(a, b, c, k=self.top, skip_special=self.skip_special).neighbors
        if self.output is ShellFormat.json:
            self.emit(
                {
                    "command": "analogy",
                    "a": a,
                    "b": b,
                    "c": c,
                    "model": self.emb.model,
                    "neighbors": [
                        {"rank": n.rank, "id": n.id, "token": n.token, "similarity": n.similarity}
                        for n in neighbors
                    ],
                }
            )
            return
        q = [json.dumps(t, ensure_ascii=False) for t in (a, b, c)]
        title = f"{q[0]} is to {q[1]} as {q[2]} is to ? ({q[1]} - {q[0]} + {q[2]})"
        title = f"{title} · {self.emb.model}{self._kind()}"
        self.console.print(self._neighbor_table(title, neighbors))

    def cmd_top(self, rest: str) -> None:
        if rest.strip():
            self.top = _int_arg(rest, ":top N", minimum=1)
        self.notice("top", {"top": self.top}, f"showing {self.top} neighbours per query")

    def cmd_model(self, rest: str) -> None:
        name = rest.strip()
        if name:
            self.emb = self.loader(name, self.embeddings)  # a failure keeps the current model
        self.notice("model", self._describe(), self._banner())

    def cmd_embeddings(self, rest: str) -> None:
        kind = rest.strip().lower()
        if kind:
            if kind not in ("input", "output"):
                raise ShellError(f"embeddings are 'input' or 'output', not {kind!r}")
            self.emb = self.loader(self.emb.model, kind)
            self.embeddings = kind
        self.notice("embeddings", self._describe(), self._banner())

    def cmd_help(self, rest: str) -> None:
        text = COMMANDS.format(top=self.top)
        if self.output is ShellFormat.json:
            self.emit({"command": "help", "help": text})
        else:
            self.write(text + "\n")

    # --- output -----------------------------------------------------------------------------

    def _kind(self) -> str:
        """A title suffix naming the matrix when it is not the usual input one."""
        kind = getattr(self.emb, "embeddings", "input")
        return "" if kind == "input" else f" · {kind} embeddings"

    def _describe(self) -> dict[str, Any]:
        return {
            "model": self.emb.model,
            "embeddings": getattr(self.emb, "embeddings", "input"),
            "vocab_size": self.emb.vocab_size,
            "dim": self.emb.dim,
        }

    def _banner(self) -> str:
        kind = getattr(self.emb, "embeddings", "input")
        return (
            f"{self.emb.model} ({kind} embeddings) · {self.emb.vocab_size:,} tokens × "
            f"{self.emb.dim} dims · top {self.top}"
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
        from .. import render

        self.write(render.json_text(data) + "\n")

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

    def _neighbor_table(self, title: str, neighbors: list[Any]) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(_safe(title)), title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("token")
        table.add_column("id", justify="right")
        table.add_column("cosine", justify="right")
        for n in neighbors:
            table.add_row(str(n.rank), Text(_safe(n.label)), str(n.id), f"{n.similarity:.3f}")
        return table


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


def _safe(text: str) -> str:
    # Rich writes UTF-8; undecodable input arrives as lone surrogates.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- input ------------------------------------------------------------------------------------


def _pipe_lines() -> Any:
    """Lines from a non-terminal stdin, read one at a time (a coprocess sees each answer before
    it sends the next line); a line that is not UTF-8 is reported and skipped."""
    stream = sys.stdin.buffer
    number = 0
    while True:
        raw = stream.readline()
        if not raw:
            return
        number += 1
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            error_line(f"input line {number} is not valid UTF-8; skipped")
            yield ""


def _history(cache_dir: Path | None) -> Path | None:
    from ..cache import resolve_root

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
        int, typer.Option("--top", "-k", min=1, help="How many neighbours per query.")
    ] = 10,
    output: Annotated[
        ShellFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="table for people; json for scripts (one JSON object per input line).",
        ),
    ] = ShellFormat.table,
    include_special: IncludeSpecialOption = False,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    kind = embeddings.value
    emb = load(model, cache_dir, kind)  # a model that cannot load ends the command, as elsewhere
    interactive = sys.stdin.isatty()
    sh = Shell(
        emb,
        top=top,
        output=output,
        interactive=interactive,
        loader=lambda name, which: load(name, cache_dir, which),
        embeddings=kind,
        skip_special=not include_special,
    )
    try:
        if interactive:
            _interactive_loop(sh, cache_dir)
            return
        for line in _pipe_lines():
            if not sh.run_line(line):
                break
    except BrokenPipeError:
        # `tokneigh shell | head`: the reader left. Stop quietly, and point stdout at /dev/null
        # so that the interpreter's last flush cannot fail again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def register(app: typer.Typer) -> None:
    app.command("shell", help=help_text(HELP))(shell)
