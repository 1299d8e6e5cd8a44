"""``Embeddings``' tables of the whole vocabulary, a base class apart: the class itself stays
under 300 lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..analyses.view import SpaceView
    from ..results import VocabularyTable


class Tables:
    view: SpaceView  # set by Embeddings

    def vocabulary_table(self) -> VocabularyTable:
        """Every row of the matrix: id, token, label, special, unusable, reachable, norm and
        padding (``tokneigh.analyses.vocabulary_table``); ``to_pandas()`` makes it a frame."""
        from ..analyses.vocabulary_table import vocabulary_table

        return vocabulary_table(self.view)
