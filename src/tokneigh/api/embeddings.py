"""The Python API: ``load`` a model's cached embeddings, then ask for neighbours and similarities.

    emb = tokneigh.load("gpt2")
    emb.neighbors("Mike", k=20).neighbors[0].token      # '" Mike"'-style results
    emb.tokenize("banana").tokens                        # ['ban', 'ana']
    emb.similarity("ban", "ana")

Results are the dataclasses of ``tokneigh.results``. A query is text (tokenized by the model's
own tokenizer; several tokens mean the mean of their unit vectors) or an ``int`` token id.
Which tokens a ranking may list is one ``Filters`` value.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analyses.filters import NO_FILTERS, Filters
from ..errors import EmptyQueryError, TokenIdError, UsageError
from ..reporting import WARNING, Message, Progress, Report, info, level_of, note
from ..results import (
    Comparison,
    Hubness,
    HubToken,
    MostSimilar,
    Neighbor,
    NeighborGraph,
    NeighborList,
    Query,
    SpaceStats,
    Tokenization,
    Tokenizations,
    TokenMap,
    Variant,
    VectorSource,
    Verification,
)
from ..sources.models import DEFAULT_MODEL, ModelSource, resolve
from ..space import core
from ..space.metrics import COSINE, Metric, parse_metric
from ..store import derived, entries, files, layout

if TYPE_CHECKING:
    from ..results import NeighborhoodDiff, TokenScan
    from ..tokens.codec import TokenCodec
    from .vectors import VectorQuery

QueryLike = str | int
# Text, a token id, or a vector (an array, or a ``vectors.VectorQuery`` that names its file).
AnyQuery = Any

# Similarities closer than this are a tie: float32 rounding alone can order them either way.
TIE = 1e-6


# The longest text a query or tokenize takes, in UTF-8 bytes: tokenizing 10 MB would take
# gigabytes and minutes; no word or passage worth a neighbour list comes near 1 MB.
MAX_TEXT_BYTES = 1_000_000


class _Log:
    """The "tokneigh" logger, with ``logging`` imported on first use (~5 ms a cached query
    would otherwise pay for nothing)."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("tokneigh"), name)


log = _Log()


def _text_in_message(text: str) -> str:
    # A 100,000-character query must not become a 100,000-character error line.
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


class Vocabulary:
    """A model's tokenizer, and how its tokens are shown."""

    def __init__(self, model: str, codec: TokenCodec) -> None:
        self.model = model
        self.codec = codec

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` exactly as the model's tokenizer does, without special tokens."""
        if not isinstance(text, str):
            raise UsageError(f"expected text, got {type(text).__name__}")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # lone surrogates, e.g. from undecodable argv bytes
            raise UsageError(
                f"{text[exc.start]!r} at position {exc.start} is not valid Unicode text"
            ) from exc
        if size > MAX_TEXT_BYTES:
            raise UsageError(
                f"the text has {size:,} bytes; a text holds at most {MAX_TEXT_BYTES:,}"
            )
        return self.tokenization(text, self.codec.encode(text))

    def tokenize_all(self, texts: Sequence[str]) -> Tokenizations:
        """Each text, and how its space-prefixed variant splits (the seed's two sentences)."""
        if any(not t for t in texts):
            raise UsageError("a text to tokenize is empty")
        items = [self.tokenize(t) for t in texts]
        spaced = [None if t.startswith(" ") else self.tokenize(" " + t) for t in texts]
        return Tokenizations(items, spaced)

    def tokenization(self, text: str, ids: list[int]) -> Tokenization:
        shown = [self.codec.shown(i) for i in ids]
        return Tokenization(
            text=text, ids=ids, tokens=[t for t, _ in shown], labels=[label for _, label in shown]
        )




class Embeddings:
    """One model's token embeddings, memory-mapped from the cache, compared under one metric
    (cosine unless ``under`` says otherwise)."""

    def __init__(
        self,
        entry: entries.Entry,
        metric: Metric = COSINE,
        space: np.ndarray | None = None,
        radius: np.ndarray | None = None,
    ) -> None:
        self._entry = entry
        self.metric = metric
        # The unit rows the metric compares: the cached matrix, or its centred (and ABTT)
        # version; for csls, r(t) of every row as well.
        self._radius = radius
        self.meta: dict[str, Any] = entry.meta
        self.model: str = entry.meta["model"]
        self.vocab_size: int = entry.meta["vocab_size"]
        self.dim: int = entry.meta["dim"]
        self.unit = entry.unit if space is None else space  # unit rows, read-only
        self.norms = entry.norms  # raw row norms
        self.codec = entry.codec
        self.vocabulary = Vocabulary(self.model, entry.codec)
        # Which matrix this is: "input" (token embeddings) or "output" (an untied LM head).
        self.embeddings: str = entry.meta.get("embeddings", "input")
        self.built_seconds = entry.built_seconds  # set when this load built the entry
        # How a GGUF file stored the matrix ("Q8_0"); None for safetensors and full precision.
        self.quantization: str | None = entries.quantization_of(entry.meta)
        self._specials: np.ndarray | None = None  # codec.special_among(vocab_size), on first use
        # Rows with no direction (NaN/Inf values, all zero): never ranked, never a query.
        bad = entry.meta.get("unusable_rows", {})
        self._non_finite = frozenset(bad.get("non_finite", ()))
        self._zero = frozenset(bad.get("zero", ()))
        self.unusable = np.asarray(sorted(self._non_finite | self._zero), dtype=np.int64)

    @property
    def path(self) -> Path:
        """The cache folder this model is served from."""
        return self._entry.path

    def __repr__(self) -> str:
        metric = "" if self.metric == COSINE else f", metric={self.metric.name!r}"
        return f"Embeddings({self.model!r}, vocab_size={self.vocab_size}, dim={self.dim}{metric})"

    # --- metrics ----------------------------------------------------------------------------

    def under(
        self,
        metric: str | Metric | None,
        *,
        report: Report | None = None,
        progress: Progress | None = None,
    ) -> Embeddings:
        """These embeddings compared under another metric: ``cosine``, ``centered``,
        ``abtt[:D]`` or ``csls[:K]`` (see ``tokneigh.space.metrics``). What the metric needs (the
        centred or ABTT matrix, CSLS's r over an all-pairs pass) is computed once and kept
        in the cache entry, so later loads pay only for reading it."""
        chosen = parse_metric(metric, self.dim, self.vocab_size - int(self.unusable.size))
        if chosen == self.metric:
            return self
        if chosen == COSINE:
            return Embeddings(self._entry)
        say = report or _log_report
        usable = np.ones(self.vocab_size, dtype=bool)
        usable[self.unusable] = False
        entry = self._entry
        name = f"metric-{chosen.file_stem}.npy"
        if chosen.transforms:
            from ..space.metrics import transformed

            space = derived.read_array(
                entry, name, (self.vocab_size, self.dim), np.float32, say
            )
            if space is None:
                space = transformed(chosen, entry.unit, entry.norms, usable)
                derived.save(entry, name, space, say)
            return Embeddings(entry, chosen, space=space)
        from ..space.metrics import csls_radius

        radius = derived.read_array(entry, name, (self.vocab_size,), np.float64, say)
        if radius is None:
            say(
                info(
                    f"computing {chosen.name}'s r for {int(usable.sum()):,} tokens (an "
                    "all-pairs pass, once per model)"
                )
            )
            radius = csls_radius(entry.unit, np.flatnonzero(usable), chosen.param or 10, progress)
            derived.save(entry, name, radius, say)
        return Embeddings(entry, chosen, radius=radius)

    def resident(self) -> Embeddings:
        """These embeddings with the matrix they compare copied into memory (see
        ``files.in_memory``): faster products, for a process that answers many queries."""
        return Embeddings(
            self._entry, self.metric, space=files.in_memory(self.unit), radius=self._radius
        )

    def _query_radius(self, vectors: np.ndarray, parsed: Sequence[Query | None]) -> list[float]:
        """CSLS's r of each query: a one-token query's cached r, else the mean cosine of the
        vector's K nearest rows."""
        assert self._radius is not None and self.metric.param is not None
        out: list[float] = []
        for vector, tokens in zip(vectors, parsed):
            if tokens is not None and len(tokens.ids) == 1:
                out.append(float(self._radius[tokens.ids[0]]))
                continue
            k = min(self.metric.param, self.vocab_size - int(self.unusable.size))
            [(_, scores)] = core.rank_many(self.unit, vector[None, :], k, [self.unusable])
            out.append(float(scores.mean()))
        return out

    def _rank(
        self,
        vectors: np.ndarray,
        parsed: Sequence[Query | None],
        k: int,
        exclude: Sequence[np.ndarray],
        select: Sequence[core.Selector | None],
        min_score: float | None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``core.rank_many`` under this metric."""
        if self._radius is None:
            return core.rank_many(self.unit, vectors, k, exclude, select, min_score)
        return core.rank_many(
            self.unit,
            vectors,
            k,
            exclude,
            select,
            min_score,
            radius=self._radius,
            query_radius=self._query_radius(vectors, parsed),
        )

    # --- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` exactly as the model's tokenizer does, without special tokens."""
        return self.vocabulary.tokenize(text)

    def query_tokens(self, query: QueryLike) -> Query:
        """The token ids a query stands for, validated against the embedding matrix."""
        if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
            token_id = int(query)
            if not 0 <= token_id < self.vocab_size:
                raise TokenIdError(token_id, self.vocab_size)
            self._check_usable([token_id], f"token #{token_id}")
            text, label = self._shown(token_id)
            return Query(None, token_id, [token_id], [text or ""], [label])
        if not isinstance(query, str):
            raise UsageError(f"a query is text or a token id, not {type(query).__name__}")
        if not query.strip():
            raise EmptyQueryError("the query is empty or only whitespace")
        tokens = self.tokenize(query)
        if not tokens.ids:
            raise UsageError(f"{_text_in_message(query)} tokenizes to no tokens for {self.model}")
        beyond = [i for i in tokens.ids if i >= self.vocab_size]
        if beyond:
            raise UsageError(
                f"{_text_in_message(query)} has token id {beyond[0]}, beyond the embedding "
                f"matrix ({self.vocab_size} rows)"
            )
        self._check_usable(tokens.ids, _text_in_message(query))
        return Query(query, None, tokens.ids, tokens.tokens, tokens.labels)

    def _check_usable(self, ids: Sequence[int], what: str) -> None:
        for i in ids:
            if i in self._non_finite or i in self._zero:
                why = "holds NaN or infinite values" if i in self._non_finite else "is all zero"
                raise UsageError(
                    f"{what} cannot be ranked against: the embedding row of token id {i} {why}, "
                    "so it has no direction"
                )

    # --- vectors ----------------------------------------------------------------------------

    def vector(self, query: QueryLike) -> np.ndarray:
        """The unit vector of a query (the normalized mean of its tokens' unit vectors)."""
        return core.query_vector(self.unit, self.query_tokens(query).ids)

    def raw_vector(self, query: QueryLike) -> np.ndarray:
        """The raw embedding of a query (the mean of its tokens' raw rows)."""
        ids = self.query_tokens(query).ids
        unit = self._entry.unit  # the cached rows, whatever the metric compares
        return (unit[ids] * self.norms[ids, None]).mean(axis=0, dtype=np.float64)

    # --- similarity -------------------------------------------------------------------------

    def neighbors(
        self,
        query: AnyQuery,
        k: int = 20,
        exclude_query: bool = False,
        *,
        filters: Filters = NO_FILTERS,
        score: str = "cosine",
    ) -> NeighborList:
        """The ``k`` tokens nearest to ``query`` by cosine similarity (or the metric), best
        first. A query is text, a token id, or a vector (a 1-D numpy array of ``dim`` values,
        or a ``vectors.VectorQuery``; ``centroid()`` is the mean row).

        ``filters`` (none by default, so the API ranks every row) are applied to the ranking
        of the whole vocabulary before taking ``k``, and ranks run 1..k over what remains
        (fewer than ``k`` only when fewer tokens pass). ``exclude_query`` leaves the query's
        own tokens out. ``score="dot"`` ranks a vector by its raw product with the
        unnormalized rows (a readout through the output embeddings) instead of cosine.
        """
        return self.neighbors_many(
            [query], k=k, exclude_query=exclude_query, filters=filters, score=score
        )[0]

    def centroid(self) -> VectorQuery:
        """The mean raw row (of the rows with a direction), as a vector query."""
        from ..space.metrics import mean_row
        from .vectors import VectorQuery

        usable = np.ones(self.vocab_size, dtype=bool)
        usable[self.unusable] = False
        mean = mean_row(self._entry.unit, self.norms, usable)
        return VectorQuery(mean, VectorSource(centroid=True))

    def _parse(self, query: AnyQuery) -> tuple[Query, np.ndarray | None]:
        """A query's tokens, and for a vector query its (checked, float64) vector."""
        if isinstance(query, np.integer):
            query = int(query)
        if isinstance(query, (str, int)):  # the usual case: no import
            return self.query_tokens(query), None
        from .vectors import VectorQuery, checked

        if isinstance(query, np.ndarray):
            query = VectorQuery(np.asarray(query), VectorSource())
        if not isinstance(query, VectorQuery):
            return self.query_tokens(query), None  # refuses it, naming its type
        if self.metric.transforms:
            raise UsageError(
                f"a vector is ranked by cosine or csls, not {self.metric.name} (which "
                "compares transformed rows)"
            )
        return Query(None, None, [], [], [], query.origin), checked(query, self.dim)

    def neighbors_many(
        self,
        queries: Sequence[AnyQuery],
        k: int = 20,
        exclude_query: bool = False,
        *,
        filters: Filters = NO_FILTERS,
        score: str = "cosine",
    ) -> list[NeighborList]:
        """Neighbours of several queries at once (one matrix-matrix product per block), the
        same rows in the same order as each query asked alone."""
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        if score not in ("cosine", "dot"):
            raise UsageError(f"the score is 'cosine' or 'dot', not {score!r}")
        both = [self._parse(q) for q in queries]
        if not both:
            return []
        parsed = [tokens for tokens, _ in both]
        if score == "dot":
            if any(raw is None for _, raw in both):
                raise UsageError("dot products rank vector queries only (a vector or the centroid)")
            if self._radius is not None:
                raise UsageError(f"dot products are raw products, not {self.metric.name} scores")
        vectors = self._query_vectors(both)
        for tokens, vector in zip(parsed, vectors):
            if not vector.any():  # tokens whose unit vectors cancel out exactly
                raise UsageError(f"{tokens.shown}: the mean of its tokens' vectors is zero")
        # A query's own special token still answers: asking for <|endoftext|> finds it first.
        exclude = [
            self._left_out(filters, spared=t.ids, extra=t.ids if exclude_query else ())
            for t in parsed
        ]
        select = [self._selector(filters, k)] * len(parsed)
        if score == "dot":
            ranked = [
                self._rank_dot(raw, k, skip, chooser, filters.min_sim)
                for (_, raw), skip, chooser in zip(both, exclude, select)
                if raw is not None
            ]
        else:
            ranked = self._rank(vectors, parsed, k, exclude, select, filters.min_sim)
        hidden = self._hidden_count(filters, exclude)
        results = []
        for tokens, vector, (ids, scores), n_hidden in zip(parsed, vectors, ranked, hidden):
            skip = tokens.ids if exclude_query else ()
            results.append(
                NeighborList(
                    query=tokens.text,
                    query_id=tokens.token_id,
                    query_ids=tokens.ids,
                    query_tokens=tokens.tokens,
                    query_labels=tokens.labels,
                    model=self.model,
                    vocab_size=self.vocab_size,
                    dim=self.dim,
                    neighbors=self._neighbor_rows(ids, scores, vector, filters, skip),
                    dedupe=filters.dedupe,
                    hidden=n_hidden,
                    unusable=int(self.unusable.size),
                    metric=self.metric.name,
                    quantization=self.quantization,
                    vector=tokens.vector,
                    score=score,
                )
            )
        return results

    def _query_vectors(self, both: Sequence[tuple[Query, np.ndarray | None]]) -> np.ndarray:
        """The unit query vector of each query: tokens as ``core.query_vectors`` makes them
        (the same bits in any batch), vectors normalized."""
        out = np.empty((len(both), self.dim), dtype=np.float32)
        token_rows = [i for i, (_, raw) in enumerate(both) if raw is None]
        if token_rows:
            out[token_rows] = core.query_vectors(self.unit, [both[i][0].ids for i in token_rows])
        for i, (_, raw) in enumerate(both):
            if raw is not None:
                out[i] = core.unit_vector(raw)
        return out

    def _rank_dot(
        self,
        raw: np.ndarray,
        k: int,
        exclude: np.ndarray,
        select: core.Selector | None,
        min_score: float | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank by the raw product with the unnormalized rows (each rebuilt as unit row x
        norm), float64 on the shortlist as every ranking is."""
        unit, norms = self._entry.unit, self.norms
        row = (unit @ raw.astype(np.float32)) * norms  # float32: only a shortlist
        vector = np.asarray(raw, dtype=np.float64)

        def rescore(ids: np.ndarray) -> np.ndarray:
            rows = unit[ids].astype(np.float64)
            return np.einsum("wd,d->w", rows, vector) * norms[ids].astype(np.float64)

        # core's shortlist margin is absolute, made for cosines: scale the scores into
        # [-1, 1] by a power of two (exact in floating point, so the order is kept bit for
        # bit), rank, and report the unscaled products.
        finite = np.abs(row[np.isfinite(row)])
        scale = 2.0 ** np.ceil(np.log2(max(float(finite.max()) if finite.size else 1.0, 1e-30)))
        ids, _ = core.top_k_selected(
            row / np.float32(scale),
            k,
            select,
            exclude,
            None if min_score is None else min_score / scale,
            lambda chosen: rescore(chosen) / scale,
            owned=True,
        )
        return ids, rescore(ids)

    def similarity(self, a: QueryLike, b: QueryLike) -> float:
        """The similarity of two queries under this metric (cosine by default)."""
        if self._radius is None:
            return core.cosine(self.vector(a), self.vector(b))
        return self.compare(a, b).similarity

    def rank(self, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS) -> int:
        """Where ``b`` stands among ``a``'s neighbours, 1-based, as ``neighbors(a)`` with
        the same ``filters`` lists them (only ``skip_special`` applies)."""
        return self.compare(a, b, filters=filters).rank_of_b

    def compare(self, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS) -> Comparison:
        """Cosine, angle, Pearson correlation, raw norms and rank of b among a's neighbours.

        ``rank_of_b`` counts what ``neighbors(a, filters=filters)`` would list before b, plus
        one: b's own rank, or where it would stand if that list leaves it out (a special
        token) or it is not one row (a text of several tokens). Of the filters only
        ``skip_special`` applies.
        """
        tokens_a, tokens_b = self.query_tokens(a), self.query_tokens(b)
        unit_a = core.query_vector(self.unit, tokens_a.ids)
        unit_b = core.query_vector(self.unit, tokens_b.ids)
        for tokens, vector in ((tokens_a, unit_a), (tokens_b, unit_b)):
            if not vector.any():  # tokens whose unit vectors cancel out exactly
                raise UsageError(f"{tokens.shown}: the mean of its tokens' vectors is zero")
        cos = core.cosine(unit_a, unit_b)
        row = core.scores_for(self.unit, unit_a)  # a fresh array: ours to mask
        rescore: core.Rescore = functools.partial(core.exact_scores, self.unit, unit_a)
        score = cos
        if self._radius is not None:
            r_a, r_b = self._query_radius(np.stack([unit_a, unit_b]), [tokens_a, tokens_b])
            row = 2 * row - self._radius - r_a
            rescore = functools.partial(core.csls_scores, self.unit, unit_a, self._radius, r_a)
            score = 2.0 * cos - r_a - r_b
        row[self._left_out(filters, spared=tokens_a.ids)] = -np.inf
        if len(tokens_b.ids) == 1:
            # b's score as `neighbors a` reports it, the same number to the last bit; b
            # competes even when the list would leave it out (a special token).
            b_id = tokens_b.ids[0]
            cos = float(core.exact_scores(self.unit, unit_a, np.asarray([b_id]))[0])
            score = float(rescore(np.asarray([b_id]))[0])
            rank = core.rank_of(row, rescore, b_id, score)
        else:
            rank = core.rank_of(row, rescore, None, score)
        raw_a, raw_b = self.raw_vector(a), self.raw_vector(b)
        return Comparison(
            a=tokens_a,
            b=tokens_b,
            model=self.model,
            cosine=cos,
            angle_degrees=core.angle_degrees(cos),
            pearson=core.pearson(raw_a, raw_b),
            norm_a=float(np.linalg.norm(raw_a)),
            norm_b=float(np.linalg.norm(raw_b)),
            rank_of_b=rank,
            metric=self.metric.name,
            similarity=score,
        )

    # --- expressions: analogies and most_similar ----------------------------------------------

    def most_similar(
        self,
        positive: QueryLike | Sequence[QueryLike] = (),
        negative: QueryLike | Sequence[QueryLike] = (),
        k: int = 10,
        *,
        exclude_input: bool = True,
        filters: Filters = NO_FILTERS,
    ) -> MostSimilar:
        """The tokens nearest to sum(positive) - sum(negative), as gensim's ``most_similar``.

        Each term is a query (text or id) represented by its unit vector (a multi-token word:
        the normalized mean of its tokens' unit vectors); the sum is normalized before ranking.
        ``most_similar(positive=["king", "woman"], negative=["man"])`` is king - man + woman.
        The terms' own tokens are left out unless ``exclude_input=False``.
        """
        return self._expression(_terms(positive), _terms(negative), k, exclude_input, filters)

    def analogy(
        self,
        a: QueryLike,
        b: QueryLike,
        c: QueryLike,
        k: int = 10,
        *,
        exclude_input: bool = True,
        filters: Filters = NO_FILTERS,
    ) -> MostSimilar:
        """The analogy "a is to b as c is to ?": the tokens nearest to b - a + c.

        ``analogy("man", "king", "woman")`` is ``most_similar(positive=["king", "woman"],
        negative=["man"])``.
        """
        return self._expression([b, c], [a], k, exclude_input, filters, analogy=True)

    def _expression(
        self,
        positive: list[QueryLike],
        negative: list[QueryLike],
        k: int,
        exclude_input: bool,
        filters: Filters,
        analogy: bool = False,
    ) -> MostSimilar:
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        pos = [self.query_tokens(q) for q in positive]
        neg = [self.query_tokens(q) for q in negative]
        if not pos and not neg:
            raise UsageError("give at least one positive or negative term")
        vector = core.expression_vector(
            [core.query_vector(self.unit, t.ids) for t in pos],
            [core.query_vector(self.unit, t.ids) for t in neg],
        )
        if not vector.any():
            raise UsageError("the terms cancel out: their sum is the zero vector, nothing to rank")
        inputs = sorted({i for t in pos + neg for i in t.ids}) if exclude_input else []
        left_out = self._left_out(filters, extra=inputs)
        [(ids, scores)] = self._rank(
            vector[None, :], [None], k, [left_out], [self._selector(filters, k)], filters.min_sim
        )
        [hidden] = self._hidden_count(filters, [left_out])
        return MostSimilar(
            positive=pos,
            negative=neg,
            model=self.model,
            vocab_size=self.vocab_size,
            dim=self.dim,
            neighbors=self._neighbor_rows(ids, scores, vector, filters, inputs),
            dedupe=filters.dedupe,
            hidden=hidden,
            unusable=int(self.unusable.size),
            analogy=analogy,
            metric=self.metric.name,
        )

    # --- the seed's lesson: loop against vectorized ------------------------------------------

    def verify(self, query: QueryLike, k: int = 10, repeats: int = 5) -> Verification:
        """Score ``query`` against every raw row twice: one row at a time in a Python loop
        (``core.scores_loop``) and with one matrix-vector product over the normalized matrix,
        and report how far the two agree and how long each took.

        The raw rows are rebuilt from the cache (unit row x stored norm), a block at a time so
        that memory stays bounded on large vocabularies.
        """
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        tokens = self.query_tokens(query)
        unit = self._entry.unit  # the loop checks the cosine of the cached rows, any metric
        vector = core.query_vector(unit, tokens.ids)
        if not vector.any():
            raise UsageError(
                f"{tokens.shown} has an all-zero embedding: its cosine with anything is undefined"
            )
        k = min(k, self.vocab_size)
        started = time.perf_counter()
        looped = core.scores_loop(self._raw_rows(), vector)
        loop_seconds = time.perf_counter() - started
        vectorized_seconds = float("inf")
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            scores = core.scores_for(unit, vector)
            vectorized_seconds = min(vectorized_seconds, time.perf_counter() - started)
        vectorized = np.asarray(scores, dtype=np.float64)
        # Rows with no direction take part in neither ranking nor in the comparison.
        usable = np.ones(self.vocab_size, dtype=bool)
        usable[self.unusable] = False
        looped, vectorized = looped[usable], vectorized[usable]
        ids_usable = np.flatnonzero(usable)
        k = min(k, int(usable.sum()))
        # The loop's ranking by a full stable sort, independently of the core's ranking.
        top_loop = [int(ids_usable[i]) for i in np.argsort(-looped, kind="stable")[:k]]
        looped_by_id = dict(zip(ids_usable.tolist(), looped.tolist()))
        # The vectorized ranking as `neighbors` lists it (no filter).
        [(ids, _)] = core.rank_many(unit, vector[None, :], k, [self.unusable])
        top_vec = [int(i) for i in ids]
        # Tokens that tie in exact arithmetic ("ban" and "ana" against their own mean) may be
        # ordered by rounding, which differs between the two methods: count, don't fail.
        differing = [(a, b) for a, b in zip(top_loop, top_vec) if a != b]
        swaps = sum(1 for a, b in differing if abs(looped_by_id[a] - looped_by_id[b]) <= TIE)
        if looped.std() > 0 and vectorized.std() > 0:
            pearson = float(np.corrcoef(looped, vectorized)[0, 1])
        else:  # a one-row vocabulary: correlation is undefined, agreement is what counts
            pearson = 1.0 if np.allclose(looped, vectorized, atol=1e-6) else 0.0
        return Verification(
            query=tokens,
            model=self.model,
            vocab_size=self.vocab_size,
            dim=self.dim,
            k=k,
            pearson=pearson,
            max_abs_diff=float(np.max(np.abs(looped - vectorized))),
            top_k_identical=bool(top_loop == top_vec),
            top_k_agree=bool(swaps == len(differing)),
            top_k_tied_swaps=swaps,
            top_k_loop=top_loop,
            top_k_vectorized=top_vec,
            loop_seconds=loop_seconds,
            vectorized_seconds=vectorized_seconds,
            speedup=loop_seconds / vectorized_seconds if vectorized_seconds > 0 else float("inf"),
        )

    def _raw_rows(self, block: int = 4096) -> Iterator[np.ndarray]:
        for start in range(0, self.vocab_size, block):
            stop = start + block
            yield from self._entry.unit[start:stop] * self.norms[start:stop, None]

    # --- pictures ----------------------------------------------------------------------------

    def map(self, query: QueryLike, k: int = 30, *, filters: Filters = NO_FILTERS) -> TokenMap:
        """``query`` and its ``k`` nearest tokens projected to 2-D by PCA of their unit vectors
        (``core.pca_2d``); the query's own tokens are left out of the neighbours."""
        result = self.neighbors(query, k=k, exclude_query=True, filters=filters)
        if not result.neighbors:
            raise UsageError("no token passes the filters: nothing to map")
        query_vector = core.query_vector(self.unit, result.query_ids)
        rows = self.unit[np.asarray([n.id for n in result.neighbors], dtype=np.int64)]
        coords, share = core.pca_2d(np.vstack([query_vector[None, :], rows]))
        return TokenMap(
            result=result,
            query_xy=(float(coords[0, 0]), float(coords[0, 1])),
            points=[(float(x), float(y)) for x, y in coords[1:]],
            explained=(float(share[0]), float(share[1])),
        )

    # --- the whole vocabulary ----------------------------------------------------------------

    def graph_rows(self, include_special: bool = False) -> np.ndarray:
        """The token ids a whole-vocabulary computation covers: every row with a direction,
        special tokens only when ``include_special``."""
        keep = np.ones(self.vocab_size, dtype=bool)
        keep[self.unusable] = False
        if not include_special:
            keep[self._special_ids()] = False
        return np.flatnonzero(keep)

    def graph(
        self,
        k: int = 10,
        *,
        include_special: bool = False,
        progress: Progress | None = None,
        report: Report | None = None,
    ) -> NeighborGraph:
        """The exact ``k`` nearest tokens of every token under this metric, self excluded,
        as ``neighbors`` would list each one (special tokens left out on both sides unless
        ``include_special``). One all-pairs pass (``tokneigh.space.allpairs``), kept in the cache
        entry: ``hubness`` and a second ``graph`` read it."""
        from ..space.allpairs import knn_all_pairs

        rows = self.graph_rows(include_special)
        if not 1 <= k <= rows.size - 1:
            raise UsageError(
                f"k must be between 1 and {rows.size - 1:,} (the tokens ranked, less the token "
                f"itself), got {k}"
            )
        say = report or _log_report
        name = f"graph-{self.metric.file_stem}-k{k}{'-special' if include_special else ''}.npz"

        def check(arrays: dict[str, np.ndarray]) -> None:
            ids, nbrs, sims = arrays["ids"], arrays["neighbors"], arrays["similarities"]
            if not np.array_equal(ids, rows):
                raise ValueError("its rows are not this entry's rows")
            if nbrs.shape != (rows.size, k) or sims.shape != (rows.size, k):
                raise ValueError("its arrays have the wrong shape")
            if nbrs.dtype != np.int64 or sims.dtype != np.float64:
                raise ValueError("its arrays have the wrong type")
            if ((nbrs < 0) | (nbrs >= self.vocab_size)).any() or not np.isfinite(sims).all():
                raise ValueError("it holds impossible values")

        cached = derived.read_arrays(self._entry, name, check, say)
        if cached is not None:
            return NeighborGraph(
                self.model,
                self.metric.name,
                k,
                include_special,
                cached["ids"],
                cached["neighbors"],
                cached["similarities"],
                0.0,
                cached=True,
            )
        started = time.perf_counter()
        neighbors, similarities = knn_all_pairs(
            self.unit, rows, k, radius=self._radius, progress=progress
        )
        seconds = time.perf_counter() - started
        arrays = {"ids": rows, "neighbors": neighbors, "similarities": similarities}
        derived.save(self._entry, name, arrays, say)
        return NeighborGraph(
            self.model, self.metric.name, k, include_special, rows, neighbors, similarities, seconds
        )

    def hubness(
        self,
        k: int = 10,
        *,
        include_special: bool = False,
        hubs: int = 10,
        progress: Progress | None = None,
        report: Report | None = None,
        graph: NeighborGraph | None = None,
    ) -> Hubness:
        """k-occurrence N_k of every token (how many tokens list it among their k nearest,
        from ``graph``) and its skewness, the largest N_k, the share of anti-hubs (N_k = 0),
        and the ``hubs`` tokens with the largest N_k (ties by lower id)."""
        if hubs < 0:
            raise UsageError(f"the number of hubs to list must be at least 0, got {hubs}")
        if graph is None:
            graph = self.graph(
                k, include_special=include_special, progress=progress, report=report
            )
        counts = np.bincount(graph.neighbors.ravel(), minlength=self.vocab_size)[graph.ids]
        order = np.lexsort((graph.ids, -counts))[:hubs]
        listed = []
        for i in order.tolist():
            token_id = int(graph.ids[i])
            text, label = self._shown(token_id)
            listed.append(HubToken(token_id, text, label, int(counts[i])))
        return Hubness(
            model=self.model,
            k=graph.k,
            metric=graph.metric,
            tokens=int(graph.ids.size),
            skewness=skewness(counts),
            max=int(counts.max()),
            antihub_share=float(np.count_nonzero(counts == 0) / counts.size),
            hubs=listed,
            occurrences=counts,
        )

    def stats(
        self,
        *,
        pairs: int = 100_000,
        seed: int = 0,
        include_special: bool = False,
        components: int = 10,
    ) -> SpaceStats:
        """The space's shape under this metric: anisotropy (the mean similarity of a seeded
        sample of ``pairs`` pairs of distinct tokens, Ethayarajh 2019), the raw rows' norms,
        the share of variance along the top ``components`` principal components of the
        vectors the metric compares, and how many rows are hidden or special."""
        from ..space.metrics import principal_axes

        if pairs < 1:
            raise UsageError(f"the number of pairs to sample must be at least 1, got {pairs}")
        rows = self.graph_rows(include_special)
        if rows.size < 2:
            raise UsageError("fewer than two tokens to measure")
        rng = np.random.default_rng(seed)
        first = rng.integers(0, rows.size, pairs)
        second = rng.integers(0, rows.size - 1, pairs)
        second += second >= first  # never the same token twice
        a, b = rows[first], rows[second]
        cos = np.einsum(
            "ij,ij->i", self.unit[a].astype(np.float64), self.unit[b].astype(np.float64)
        )
        if self._radius is not None:
            cos = 2 * cos - self._radius[a] - self._radius[b]
        norms = self.norms[rows].astype(np.float64)
        chosen = np.zeros(self.vocab_size, dtype=bool)
        chosen[rows] = True
        ones = np.ones(self.vocab_size, dtype=np.float32)
        mean = self.unit[rows].astype(np.float64).mean(axis=0)
        values = principal_axes(self.unit, ones, chosen, mean)[0]
        total = float(values.sum())
        shares = [float(v / total) if total > 0 else 0.0 for v in values[:components]]
        return SpaceStats(
            model=self.model,
            metric=self.metric.name,
            tokens=int(rows.size),
            anisotropy=float(cos.mean()),
            sample_pairs=pairs,
            seed=seed,
            norms={
                "mean": float(norms.mean()),
                "std": float(norms.std()),
                "min": float(norms.min()),
                "max": float(norms.max()),
            },
            top_pc_variance=shares,
            hidden_rows=int(self.unusable.size),
            special_rows=int(self._special_ids().size),
        )

    # --- filters -----------------------------------------------------------------------------

    def _left_out(
        self, filters: Filters, spared: Sequence[int] = (), extra: Sequence[int] = ()
    ) -> np.ndarray:
        """The ids left out of one ranking: special tokens (with ``skip_special``) other than
        ``spared``, and ``extra``. Masked out of the scores before the top k is taken."""
        out = self._special_ids() if filters.skip_special else _NO_IDS
        if self.unusable.size:
            out = np.concatenate([out, self.unusable])
        if filters.skip_special and any(self.codec.is_special(i) for i in spared):
            keep = set(spared)
            out = np.asarray([i for i in out.tolist() if i not in keep], dtype=np.int64)
        if len(extra):
            out = np.concatenate([out, np.asarray(extra, dtype=np.int64)])
        return out

    def _hidden_count(self, filters: Filters, left_out: Sequence[np.ndarray]) -> list[int]:
        """How many special tokens each ranking left out (what a shortfall note names)."""
        if not filters.skip_special:
            return [0] * len(left_out)
        specials = self._special_ids()
        special = set(specials.tolist())  # sets, not np.isin/np.unique (they import numpy.ma)
        return [len(special.intersection(out.tolist())) for out in left_out]

    def _special_ids(self) -> np.ndarray:
        if self._specials is None:
            self._specials = np.asarray(self.codec.special_among(self.vocab_size), dtype=np.int64)
        return self._specials

    def _selector(self, filters: Filters, k: int) -> core.Selector | None:
        """The candidate filter for ``words_only`` and ``dedupe`` (special tokens are left out
        before, by ``_left_out``). Candidates come best first, so it stops once ``k`` are kept:
        later ones would be cut anyway."""
        if not (filters.words_only or filters.dedupe):
            return None
        codec = self.codec

        def select(candidates: np.ndarray) -> np.ndarray:
            kept: list[int] = []
            seen: set[str] = set()
            for i in candidates.tolist():
                if filters.words_only and not codec.has_letter(i):
                    continue
                if filters.dedupe:
                    key = codec.fold_key(i)
                    if key is not None:
                        if key in seen:
                            continue  # a variant of a better token already kept
                        seen.add(key)
                kept.append(i)
                if len(kept) == k:
                    break
            return np.asarray(kept, dtype=np.int64)

        return select

    def _neighbor_rows(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        vector: np.ndarray,
        filters: Filters,
        excluded: Sequence[int],
    ) -> list[Neighbor]:
        codec = self.codec
        groups = codec.fold_groups() if filters.dedupe else {}
        skip = set(excluded)
        rows = []
        for rank, (i, s) in enumerate(zip(ids.tolist(), scores.tolist()), start=1):
            variants = None
            if filters.dedupe:
                key = codec.fold_key(i)
                others = [v for v in groups.get(key, []) if v != i and v not in skip] if key else []
                others = [v for v in others if v < self.vocab_size]
                sims = (
                    core.exact_scores(self.unit, vector, np.asarray(others)).tolist()
                    if others
                    else []
                )
                variants = []
                for sim, v in sorted(zip(sims, others), key=lambda p: (-p[0], p[1])):
                    if filters.min_sim is None or sim >= filters.min_sim:
                        v_text, v_label = codec.shown(v)
                        variants.append(Variant(v, v_text, sim, v_label))
            text, label = self._shown(i)
            rows.append(Neighbor(rank, i, text, s, label, codec.is_special(i), variants))
        return rows

    def token_text(self, token_id: int) -> str | None:
        """The decoded text of a token id (None for a row the tokenizer names no token for)."""
        return self._shown(token_id)[0]

    def token_shown(self, token_id: int) -> tuple[str | None, str]:
        """(decoded text or None, the label tables show) of a token id."""
        return self._shown(token_id)

    @property
    def csls_radius(self) -> np.ndarray | None:
        """Under ``csls``: r(t) of every row (the mean cosine of its K nearest); else None."""
        return self._radius

    def query_radius(self, vectors: np.ndarray, queries: Sequence[Query | None]) -> list[float]:
        """Under ``csls``: r of each unit query vector (a one-token query's cached r)."""
        return self._query_radius(vectors, queries)

    # --- under-trained tokens and model differences --------------------------------------

    def scan(
        self,
        indicator: str = "magikarp",
        *,
        reference: str | Sequence[int] | None = "auto",
        top: int = 20,
    ) -> TokenScan:
        """Tokens ranked from most to least likely under-trained (``tokneigh.analyses.scan``): give
        magikarp the output embeddings when the model has its own (``load(...,
        embeddings="output")``), norm and centroid the input ones."""
        from ..analyses.scan import scan

        return scan(self, indicator=indicator, reference=reference, top=top)

    def diff(
        self,
        other: Embeddings,
        words: Sequence[str] = (),
        *,
        sample: int = 0,
        seed: int = 0,
        k: int = 10,
        changed: int = 3,
    ) -> NeighborhoodDiff:
        """How neighbourhoods change from these embeddings to ``other`` (another model,
        the output matrix, another metric): overlap@k, Jaccard and Spearman's rho of ``words``
        and of a seeded sample of shared tokens (``tokneigh.analyses.diff``)."""
        from ..analyses.diff import compare_models

        return compare_models(
            self, other, words=words, sample=sample, seed=seed, k=k, changed=changed
        )

    def _shown(self, token_id: int) -> tuple[str | None, str]:
        """(text, label) of a row; text None for a row the tokenizer names no token for,
        labelled as padding when it lies beyond the tokenizer (Qwen2 and Phi pad the matrix
        to a multiple of 64 or 128 rows)."""
        text, label = self.codec.shown(token_id)
        if text == "" and self.codec.raw(token_id) is None:
            if token_id >= self.codec.size:
                return None, f"<padding #{token_id}>"
            return None, label
        return text, label


_NO_IDS = np.empty(0, dtype=np.int64)


def skewness(values: np.ndarray) -> float:
    """The skewness of a sample, E[(x - mean)^3] / std^3 (population moments, as Radovanović
    et al. define hubness); 0 when every value is the same."""
    x = np.asarray(values, dtype=np.float64)
    centred = x - x.mean()
    std = float(np.sqrt((centred**2).mean()))
    return float((centred**3).mean() / std**3) if std > 0 else 0.0


def _terms(terms: QueryLike | Sequence[QueryLike]) -> list[QueryLike]:
    # A lone string is one term, not a sequence of one-letter terms.
    if isinstance(terms, (str, int, np.integer)):
        return [terms]  # type: ignore[list-item]
    return list(terms)


# --- loading ------------------------------------------------------------------------------


def _log_report(message: Message) -> None:
    if level_of(message) == WARNING:
        log.warning(getattr(message, "text", message))
    else:
        log.info(message)


def _source(model: str | None) -> ModelSource:
    return resolve(model or os.environ.get("TOKNEIGH_MODEL") or DEFAULT_MODEL)


def load(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    report: Report | None = None,
    embeddings: str = "input",
    metric: str | Metric | None = None,
    progress: Progress | None = None,
) -> Embeddings:
    """Load a model's embeddings from the cache, extracting and caching them on first use.

    ``model`` is a hub id or a local checkpoint folder (default ``$TOKNEIGH_MODEL`` or gpt2).
    ``report`` receives progress and warning lines (the CLI prints them on stderr); without
    it they go to the ``tokneigh`` logger. ``embeddings="output"`` serves the output matrix (the
    LM head) when the model has one of its own, cached separately; for a tied model it says so
    and serves the input matrix, which is the same. ``metric`` compares them under another
    metric than cosine (``Embeddings.under``); ``progress`` follows a long first computation.
    """
    from ..errors import TiedEmbeddings

    if embeddings not in layout.EMBEDDINGS_KINDS:
        raise UsageError(f"embeddings must be 'input' or 'output', not {embeddings!r}")
    source = _source(model)
    root = layout.resolve_root(cache_dir)
    say = report or _log_report
    try:
        entry = entries.get(source, root, embeddings, rebuild=rebuild, report=say)
    except TiedEmbeddings as exc:
        say(
            note(
                f"{source.name} has no separate output embeddings ({exc}): input and output "
                "are the same matrix; serving the input embeddings"
            )
        )
        entry = entries.get(source, root, "input", rebuild=rebuild, report=say)
    emb = Embeddings(entry)
    return emb if metric is None else emb.under(metric, report=say, progress=progress)


def load_vocabulary(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    report: Report | None = None,
) -> Vocabulary:
    """A model's tokenizer alone: from its cache entry when there is one, else read from the
    checkpoint (no embedding matrix is extracted, nothing is cached)."""
    import json
    import tempfile

    from ..formats.extract import read_tokenizer
    from ..tokens.codec import TokenCodec
    from ..tokens.display import detect_style

    source = _source(model)
    codec = entries.open_tokenizer(source, layout.resolve_root(cache_dir))
    if codec is None:
        tokenizer_json, special_ids = read_tokenizer(source, report or _log_report)
        style = detect_style(json.loads(tokenizer_json))
        # The codec reads its file once, when it is made: a scratch folder is enough.
        with tempfile.TemporaryDirectory(prefix="tokneigh-") as scratch:
            path = Path(scratch) / layout.TOKENIZER
            path.write_text(tokenizer_json, encoding="utf-8", errors="surrogatepass")
            codec = TokenCodec(path, style, special_ids)
    return Vocabulary(source.name, codec)
