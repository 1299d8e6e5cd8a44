"""What every computation on one model's embeddings reads: ``SpaceView``.

The API builds one from a cache entry (``Embeddings.view``); the analyses take it, so they
never see the store or the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..space import core

if TYPE_CHECKING:
    from ..results import Query, Tokenization
    from ..space.metrics import Metric
    from ..tokens.codec import TokenCodec


class SpaceView:
    """One model's embeddings compared under one metric: the arrays, the tokenizer, and the
    rows no ranking may use."""

    def __init__(
        self,
        *,
        model: str,
        vocab_size: int,
        dim: int,
        unit: np.ndarray,
        cached_unit: np.ndarray,
        norms: np.ndarray,
        codec: TokenCodec,
        tokenize: Callable[[str], Tokenization],
        metric: Metric,
        radius: np.ndarray | None,
        non_finite: Iterable[int],
        zero: Iterable[int],
        embeddings: str,
        quantization: str | None,
        tokenizer_file: Path,
    ) -> None:
        self.model = model
        self.vocab_size = vocab_size
        self.dim = dim
        self.unit = unit  # the unit rows the metric compares (the cached ones, or transformed)
        self.cached_unit = cached_unit  # the cached unit rows, whatever the metric compares
        self.norms = norms  # raw row norms
        self.codec = codec
        self.tokenize = tokenize  # the model's tokenizer, with its limit on a text's size
        self.metric = metric
        self.radius = radius  # under csls: r(t) of every row (the mean cosine of its K nearest)
        # Which matrix this is: "input" (token embeddings) or "output" (an untied LM head).
        self.embeddings = embeddings
        # How a GGUF file stored the matrix ("Q8_0"); None for safetensors and full precision.
        self.quantization = quantization
        self.tokenizer_file = tokenizer_file  # the tokenizer.json the codec was made from
        # Rows with no direction (NaN/Inf values, all zero): never ranked, never a query.
        self.non_finite = frozenset(non_finite)
        self.zero = frozenset(zero)
        self.unusable = np.asarray(sorted(self.non_finite | self.zero), dtype=np.int64)
        self._specials: np.ndarray | None = None  # codec.special_among(vocab_size), on first use

    def special_ids(self) -> np.ndarray:
        if self._specials is None:
            self._specials = np.asarray(self.codec.special_among(self.vocab_size), dtype=np.int64)
        return self._specials

    def shown(self, token_id: int) -> tuple[str | None, str]:
        """(text, label) of a row; text None for a row the tokenizer names no token for,
        labelled as padding when it lies beyond the tokenizer (Qwen2 and Phi pad the matrix
        to a multiple of 64 or 128 rows)."""
        text, label = self.codec.shown(token_id)
        if text == "" and self.codec.raw(token_id) is None:
            if token_id >= self.codec.size:
                return None, f"<padding #{token_id}>"
            return None, label
        return text, label

    def query_radius(self, vectors: np.ndarray, parsed: Sequence[Query | None]) -> list[float]:
        """CSLS's r of each query: a one-token query's cached r, else the mean cosine of the
        vector's K nearest rows."""
        assert self.radius is not None and self.metric.param is not None
        out: list[float] = []
        for vector, tokens in zip(vectors, parsed):
            if tokens is not None and len(tokens.ids) == 1:
                out.append(float(self.radius[tokens.ids[0]]))
                continue
            k = min(self.metric.param, self.vocab_size - int(self.unusable.size))
            [(_, scores)] = core.rank_many(self.unit, vector[None, :], k, [self.unusable])
            out.append(float(scores.mean()))
        return out
