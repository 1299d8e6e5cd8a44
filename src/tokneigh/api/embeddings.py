"""The Python API: ``load`` a model's cached embeddings, then ask for neighbours and similarities.

    emb = tokneigh.load("gpt2")
    emb.neighbors("Mike", k=20).neighbors[0].token      # '" Mike"'-style results
    emb.tokenize("banana").tokens                        # ['ban', 'ana']
    emb.similarity("ban", "ana")

Results are the dataclasses of ``tokneigh.results``. A query is text (tokenized by the model's
own tokenizer; several tokens mean the mean of their unit vectors) or an ``int`` token id.
Which tokens a ranking may list is one ``Filters`` value.

``Embeddings`` answers through the analyses (``tokneigh.analyses``), which read a ``SpaceView``
of the cache entry; what it keeps in the cache entry (a metric's matrix, a graph) it reads and
writes here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analyses import queries, ranking
from ..analyses.filters import NO_FILTERS, Filters
from ..analyses.queries import AnyQuery, QueryLike
from ..analyses.view import SpaceView
from ..reporting import Progress, Report, info
from ..space.metrics import COSINE, Metric, parse_metric
from ..store import derived, entries, files
from .logreport import log_report
from .maps import MapMethods
from .pairs import Pairs
from .tables import Tables
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    from ..analyses.vectors import VectorQuery
    from ..results import (
        Comparison,
        Hubness,
        MostSimilar,
        NeighborGraph,
        NeighborList,
        Query,
        SpaceStats,
        Tokenization,
        TokenMap,
        TokenScan,
        Verification,
    )


class Embeddings(Tables, MapMethods, Pairs):
    """One model's token embeddings, memory-mapped from the cache, compared under one metric
    (cosine unless ``under`` says otherwise). ``view`` is what the analyses read of them.
    ``layout``, the map of the whole vocabulary, is ``MapMethods``'s (api/maps.py)."""

    def __init__(
        self,
        entry: entries.Entry,
        metric: Metric = COSINE,
        space: np.ndarray | None = None,
        radius: np.ndarray | None = None,
    ) -> None:
        self._entry = entry
        self.metric = metric
        self.meta: dict[str, Any] = entry.meta
        self.vocabulary = Vocabulary(entry.meta["model"], entry.codec)
        # The unit rows the metric compares: the cached matrix, or its centred (and ABTT)
        # version; for csls, r(t) of every row as well.
        self.view = view = _view(entry, metric, space, radius, self.vocabulary.tokenize)
        self.model, self.vocab_size, self.dim = view.model, view.vocab_size, view.dim
        self.unit = view.unit  # unit rows, read-only
        self.norms = view.norms  # raw row norms
        self.codec = view.codec
        self.embeddings = view.embeddings  # "input" or "output" (an untied LM head)
        self.built_seconds = entry.built_seconds  # set when this load built the entry
        self.quantization = view.quantization  # "Q8_0" for a GGUF file's quantized matrix
        self.unusable = view.unusable  # rows with no direction: never ranked, never a query
        self._copied: np.ndarray | None = None  # for a resident copy: the matrix it copies

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
        return _under(self._entry, self.unusable, chosen, report or log_report, progress)

    def resident(self, share: Iterable[Embeddings] = ()) -> Embeddings:
        """These embeddings with the matrix they compare copied into memory (see
        ``files.in_memory``): faster products, for a process that answers many queries. One of
        ``share`` that compares the same rows (csls and cosine do) lends its copy instead."""
        return _resident(self, self._entry, share)

    # --- tokens and vectors -----------------------------------------------------------------

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` exactly as the model's tokenizer does, without special tokens."""
        return self.vocabulary.tokenize(text)

    def query_tokens(self, query: QueryLike) -> Query:
        """The token ids a query stands for, validated against the embedding matrix."""
        return queries.query_tokens(self.view, query)

    def token_text(self, token_id: int) -> str | None:
        """The decoded text of a token id (None for a row the tokenizer names no token for)."""
        return self.view.shown(token_id)[0]

    def vector(self, query: QueryLike) -> np.ndarray:
        """The unit vector of a query (the normalized mean of its tokens' unit vectors)."""
        return queries.vector(self.view, query)

    def raw_vector(self, query: QueryLike) -> np.ndarray:
        """The raw embedding of a query (the mean of its tokens' raw rows)."""
        return queries.raw_vector(self.view, query)

    def centroid(self) -> VectorQuery:
        """The mean raw row (of the rows with a direction), as a vector query."""
        return queries.centroid(self.view)

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
        or a ``vectors.VectorQuery``; ``centroid()`` is the mean row). In text, ``"#N"`` is
        token id N and ``"\\\\#N"`` the literal text "#N", as on the command line.

        ``filters`` (none by default, so the API ranks every row) are applied to the ranking
        of the whole vocabulary before taking ``k``, and ranks run 1..k over what remains
        (fewer than ``k`` only when fewer tokens pass). ``exclude_query`` leaves the query's
        own tokens out. ``score="dot"`` ranks a vector by its raw product with the
        unnormalized rows (a readout through the output embeddings) instead of cosine.
        """
        return self.neighbors_many(
            [query], k=k, exclude_query=exclude_query, filters=filters, score=score
        )[0]

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
        return ranking.neighbors_many(
            self.view, queries, k, exclude_query, filters=filters, score=score
        )

    def similarity(self, a: QueryLike, b: QueryLike) -> float:
        """The similarity of two queries under this metric (cosine by default)."""
        from ..analyses.similarity import similarity

        return similarity(self.view, a, b)

    def rank(self, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS) -> int:
        """Where ``b`` stands among ``a``'s neighbours, 1-based, as ``neighbors(a)`` with
        the same ``filters`` lists them (only ``skip_special`` applies)."""
        from ..analyses.similarity import rank

        return rank(self.view, a, b, filters=filters)

    def compare(self, a: QueryLike, b: QueryLike, *, filters: Filters = NO_FILTERS) -> Comparison:
        """Cosine, angle, Pearson correlation, raw norms and rank of b among a's neighbours
        (``tokneigh.analyses.similarity.compare``: of the filters only ``skip_special``
        applies)."""
        from ..analyses.similarity import compare

        return compare(self.view, a, b, filters=filters)

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
        """The tokens nearest to sum(positive) - sum(negative), as gensim's ``most_similar``:
        ``most_similar(positive=["king", "woman"], negative=["man"])`` is king - man + woman.
        The terms' own tokens are left out unless ``exclude_input=False``."""
        from ..analyses.expressions import most_similar

        return most_similar(
            self.view, positive, negative, k, exclude_input=exclude_input, filters=filters
        )

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
        """The analogy "a is to b as c is to ?": the tokens nearest to b - a + c."""
        from ..analyses.expressions import analogy

        return analogy(self.view, a, b, c, k, exclude_input=exclude_input, filters=filters)

    # --- the seed's lesson, and pictures -------------------------------------------------------

    def verify(self, query: QueryLike, k: int = 10, repeats: int = 5) -> Verification:
        """Score ``query`` against every raw row in a Python loop and with one matrix-vector
        product, and report how far the two agree and how long each took."""
        from ..analyses.verify import verify

        return verify(self.view, query, k, repeats)

    def map(self, query: QueryLike, k: int = 30, *, filters: Filters = NO_FILTERS) -> TokenMap:
        """``query`` and its ``k`` nearest tokens projected to 2-D by PCA of their unit vectors
        (``core.pca_2d``); the query's own tokens are left out of the neighbours."""
        from ..analyses.tokenmap import token_map

        return token_map(self.view, query, k, filters=filters)

    # --- the whole vocabulary ----------------------------------------------------------------

    def graph_rows(self, include_special: bool = False) -> np.ndarray:
        """The token ids a whole-vocabulary computation covers: every row with a direction,
        special tokens only when ``include_special``."""
        from ..analyses.whole import graph_rows

        return graph_rows(self.view, include_special)

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
        return _graph(self._entry, self.view, k, include_special, progress, report or log_report)

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
        from ..analyses import whole

        whole.check_hubs(hubs)  # before a graph is computed
        if graph is None:
            graph = self.graph(k, include_special=include_special, progress=progress, report=report)
        return whole.hubness(self.view, graph, hubs)

    def stats(
        self,
        *,
        pairs: int = 100_000,
        seed: int = 0,
        include_special: bool = False,
        components: int = 10,
    ) -> SpaceStats:
        """The space's shape under this metric: anisotropy, the raw rows' norms, the share of
        variance along the top ``components`` principal components, and how many rows are
        hidden or special (``tokneigh.analyses.whole.stats``)."""
        from ..analyses.whole import stats

        return stats(self.view, pairs, seed, include_special, components)

    def _special_ids(self) -> np.ndarray:
        return self.view.special_ids()

    # --- under-trained tokens and model differences --------------------------------------

    def scan(
        self,
        indicator: str = "magikarp",
        *,
        reference: str | Sequence[int] | None = "auto",
        top: int = 20,
        include_special: bool = True,
        exclude_reference: bool = False,
    ) -> TokenScan:
        """Tokens ranked from most to least likely under-trained (``tokneigh.analyses.scan``,
        which says which indicator suits which matrix and what the two filters leave out)."""
        from ..analyses.scan import scan

        options = {"include_special": include_special, "exclude_reference": exclude_reference}
        return scan(self.view, indicator=indicator, reference=reference, top=top, **options)


def _resident(emb: Embeddings, entry: entries.Entry, share: Iterable[Embeddings]) -> Embeddings:
    """``emb`` with its matrix in memory: a copy, or the copy one of ``share`` made of it."""
    lent = [other.unit for other in share if other._copied is emb.unit]
    space = lent[0] if lent else files.in_memory(emb.unit)
    out = Embeddings(entry, emb.metric, space=space, radius=emb.view.radius)
    out._copied = emb.unit
    return out


# --- what the analyses read, and what the cache entry keeps --------------------------------


def _view(
    entry: entries.Entry,
    metric: Metric,
    space: np.ndarray | None,
    radius: np.ndarray | None,
    tokenize: Callable[[str], Tokenization],
) -> SpaceView:
    """The view of ``entry`` under ``metric`` (``space``: its transformed unit rows)."""
    # Rows with no direction (NaN/Inf values, all zero): never ranked, never a query.
    bad = entry.meta.get("unusable_rows", {})
    return SpaceView(
        model=entry.meta["model"],
        vocab_size=entry.meta["vocab_size"],
        dim=entry.meta["dim"],
        unit=entry.unit if space is None else space,
        cached_unit=entry.unit,
        norms=entry.norms,
        codec=entry.codec,
        tokenize=tokenize,
        metric=metric,
        radius=radius,
        non_finite=bad.get("non_finite", ()),
        zero=bad.get("zero", ()),
        # Which matrix this is: "input" (token embeddings) or "output" (an untied LM head).
        embeddings=entry.meta.get("embeddings", "input"),
        # How a GGUF file stored the matrix ("Q8_0"); None for safetensors and full precision.
        quantization=entries.quantization_of(entry.meta),
        tokenizer_file=entry.tokenizer_path,
    )


def _under(
    entry: entries.Entry,
    unusable: np.ndarray,
    chosen: Metric,
    say: Report,
    progress: Progress | None,
) -> Embeddings:
    """The entry under ``chosen`` (not cosine): its matrix or CSLS's r read from the entry, or
    computed once and kept there."""
    vocab_size, dim = entry.meta["vocab_size"], entry.meta["dim"]
    usable = np.ones(vocab_size, dtype=bool)
    usable[unusable] = False
    name = f"metric-{chosen.file_stem}.npy"
    if chosen.transforms:
        from ..space.metrics import transformed

        space = derived.read_array(entry, name, (vocab_size, dim), np.float32, say)
        if space is None:
            space = transformed(chosen, entry.unit, entry.norms, usable)
            derived.save(entry, name, space, say)
        return Embeddings(entry, chosen, space=space)
    from ..space.metrics import csls_radius

    radius = derived.read_array(entry, name, (vocab_size,), np.float64, say)
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


def _graph(
    entry: entries.Entry,
    view: SpaceView,
    k: int,
    include_special: bool,
    progress: Progress | None,
    say: Report,
) -> NeighborGraph:
    """The graph kept in the entry, or computed (``tokneigh.analyses.whole``) and kept."""
    from ..analyses import whole

    rows = whole.graph_rows(view, include_special)
    whole.check_graph_k(rows, k)
    name = f"graph-{view.metric.file_stem}-k{k}{'-special' if include_special else ''}.npz"
    cached = derived.read_arrays(entry, name, whole.graph_check(view, rows, k), say)
    if cached is not None:
        return whole.cached_graph(view, k, include_special, cached)
    # An interrupted pass left its state here: the next run with these inputs resumes it.
    partial = derived.SavedState(entry, name.replace(".npz", ".partial.npz"), say)
    graph = whole.compute_graph(view, rows, k, include_special, progress, partial)
    derived.save(entry, name, whole.graph_arrays(graph), say)
    partial.remove()
    return graph
