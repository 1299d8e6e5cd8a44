"""Output: one ``emit`` for every command and the shell. It writes any result of
``tokneigh.results`` as a Rich table for people, JSON, TSV or CSV for scripts.

JSON, TSV and CSV never import Rich (it costs start-up time and scripts do not need it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO

from ..errors import TokneighError
from ..results import Human, Table
from ..results.json import json_text

FORMATS = ("table", "json", "tsv", "csv")


class OutputError(TokneighError):
    """The results cannot be written: standard output is on a full device, closed, or broken."""


def output_error(exc: OSError | None) -> OutputError:
    """The OutputError for a failed write (None: there is no standard output at all)."""
    reason = "standard output is closed" if exc is None else (exc.strerror or str(exc))
    return OutputError(f"cannot write the output ({reason})")


class Renderable(Protocol):
    def to_json(self) -> Any: ...

    def tsv(self) -> tuple[list[str], list[list[Any]]]: ...

    def human(self) -> Human: ...


def emit(
    result: Renderable,
    fmt: str = "table",
    *,
    command: str | None = None,
    console: Any = None,
    stream: TextIO | None = None,
) -> None:
    """Write ``result`` in ``fmt``. With ``command`` (the shell's JSON Lines), the JSON is one
    compact object, the result's own object plus ``"command"`` (a list goes under ``"items"``).
    ``console`` is a Rich console to draw tables with (the shell keeps one).

    Flushed before it returns: a stream that cannot be written raises OutputError (a reader
    that left raises BrokenPipeError, which is not an error)."""
    out = stream or sys.stdout
    if out is None:  # the process was started with its standard output closed
        raise output_error(None)
    try:
        _emit(result, fmt, command, console, out)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise output_error(exc) from exc


def _emit(result: Renderable, fmt: str, command: str | None, console: Any, out: TextIO) -> None:
    if fmt == "json":
        data = result.to_json()
        if command is not None:
            data = (
                {"command": command, **data}
                if isinstance(data, dict)
                else {
                    "command": command,
                    "items": data,
                }
            )
            out.write(json_text(data) + "\n")
        else:
            # Indented for a person at a terminal, one compact line for a pipe.
            out.write(json_text(data, indent=out.isatty()) + "\n")
    elif fmt == "tsv":
        header, rows = result.tsv()
        write_tsv(header, rows, out)
    elif fmt == "csv":
        header, rows = result.tsv()
        write_csv(header, rows, out)
    else:
        write_human(result.human(), console=console, stream=out)


def tsv_field(value: Any) -> str:
    """One TSV cell: backslash, tab, newline and carriage return escaped as \\\\, \\t, \\n, \\r;
    booleans as true/false; None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_tsv(header: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    lines = ["\t".join(header)]
    lines += ["\t".join(tsv_field(v) for v in row) for row in rows]
    out.write(_safe("\n".join(lines) + "\n"))


def csv_field(value: Any) -> str:
    """One CSV cell: the value itself, as in TSV but never escaped (the csv module quotes
    it); booleans as true/false, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """RFC 4180: the TSV's header and rows, comma-separated, a field quoted ("...", a quote
    doubled) when it holds a comma, a quote, a carriage return or a line feed; every record
    ends in CRLF. CRLF, not LF: with an LF terminator Python's csv module leaves a lone CR
    unquoted, and every reader takes that CR for the end of the record."""
    import csv  # only when CSV is asked for: a cached query imports nothing it does not use
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # QUOTE_MINIMAL, '"' doubled
    writer.writerow(header)
    writer.writerows([csv_field(v) for v in row] for row in rows)
    out.write(_safe(buffer.getvalue()))


def _safe(text: str) -> str:
    # Output is UTF-8; undecodable argv bytes arrive as lone surrogates.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- for people --------------------------------------------------------------------------------


def write_human(blocks: Human, *, console: Any = None, stream: TextIO | None = None) -> None:
    """Tables through Rich, lines as plain text (a line-only result never imports Rich)."""
    out = stream or sys.stdout
    for block in blocks:
        if isinstance(block, Table):
            console = console or make_console(out)
            draw_table(block, console)
        else:
            if console is not None:
                console.file.flush()
            out.write(_safe(block) + "\n")


def make_console(stream: TextIO | None = None, color: bool | None = None) -> Any:
    from rich.console import Console

    kwargs: dict[str, Any] = {} if color is not False else {"color_system": None}
    return Console(file=stream, highlight=False, soft_wrap=False, **kwargs)


def draw_table(table: Table, console: Any) -> None:
    """A results Table as a Rich table under a title that wraps at the terminal's width.

    Token and number cells are never cut: number columns keep their full width and text
    columns fold onto further lines, at any width from 30 columns up.
    """
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text, not str: Rich would parse a str for markup and emoji ("[CLS]" is not markup).
    console.print(Text(_safe(table.title), style="bold", overflow="fold"))
    for line in table.subtitle:
        console.print(Text(_safe("  " + line), style="bold", overflow="fold"))
    widths = [
        max([len(c.name)] + [len(row[i]) for row in table.rows])
        for i, c in enumerate(table.columns)
    ]
    fixed = sum(w + 3 for w, c in zip(widths, table.columns) if c.numeric) + 1
    narrow = console.width < fixed + 3 * sum(1 for c in table.columns if not c.numeric) + 12
    rich = RichTable(
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
        padding=(0, 0 if narrow else 1),
        collapse_padding=narrow,
        show_edge=not narrow,
    )
    for column, width in zip(table.columns, widths):
        if column.numeric:
            rich.add_column(
                Text(column.name), justify="right", no_wrap=True, min_width=width, max_width=width
            )
        else:
            rich.add_column(Text(column.name), overflow="fold")
    for row in table.rows:
        rich.add_row(*(Text(_safe(cell)) for cell in row))
    console.print(rich)
