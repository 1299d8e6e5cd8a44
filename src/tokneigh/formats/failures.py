"""How a reader quotes the exception that stopped it: on one line of an error message."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__
