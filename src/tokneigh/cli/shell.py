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
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

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
from .lines import decode
from .output import load
from .shell_output import ShellFormat
from .shell_session import Shell, TooLong

__all__ = ["Shell", "ShellFormat", "register", "shell"]

HELP = """Load a model once and answer many queries, one per line.

A line of text is a neighbours query (the whole line, leading spaces included: " Mike" and
"Mike" are different GPT-2 tokens). Commands: :compare A B, :tokenize TEXT, :analogy A B C,
:id N, :vector FILE[:ROW], :centroid, :top N, :model NAME, :embeddings input|output,
:metric M, :help, :quit (or Ctrl-D). Quote
arguments that hold spaces: :compare " Mike" "New York". #N in any query is token id N;
\\#N is the literal text "#N".

Special tokens are left out of neighbour lists and ranks unless --include-special, as in
`tokneigh neighbors`.

On a terminal: a prompt, line editing and history. From a pipe: no prompt, no colour, one
result block per line (one JSON object per line with --format json).

Examples:

  tokneigh shell --model gpt2

  printf 'Mike\\n:top 5\\nbanana\\n' | tokneigh shell --format json
"""

HISTORY_FILE = "shell_history"
HISTORY_LENGTH = 1000

# Lines already waiting in a pipe are answered together, at most this many at a time: one
# matrix-matrix product for a run of neighbour queries instead of one product per line.
BATCH_LINES = 256


# --- input ------------------------------------------------------------------------------------


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
                    batch.append(decode(bytes(pending[:at])))
                del pending[: at + 1]
            if ended and (pending or dropped):
                batch.append(TooLong(dropped + len(pending)) if dropped else decode(bytes(pending)))
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
        f"tokneigh shell · {sh.banner()}\n"
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
