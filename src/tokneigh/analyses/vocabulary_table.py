"""The vocabulary table: every row of the matrix, what the tokenizer names it and what the
matrix holds there (``results.VocabularyTable``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results import VocabularyTable

if TYPE_CHECKING:
    from .view import SpaceView


def vocabulary_table(view: SpaceView) -> VocabularyTable:
    """Every row of ``view``'s matrix: its token and label (as neighbour lists show them),
    special (``SpaceView.special_ids``), unusable (``SpaceView.unusable``), reachable (the
    round trip ``scan`` makes: ``analyses.scan.reachability``), the raw norm, and padding
    (rows past the tokenizer's size)."""
    from .scan import reachability

    n = view.vocab_size
    ids = np.arange(n, dtype=np.int64)
    shown = [view.shown(i) for i in range(n)]
    special = np.zeros(n, dtype=bool)
    special[view.special_ids()] = True
    unusable = np.zeros(n, dtype=bool)
    unusable[view.unusable] = True
    # The cache keeps norm 0 for a row of NaN or infinite values (it has no direction): the
    # table says the norm is undefined there, not 0.
    norms = np.asarray(view.norms, dtype=np.float64).copy()
    norms[sorted(view.non_finite)] = np.nan
    tokenizer_size = min(int(view.codec.size), n)
    return VocabularyTable(
        model=view.model,
        embeddings=view.embeddings,
        vocab_size=n,
        tokenizer_size=tokenizer_size,
        dim=view.dim,
        ids=ids,
        tokens=[text for text, _ in shown],
        labels=[label for _, label in shown],
        special=special,
        unusable=unusable,
        reachable=reachability(view).reachable.copy(),
        norms=norms,
        padding=ids >= tokenizer_size,
    )
