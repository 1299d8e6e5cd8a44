"""The tokens two models share, by the one matching rule (``tokneigh.tokens.matching``): what
``diff`` ranks and ``align`` fits on, so the two always agree on which tokens are shared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..results import TokenMatching
from ..tokens.matching import BYTES, SPECIAL, TEXT, Matched, match_tokens
from .whole import graph_rows

if TYPE_CHECKING:
    from .view import SpaceView


def match_views(a: SpaceView, b: SpaceView) -> Matched:
    """Every usable row of A paired with its match among B's usable rows (special tokens
    too, by name), ascending by A's id."""
    return match_tokens(
        a.codec, graph_rows(a, include_special=True), b.codec, graph_rows(b, include_special=True)
    )


def summary(matched: Matched) -> TokenMatching:
    """How many pairs each rule made, and the usable tokens of each side left unmatched."""
    pairs = int(matched.ids_a.size)
    return TokenMatching(
        text=matched.count(TEXT),
        bytes=matched.count(BYTES),
        special=matched.count(SPECIAL),
        unmatched_a=matched.candidates_a - pairs,
        unmatched_b=matched.candidates_b - pairs,
    )
