"""Composed tokens: for each token of A that B lacks (unmatched by the rule), B's estimate of
it as the mean of B's rows of the pieces B's tokenizer splits its text into (FVT: Gale et
al.'s "Fast Vocabulary Transfer", Gee et al., EMNLP 2022), and how close A's vector, mapped by
the alignment, comes to that estimate. A cheap test of whether the map means anything beyond
the tokens it was fitted on: the same measure on the held-out matched tokens is the baseline.

- The text is the token's decoded text as the matching rule spells it (a word start as a
  leading space: GPT-2's "Ġking" and WordPiece's "king" are " king"); a byte fragment has no
  text and is skipped, as is a text B's tokenizer reads with its unknown token or as a row
  with no direction.
- B's rows are its cached unit rows (each piece weighs the same, whatever its norm); their
  mean is prepared as the fitted pairs were (centred on B's mean row of the shared tokens,
  made unit), and compared by cosine with A's row prepared and mapped (``fitting.mapped``).
  A held-out matched token B reads as one piece is compared with its own row: its cosine is
  its aligned cosine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..results import Composed, ComposedToken, CosineSpread
from ..tokens.matching import TEXT, match_key

if TYPE_CHECKING:
    from .view import SpaceView


def pieces(a: SpaceView, b: SpaceView, token_id: int) -> tuple[str, list[int]] | None:
    """(A's token's text, B's ids of it), or None when it has no estimate (see above)."""
    key = match_key(a.codec, token_id)
    if key is None or key[0] != TEXT or not isinstance(key[1], str) or not key[1]:
        return None
    ids = b.codec.encode(key[1])
    if not ids or b.codec.unknown_positions(key[1], ids):
        return None
    if any(i >= b.vocab_size or i in b.non_finite or i in b.zero for i in ids):
        return None
    return key[1], ids


def estimate(b: SpaceView, ids: list[int], mean_b: np.ndarray) -> np.ndarray:
    """B's FVT estimate of a token (the mean of its pieces' unit rows), prepared as the fitted
    rows were (float64)."""
    mean = np.asarray(b.cached_unit[np.asarray(ids)], dtype=np.float64).mean(axis=0)
    centred = mean - mean_b
    size = np.linalg.norm(centred)
    return centred / size if size > 0 else centred


def composed_cosines(
    a: SpaceView,
    b: SpaceView,
    ids_a: np.ndarray,
    mapped_rows: np.ndarray,
    mean_b: np.ndarray,
) -> tuple[list[int], list[str], list[list[int]], np.ndarray, int]:
    """For each of ``ids_a`` (A's prepared rows mapped: ``mapped_rows``) that has an estimate:
    (ids, texts, B's pieces, cosine with the estimate), and how many had none."""
    kept_ids: list[int] = []
    texts: list[str] = []
    split: list[list[int]] = []
    cosines: list[float] = []
    for token_id, row in zip(ids_a.tolist(), mapped_rows):
        found = pieces(a, b, token_id)
        if found is None:
            continue
        text, ids = found
        kept_ids.append(token_id)
        texts.append(text)
        split.append(ids)
        cosines.append(float(np.dot(row.astype(np.float64), estimate(b, ids, mean_b))))
    skipped = int(ids_a.size) - len(kept_ids)
    return kept_ids, texts, split, np.asarray(cosines, dtype=np.float64), skipped


def spread(cosines: np.ndarray) -> CosineSpread | None:
    if cosines.size == 0:
        return None
    q1, median, q3 = np.quantile(cosines, [0.25, 0.5, 0.75]).tolist()
    return CosineSpread(int(cosines.size), float(cosines.mean()), q1, median, q3)


def composed(
    a: SpaceView,
    b: SpaceView,
    unmatched: np.ndarray,
    held_out: np.ndarray,
    mapped_of: Callable[[np.ndarray], np.ndarray],
    mean_b: np.ndarray,
    listed: int,
) -> Composed:
    """The composed tokens' summary (``unmatched``: A's usable, non-special tokens B lacks),
    the baseline of the ``held_out`` matched tokens of A, and the ``listed`` tokens whose
    estimate agrees least with the map (lowest cosine first; ties by the lower id in A)."""
    ids, texts, split, cosines, skipped = composed_cosines(
        a, b, unmatched, mapped_of(unmatched), mean_b
    )
    _, _, base_split, base, _ = composed_cosines(a, b, held_out, mapped_of(held_out), mean_b)
    order = np.lexsort((np.asarray(ids, dtype=np.int64), cosines))[:listed]
    tokens = [
        ComposedToken(
            id_a=ids[i],
            token=texts[i],
            label_a=a.shown(ids[i])[1],
            ids_b=split[i],
            labels_b=[b.shown(j)[1] for j in split[i]],
            cosine=float(cosines[i]),
        )
        for i in order.tolist()
    ]
    return Composed(
        unmatched=int(unmatched.size),
        skipped=skipped,
        composed=spread(cosines),
        baseline=spread(base),
        baseline_single=sum(len(s) == 1 for s in base_split),
        tokens=tokens,
    )
