"""What a notebook shows of a result: a one-line ``repr`` (the class and the facts that name it,
never an array or a list of thousands of ids) and ``_repr_html_``, the result's ``human()``
tables as compact HTML.

Every string is escaped: token texts and query texts are anybody's, and a notebook runs the
HTML it is given. Standard library only at run time: ``tables`` and ``tokens`` use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

# The shapes of ``tables.Column`` and ``tables.Table``, which use this module: a protocol, not
# an import, keeps the package free of import cycles.


class _Column(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def numeric(self) -> bool: ...


class _Table(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def columns(self) -> Sequence[_Column]: ...
    @property
    def rows(self) -> Sequence[Sequence[str]]: ...
    @property
    def subtitle(self) -> Sequence[str]: ...


# A notebook cell that holds 30,000 rows is unusable: past these, the HTML says what it left out
# (all of it is in to_json()).
MAX_ROWS = 200
MAX_BLOCKS = 50

_TEXT = 60  # characters of a text shown in a repr
_LEFT = ' style="text-align:left;white-space:pre-wrap"'  # tokens keep their spaces
_RIGHT = ' style="text-align:right"'


class Shown(str):
    """A fact already written as the repr shows it (``#5``, ``0.612``): not quoted again."""

    __slots__ = ()


def cut(text: str, limit: int = _TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def term(text: str | None, token_id: int | None, vector: str | None) -> Shown:
    """A query in a repr: its text as a Python string, ``#N`` for a token id, ``<the centroid>``
    or ``<vector FILE:ROW>`` for a vector (``vector``: how titles name it)."""
    if vector is not None:
        return Shown(f"<{_safe(cut(vector))}>")
    if text is None:
        return Shown(f"#{token_id}")
    return Shown(repr(cut(text)))


def number(value: float, digits: int = 3) -> Shown:
    return Shown("nan" if value != value else f"{value:.{digits}f}")


def described(name: str, *facts: tuple[str, Any]) -> str:
    """``Name(key=value, ...)``: strings quoted (and cut), ``Shown`` values as written, None
    facts left out."""
    parts = []
    for key, value in facts:
        if value is None:
            continue
        if isinstance(value, Shown):
            shown = str(value)
        elif isinstance(value, str):
            shown = repr(cut(value))
        elif isinstance(value, float):
            shown = number(value)
        else:
            shown = repr(value)
        parts.append(f"{key}={shown}" if key else shown)
    return f"{name}({', '.join(parts)})"


def ids_shown(ids: list[int], limit: int = 8) -> Shown:
    """The first ``limit`` ids of a list, and how many more."""
    if len(ids) <= limit:
        return Shown(repr(ids))
    return Shown(f"[{', '.join(map(str, ids[:limit]))}, … {len(ids) - limit:,} more]")


# --- HTML ----------------------------------------------------------------------------------


def html_of(blocks: Sequence[_Table | str]) -> str:
    """``human()`` blocks as HTML: a table per Table (its title and subtitle lines in the
    caption), a ``<pre>`` per line of text. At most MAX_BLOCKS blocks, MAX_ROWS rows a table."""
    parts = ["<div>"]
    for block in blocks[:MAX_BLOCKS]:
        parts.append(_line(block) if isinstance(block, str) else _table(block))
    if len(blocks) > MAX_BLOCKS:
        left = len(blocks) - MAX_BLOCKS
        noun = "blocks" if any(isinstance(b, str) for b in blocks[MAX_BLOCKS:]) else "tables"
        parts.append(_line(f"… {left:,} more {noun} not shown (all of them: to_json())"))
    parts.append("</div>")
    return _safe("\n".join(parts))


def _table(table: _Table) -> str:
    from html import escape  # here: a CLI query never draws HTML

    caption = "<br>".join([f"<b>{escape(table.title)}</b>", *map(escape, table.subtitle)])
    aligns = [_RIGHT if c.numeric else _LEFT for c in table.columns]
    header = _row("th", (c.name for c in table.columns), aligns)
    body = [_row("td", row, aligns) for row in table.rows[:MAX_ROWS]]
    out = (
        f'<table><caption style="text-align:left">{caption}</caption>\n'
        f"<thead>{header}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>"
    )
    if len(table.rows) > MAX_ROWS:
        left = len(table.rows) - MAX_ROWS
        out += "\n" + _line(f"… {left:,} more rows not shown (all of them: to_json())")
    return out


def _row(tag: str, cells: Iterable[str], aligns: list[str]) -> str:
    from html import escape

    cells_html = "".join(f"<{tag}{a}>{escape(c)}</{tag}>" for c, a in zip(cells, aligns))
    return f"<tr>{cells_html}</tr>"


def _line(text: str) -> str:
    from html import escape

    return f"<pre>{escape(text)}</pre>"


def _safe(text: str) -> str:
    # A notebook sends the HTML as UTF-8 JSON: a lone surrogate (undecodable argv bytes in a
    # query) would fail there, so it is written as \udcff, as the CLI writes it.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
