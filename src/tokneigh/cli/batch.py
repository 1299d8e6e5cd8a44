"""``--queries FILE`` on neighbors, compare and analogy: one query (or one row of
TAB-separated queries) per line of a file, or of stdin with ``-``. Every line is answered; a
line that holds no query (blank, not UTF-8, too long, the wrong number of columns) or that
the model refuses is reported on stderr with its number, as the shell reports a bad line,
and the command exits non-zero once the others are written. ``#N`` and ``\\#`` read as in
every query (``analyses.queries.parse_query_text``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import error_line
from .lines import Line, TooLong, decode, line_problem

# A batch is a list of words, not a corpus: past these the file is refused whole.
MAX_QUERY_FILE_BYTES = 64 << 20
MAX_QUERY_LINES = 100_000

QueriesOption = Annotated[
    str | None,
    typer.Option(
        "--queries",
        metavar="FILE",
        help="Read the queries from FILE, one per line (- for stdin); a bad line is reported "
        "with its number and the others are still answered.",
        show_default=False,
    ),
]


def read_lines(spec: str) -> list[Line]:
    """The lines of ``spec`` (a path, or ``-`` for stdin), each decoded, None when it is not
    UTF-8, or TooLong past the size of a query. Only a regular file is opened (a FIFO or a
    device named as the file is refused, not waited on: ``sources.local_files``)."""
    from ..api.vocabulary import MAX_TEXT_BYTES
    from ..errors import UsageError
    from ..sources.local_files import NotAFile, open_regular

    if spec == "-":
        data = sys.stdin.buffer.read(MAX_QUERY_FILE_BYTES + 1)
        where = "stdin"
    else:
        where = spec
        try:
            with open_regular(Path(spec)) as handle:
                data = handle.read(MAX_QUERY_FILE_BYTES + 1)
        except NotAFile as exc:
            raise UsageError(f"--queries: {exc}") from None
        except FileNotFoundError:
            raise UsageError(f"--queries: {spec}: no such file") from None
        except OSError as exc:
            raise UsageError(f"--queries: {spec}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_QUERY_FILE_BYTES:
        raise UsageError(
            f"--queries: {where} holds more than {MAX_QUERY_FILE_BYTES:,} bytes; split it"
        )
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()  # the newline that ends the last line starts no other
    if not pieces:
        raise UsageError(f"--queries: {where} holds no lines")
    if len(pieces) > MAX_QUERY_LINES:
        raise UsageError(
            f"--queries: {where} has {len(pieces):,} lines; a batch holds at most "
            f"{MAX_QUERY_LINES:,}"
        )
    return [
        TooLong(len(raw)) if len(raw) > MAX_TEXT_BYTES else decode(raw.removesuffix(b"\r"))
        for raw in pieces
    ]


def rows(lines: Sequence[Line], columns: int, usage: str) -> list[list[str] | str]:
    """Each line's ``columns`` TAB-separated fields (one: the whole line, spaces kept), or
    why it holds none (a message)."""
    out: list[list[str] | str] = []
    for line in lines:
        problem = line_problem(line)
        if problem is not None:
            out.append(problem)
            continue
        assert isinstance(line, str)
        fields = [line] if columns == 1 else line.split("\t")
        if len(fields) != columns:
            out.append(
                f"the line has {len(fields)} TAB-separated column{'s' * (len(fields) != 1)}; "
                f"expected {columns}: {usage}"
            )
            continue
        out.append(fields)
    return out


class Failures:
    """The bad lines of a batch: each reported at once on stderr with its line number (the
    shell's wording, from ``cli.errors.describe``), and the exit code the batch ends with."""

    def __init__(self) -> None:
        self.code = 0

    def report(self, number: int, problem: str | BaseException) -> None:
        from .errors import USAGE_EXIT, describe

        if isinstance(problem, str):
            message, code = problem, USAGE_EXIT
        else:
            message, code = describe(problem, options=())  # the #N hint, no option's
        error_line(f"line {number}: {message}")
        self.code = max(self.code, code)

    def finish(self) -> None:
        """End the command with the worst line's exit code (after its output)."""
        if self.code:
            raise typer.Exit(self.code)


def answer_rows(
    parsed: Sequence[list[str] | str], answer: Callable[[list[str]], Any], failures: Failures
) -> list[Any]:
    """``answer(fields)`` for each good row, in order; each bad row or refused answer
    reported with its line number."""
    results: list[Any] = []
    for number, row in enumerate(parsed, 1):
        if isinstance(row, str):
            failures.report(number, row)
            continue
        try:
            results.append(answer(row))
        except BrokenPipeError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line's failure, reported; the rest go on
            failures.report(number, exc)
    return results
