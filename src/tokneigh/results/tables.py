"""What a person reads, as neutral values (``Table``, lines of text) any renderer can draw,
and the formatting that several results' titles and cells share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..sources.models import model_label  # re-exported: titles name a model as this says
from .notebook import described, html_of

__all__ = ["Column", "Human", "Table", "model_label", "quoted"]


@dataclass(slots=True)
class Column:
    name: str
    numeric: bool = False  # right-aligned and never wrapped


@dataclass(slots=True)
class Table:
    """A titled table of display strings, in a form any renderer can draw."""

    title: str
    columns: list[Column]
    rows: list[list[str]]
    subtitle: list[str] = field(default_factory=list)  # lines under the title

    def __repr__(self) -> str:
        return described(
            "Table", ("title", self.title), ("columns", len(self.columns)), ("rows", len(self.rows))
        )

    def _repr_html_(self) -> str:
        return html_of([self])


Human = list["Table | str"]  # tables, and lines of plain text


def quoted(text: str) -> str:
    """A query text as a person reads it: in double quotes, control characters escaped."""
    return json.dumps(text, ensure_ascii=False)


# Titles stay readable for any query: a 15,000-token text must not become a page-long title.
_TITLE_TEXT = 80
_TITLE_PIECES = 8


def short_quoted(text: str) -> str:
    """A query text for a title: quoted, cut to 80 characters."""
    shown = quoted(text)
    return shown if len(shown) <= _TITLE_TEXT else shown[: _TITLE_TEXT - 2] + '…"'


def joined_pieces(labels: Sequence[str]) -> str:
    """Token labels joined by ' + ', the first 8 and how many more."""
    if len(labels) <= _TITLE_PIECES:
        return " + ".join(labels)
    return " + ".join(labels[:_TITLE_PIECES]) + f" + … ({len(labels) - _TITLE_PIECES} more)"


def score_text(value: float) -> str:
    """A similarity or score as a cell shows it."""
    return f"{value:.3f}"


def shape_text(vocab_size: int, dim: int) -> str:
    """A matrix's shape as titles show it."""
    return f"{vocab_size:,} tokens × {dim} dims"


def with_metric(title: str, metric: str) -> str:
    """A title with the metric appended, unless it is plain cosine."""
    return title if metric == "cosine" else f"{title} · {metric}"
