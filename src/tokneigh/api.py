"""The Python API: ``load`` a model's cached embeddings, then ask for neighbours and similarities.

    emb = tokneigh.load("gpt2")
    emb.neighbors("Mike", k=20).neighbors[0].token      # '" Mike"'-style results
    emb.tokenize("banana").tokens                        # ['ban', 'ana']
    emb.similarity("ban", "ana")

Results are plain dataclasses. A query is text (tokenized by the model's own tokenizer; several
tokens mean the mean of their unit vectors) or an ``int`` token id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, cache, core
from .errors import CacheError, UsageError
from .models import DEFAULT_MODEL, ModelSource, local_fingerprint, resolve
from .tokens import TokenCodec, detect_style

Query = str | int

# Similarities closer than this are a tie: float32 rounding alone can order them either way.
TIE = 1e-6

Report = Callable[[str], None]


class _Log:
    """The "tokneigh" logger, with ``logging`` imported on first use (~5 ms a cached query
    would otherwise pay for nothing)."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("tokneigh"), name)


log = _Log()


@dataclass(frozen=True)
class Tokenization:
    """A text as the model's tokenizer splits it."""

    text: str
    ids: list[int]
    tokens: list[str]  # decoded text of each token, e.g. " banana"
    labels: list[str]  # as shown to a person: quoted, b"\xNN" for byte fragments


# Neighbour rows are slotted but not frozen: a batch of 1,000 queries builds 20,000 of them, and
# a frozen dataclass's __init__ (object.__setattr__ per field) costs five times as much.
@dataclass(slots=True)
class Variant:
    """Another spelling of a neighbour that ``dedupe`` folded into its row."""

    id: int
    token: str
    similarity: float
    label: str


@dataclass(slots=True)
class Neighbor:
    rank: int  # 1-based
    id: int
    token: str
    similarity: float
    label: str
    special: bool = False  # a control token, reserved slot or row the tokenizer does not name
    variants: list[Variant] | None = None  # only with dedupe: the other spellings, best first


@dataclass(frozen=True)
class NeighborList:
    """The nearest tokens to one query."""

    query: str  # the text, or "#N" for a token id
    query_ids: list[int]
    query_tokens: list[str]
    query_labels: list[str]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]


@dataclass(frozen=True)
class Comparison:
    a: Tokenization
    b: Tokenization
    cosine: float
    angle_degrees: float
    pearson: float
    norm_a: float
    norm_b: float
    rank_of_b: int  # where b stands among a's neighbours (1 = nearest), as in `neighbors a`


@dataclass(frozen=True)
class MostSimilar:
    """The tokens nearest to sum(positive) - sum(negative) of the terms' unit vectors."""

    positive: list[Tokenization]
    negative: list[Tokenization]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]  # the terms' own tokens left out unless exclude_input=False


@dataclass(frozen=True)
class Verification:
    """The per-row Python loop against the vectorized product, over the whole vocabulary."""

    query: Tokenization
    model: str
    vocab_size: int
    dim: int
    k: int
    pearson: float  # correlation of the two similarity vectors (1.0 when they agree)
    max_abs_diff: float
    top_k_identical: bool  # same ids in the same order
    top_k_agree: bool  # identical, or differing only where two tokens tie (within TIE)
    top_k_tied_swaps: int  # positions where tied tokens stand in the other order
    top_k_loop: list[int]
    top_k_vectorized: list[int]
    loop_seconds: float
    vectorized_seconds: float  # best of several runs: one product is too quick to time once
    speedup: float


@dataclass(frozen=True)
class TokenMap:
    """A query and its neighbours projected to 2-D (PCA of their unit vectors)."""

    result: NeighborList  # the query's own tokens are left out: the query is its own point
    query_xy: tuple[float, float]
    points: list[tuple[float, float]]  # one per neighbour, in result.neighbors order
    explained: tuple[float, float]  # share of the variance along each axis


class Embeddings:
    """One model's token embeddings, memory-mapped from the cache."""

    def __init__(self, entry: cache.Entry, codec: TokenCodec) -> None:
        self._entry = entry
        self.meta: dict[str, Any] = entry.meta
        self.model: str = entry.meta["model"]
        self.vocab_size: int = entry.meta["vocab_size"]
        self.dim: int = entry.meta["dim"]
        self.unit = entry.unit  # L2-row-normalized matrix, read-only
        self.norms = entry.norms  # raw row norms
        self.codec = codec
        self._specials: np.ndarray | None = None  # codec.special_among(vocab_size), on first use
        # Which matrix this is: "input" (token embeddings) or "output" (an untied LM head).
        self.embeddings: str = entry.meta.get("embeddings", "input")

    @property
    def path(self) -> Path:
        """The cache folder this model is served from."""
        return self._entry.path

    def __repr__(self) -> str:
        return f"Embeddings({self.model!r}, vocab_size={self.vocab_size}, dim={self.dim})"

    # --- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str) -> Tokenization:
        """Split ``text`` exactly as the model's tokenizer does, without special tokens."""
        if not isinstance(text, str):
            raise UsageError(f"expected text, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates, e.g. from undecodable argv bytes
            raise UsageError(
                f"{text[exc.start]!r} at position {exc.start} is not valid Unicode text"
            ) from exc
        return self._tokenization(text, self.codec.encode(text))

    def _tokenization(self, text: str, ids: list[int]) -> Tokenization:
        shown = [self.codec.shown(i) for i in ids]
        return Tokenization(
            text=text, ids=ids, tokens=[t for t, _ in shown], labels=[label for _, label in shown]
        )

    def query_tokens(self, query: Query) -> Tokenization:
        """The token ids a query stands for, validated against the embedding matrix."""
        if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
            token_id = int(query)
            if not 0 <= token_id < self.vocab_size:
                raise UsageError(f"token id {token_id} is outside 0..{self.vocab_size - 1}")
            return self._tokenization(f"#{token_id}", [token_id])
        if not isinstance(query, str):
            raise UsageError(f"a query is text or a token id, not {type(query).__name__}")
        if not query.strip():
            raise UsageError(
                "the query is empty or only whitespace; to look up a whitespace token, use --id N"
            )
        tokens = self.tokenize(query)
        if not tokens.ids:
            raise UsageError(f"{query!r} tokenizes to no tokens for {self.model}")
        beyond = [i for i in tokens.ids if i >= self.vocab_size]
        if beyond:
            raise UsageError(
                f"{query!r} has token id {beyond[0]}, beyond the embedding matrix "
                f"({self.vocab_size} rows)"
            )
        return tokens

    # --- vectors ----------------------------------------------------------------------------

    def vector(self, query: Query) -> np.ndarray:
        """The unit vector of a query (the normalized mean of its tokens' unit vectors)."""
        return core.query_vector(self.unit, self.query_tokens(query).ids)

    def raw_vector(self, query: Query) -> np.ndarray:
        """The raw embedding of a query (the mean of its tokens' raw rows)."""
        ids = self.query_tokens(query).ids
        return (self.unit[ids] * self.norms[ids, None]).mean(axis=0, dtype=np.float64)

    # --- similarity -------------------------------------------------------------------------

    def neighbors(
        self,
        query: Query,
        k: int = 20,
        exclude_query: bool = False,
        *,
        skip_special: bool = False,
        words_only: bool = False,
        dedupe: bool = False,
        min_sim: float | None = None,
    ) -> NeighborList:
        """The ``k`` tokens nearest to ``query`` by cosine similarity, best first.

        Filters (all off by default, so the API ranks every row): ``skip_special`` leaves out
        control tokens, reserved slots and rows the tokenizer does not name (the query's own
        tokens excepted); ``words_only`` tokens without a letter; ``min_sim`` tokens below that
        cosine; ``dedupe`` folds tokens that differ only by a leading space or case into the
        best one, listing the others in ``Neighbor.variants``. Filters are applied to the
        ranking of the whole vocabulary before taking ``k``, and ranks run 1..k over what
        remains (fewer than ``k`` only when fewer tokens pass).
        """
        return self.neighbors_many(
            [query],
            k=k,
            exclude_query=exclude_query,
            skip_special=skip_special,
            words_only=words_only,
            dedupe=dedupe,
            min_sim=min_sim,
        )[0]

    def neighbors_many(
        self,
        queries: Sequence[Query],
        k: int = 20,
        exclude_query: bool = False,
        *,
        skip_special: bool = False,
        words_only: bool = False,
        dedupe: bool = False,
        min_sim: float | None = None,
    ) -> list[NeighborList]:
        """Neighbours of several queries at once (one matrix-matrix product); filters as in
        ``neighbors``."""
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        filters = _Filters.checked(skip_special, words_only, dedupe, min_sim)
        parsed = [self.query_tokens(q) for q in queries]
        if not parsed:
            return []
        vectors = core.query_vectors(self.unit, [t.ids for t in parsed])
        # A query's own special token still answers: asking for <|endoftext|> finds it first.
        exclude = [
            self._left_out(filters, spared=t.ids, extra=t.ids if exclude_query else ())
            for t in parsed
        ]
        select = [self._selector(filters, k)] * len(parsed)
        ranked = core.rank_many(
            self.unit, vectors, min(k, self.vocab_size), exclude, select, filters.min_sim
        )
        results = []
        for tokens, vector, (ids, scores) in zip(parsed, vectors, ranked):
            skip = tokens.ids if exclude_query else ()
            neighbors = self._neighbor_rows(ids, scores, vector, filters, skip)
            results.append(
                NeighborList(
                    query=tokens.text,
                    query_ids=tokens.ids,
                    query_tokens=tokens.tokens,
                    query_labels=tokens.labels,
                    model=self.model,
                    vocab_size=self.vocab_size,
                    dim=self.dim,
                    neighbors=neighbors,
                )
            )
        return results

    def similarity(self, a: Query, b: Query) -> float:
        """Cosine similarity of two queries."""
        return core.cosine(self.vector(a), self.vector(b))

    def rank(self, a: Query, b: Query, *, skip_special: bool = False) -> int:
        """Where ``b`` stands among ``a``'s neighbours, 1-based, as
        ``neighbors(a, skip_special=skip_special)`` lists them."""
        return self.compare(a, b, skip_special=skip_special).rank_of_b

    def compare(self, a: Query, b: Query, *, skip_special: bool = False) -> Comparison:
        """Cosine, angle, Pearson correlation, raw norms and rank of b among a's neighbours.

        ``rank_of_b`` counts what ``neighbors(a, skip_special=skip_special)`` would list before
        b, plus one: b's own rank, or where it would stand if that list leaves it out (a
        special token) or it is not one row (a text of several tokens).
        """
        tokens_a, tokens_b = self.query_tokens(a), self.query_tokens(b)
        unit_a = core.query_vector(self.unit, tokens_a.ids)
        unit_b = core.query_vector(self.unit, tokens_b.ids)
        cos = core.cosine(unit_a, unit_b)
        scores = core.scores_for(self.unit, unit_a)  # a fresh array: ours to mask
        hidden = self._left_out(_Filters(skip_special=skip_special), spared=tokens_a.ids)
        if len(tokens_b.ids) == 1:
            b_id = tokens_b.ids[0]
            own = scores[b_id]
            scores[hidden] = -np.inf
            scores[b_id] = own  # b competes even when the list would leave it out
            rank = core.rank_of(scores, b_id)
        else:
            scores[hidden] = -np.inf
            rank = core.rank_of_score(scores, cos)
        raw_a, raw_b = self.raw_vector(a), self.raw_vector(b)
        return Comparison(
            a=tokens_a,
            b=tokens_b,
            cosine=cos,
            angle_degrees=core.angle_degrees(cos),
            pearson=core.pearson(raw_a, raw_b),
            norm_a=float(np.linalg.norm(raw_a)),
            norm_b=float(np.linalg.norm(raw_b)),
            rank_of_b=rank,
        )

    # --- expressions: analogies and most_similar ----------------------------------------------

    def most_similar(
        self,
        positive: Query | Sequence[Query] = (),
        negative: Query | Sequence[Query] = (),
        k: int = 10,
        *,
        exclude_input: bool = True,
        skip_special: bool = False,
        words_only: bool = False,
        dedupe: bool = False,
        min_sim: float | None = None,
    ) -> MostSimilar:
        """The tokens nearest to sum(positive) - sum(negative), as gensim's ``most_similar``.

        Each term is a query (text or id) represented by its unit vector (a multi-token word:
        the normalized mean of its tokens' unit vectors); the sum is normalized before ranking.
        ``most_similar(positive=["king", "woman"], negative=["man"])`` is king - man + woman.
        The terms' own tokens are left out unless ``exclude_input=False``; filters as in
        ``neighbors``.
        """
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        filters = _Filters.checked(skip_special, words_only, dedupe, min_sim)
        pos = [self.query_tokens(q) for q in _terms(positive)]
        neg = [self.query_tokens(q) for q in _terms(negative)]
        if not pos and not neg:
            raise UsageError("give at least one positive or negative term")
        vector = core.expression_vector(
            [core.query_vector(self.unit, t.ids) for t in pos],
            [core.query_vector(self.unit, t.ids) for t in neg],
        )
        if not vector.any():
            raise UsageError("the terms cancel out: their sum is the zero vector, nothing to rank")
        inputs = sorted({i for t in pos + neg for i in t.ids}) if exclude_input else []
        [(ids, scores)] = core.rank_many(
            self.unit,
            vector[None, :],
            min(k, self.vocab_size),
            [self._left_out(filters, extra=inputs)],
            [self._selector(filters, k)],
            filters.min_sim,
        )
        return MostSimilar(
            positive=pos,
            negative=neg,
            model=self.model,
            vocab_size=self.vocab_size,
            dim=self.dim,
            neighbors=self._neighbor_rows(ids, scores, vector, filters, inputs),
        )

    def analogy(
        self,
        a: Query,
        b: Query,
        c: Query,
        k: int = 10,
        *,
        exclude_input: bool = True,
        skip_special: bool = False,
        words_only: bool = False,
        dedupe: bool = False,
        min_sim: float | None = None,
    ) -> MostSimilar:
        """The analogy "a is to b as c is to ?": the tokens nearest to b - a + c.

        ``analogy("man", "king", "woman")`` is ``most_similar(positive=["king", "woman"],
        negative=["man"])``.
        """
        return self.most_similar(
            positive=[b, c],
            negative=[a],
            k=k,
            exclude_input=exclude_input,
            skip_special=skip_special,
            words_only=words_only,
            dedupe=dedupe,
            min_sim=min_sim,
        )

    # --- the seed's lesson: loop against vectorized ------------------------------------------

    def verify(self, query: Query, k: int = 10, repeats: int = 5) -> Verification:
        """Score ``query`` against every raw row twice: one row at a time in a Python loop
        (``core.scores_loop``) and with one matrix-vector product over the normalized matrix,
        and report how far the two agree and how long each took.

        The raw rows are rebuilt from the cache (unit row x stored norm), a block at a time so
        that memory stays bounded on large vocabularies.
        """
        if k < 1:
            raise UsageError(f"k must be at least 1, got {k}")
        tokens = self.query_tokens(query)
        vector = core.query_vector(self.unit, tokens.ids)
        if not vector.any():
            raise UsageError(
                f"{tokens.text!r} has an all-zero embedding: its cosine with anything is undefined"
            )
        k = min(k, self.vocab_size)
        started = time.perf_counter()
        looped = core.scores_loop(self._raw_rows(), vector)
        loop_seconds = time.perf_counter() - started
        vectorized_seconds = float("inf")
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            scores = core.scores_for(self.unit, vector)
            vectorized_seconds = min(vectorized_seconds, time.perf_counter() - started)
        vectorized = np.asarray(scores, dtype=np.float64)
        # The loop's ranking by a full stable sort, independently of core.top_k.
        top_loop = [int(i) for i in np.argsort(-looped, kind="stable")[:k]]
        top_vec = [int(i) for i in core.top_k(scores, k)]
        # Tokens that tie in exact arithmetic ("ban" and "ana" against their own mean) are
        # ordered by rounding, which differs between the two methods: count, don't fail.
        differing = [(a, b) for a, b in zip(top_loop, top_vec) if a != b]
        swaps = sum(1 for a, b in differing if abs(float(looped[a] - looped[b])) <= TIE)
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
            yield from self.unit[start:stop] * self.norms[start:stop, None]

    # --- pictures ----------------------------------------------------------------------------

    def map(
        self,
        query: Query,
        k: int = 30,
        *,
        skip_special: bool = False,
        words_only: bool = False,
        dedupe: bool = False,
        min_sim: float | None = None,
    ) -> TokenMap:
        """``query`` and its ``k`` nearest tokens projected to 2-D by PCA of their unit vectors
        (``core.pca_2d``); the query's own tokens are left out of the neighbours."""
        result = self.neighbors(
            query,
            k=k,
            exclude_query=True,
            skip_special=skip_special,
            words_only=words_only,
            dedupe=dedupe,
            min_sim=min_sim,
        )
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

    # --- filters -----------------------------------------------------------------------------

    def _left_out(
        self, filters: _Filters, spared: Sequence[int] = (), extra: Sequence[int] = ()
    ) -> np.ndarray:
        """The ids left out of one ranking: special tokens (with ``skip_special``) other than
        ``spared``, and ``extra``. Masked out of the scores before the top k is taken."""
        out = self._special_ids() if filters.skip_special else _NO_IDS
        if filters.skip_special and any(self.codec.is_special(i) for i in spared):
            out = np.setdiff1d(out, np.asarray(spared, dtype=np.int64))
        if len(extra):
            out = np.concatenate([out, np.asarray(extra, dtype=np.int64)])
        return out

    def _special_ids(self) -> np.ndarray:
        if self._specials is None:
            self._specials = np.asarray(self.codec.special_among(self.vocab_size), dtype=np.int64)
        return self._specials

    def _selector(self, filters: _Filters, k: int) -> core.Selector | None:
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
        filters: _Filters,
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
                sims = (self.unit[others] @ vector).tolist() if others else []
                variants = []
                for sim, v in sorted(zip(sims, others), key=lambda p: (-p[0], p[1])):
                    if filters.min_sim is None or sim >= filters.min_sim:
                        v_text, v_label = codec.shown(v)
                        variants.append(Variant(v, v_text, float(sim), v_label))
            text, label = codec.shown(i)
            rows.append(Neighbor(rank, i, text, s, label, codec.is_special(i), variants))
        return rows


@dataclass(frozen=True)
class _Filters:
    skip_special: bool = False
    words_only: bool = False
    dedupe: bool = False
    min_sim: float | None = None

    @classmethod
    def checked(
        cls, skip_special: bool, words_only: bool, dedupe: bool, min_sim: float | None
    ) -> _Filters:
        if min_sim is not None:
            # `not (a <= x <= b)` also refuses NaN, which every comparison lets through.
            if not -1.0 <= float(min_sim) <= 1.0:
                raise UsageError(f"the minimum similarity must be between -1 and 1, got {min_sim}")
            min_sim = float(min_sim)
        return cls(bool(skip_special), bool(words_only), bool(dedupe), min_sim)


_NO_IDS = np.empty(0, dtype=np.int64)


def _terms(terms: Query | Sequence[Query]) -> list[Query]:
    # A lone string is one term, not a sequence of one-letter terms.
    if isinstance(terms, (str, int, np.integer)):
        return [terms]
    return list(terms)


# --- loading ------------------------------------------------------------------------------


def _log_report(message: str) -> None:
    log.info(message)


def _warn(report: Report | None, message: str) -> None:
    if report is None:
        log.warning(message)
    else:
        report(f"warning: {message}")


def load(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    report: Report | None = None,
    embeddings: str = "input",
) -> Embeddings:
    """Load a model's embeddings from the cache, extracting and caching them on first use.

    ``model`` is a hub id or a local checkpoint folder (default ``$TOKNEIGH_MODEL`` or gpt2).
    ``report`` receives progress and warning lines (the CLI prints them on stderr); without
    it they go to the ``tokneigh`` logger. ``embeddings="output"`` serves the output matrix (the
    LM head) when the model has one of its own, cached separately; for a tied model it says so
    and serves the input matrix, which is the same.
    """
    if embeddings != "input":
        return _load_output(model, cache_dir, rebuild, report, embeddings)
    source = resolve(model or os.environ.get("TOKNEIGH_MODEL") or DEFAULT_MODEL)
    root = cache.resolve_root(cache_dir)
    folder = root / cache.entry_name(source.identity, source.name)
    if not rebuild:
        try:
            embeddings_ = _open_fresh(folder, source)
            cache.sweep_scratch(root, source.identity)  # leftovers of a killed build, if any
            return embeddings_
        except cache.MissingEntry:
            pass
        except cache.InvalidEntry as exc:
            _warn(report, f"cache entry for {source.name} is unusable ({exc}); rebuilding it")
    with cache.build_lock(root, source.identity):
        if not rebuild:
            # Another process may have built it while we waited for the lock.
            try:
                return _open_fresh(folder, source)
            except cache.InvalidEntry:
                pass
        _build(source, root, folder.name, report or _log_report)
        try:
            return _open_fresh(folder, source)
        except cache.InvalidEntry as exc:  # e.g. the checkpoint was rewritten during the build
            raise CacheError(
                f"the cache entry just built for {source.name} does not validate ({exc}); "
                "run the command again"
            ) from exc


EMBEDDINGS_KINDS = ("input", "output")


def entry_identity(source: ModelSource, embeddings: str = "input") -> str:
    """The cache identity of one of a model's matrices. The input matrix keeps the model's plain
    identity, so entries built before output matrices existed keep their names."""
    return source.identity if embeddings == "input" else f"{source.identity}#{embeddings}"


def entry_folder_name(source: ModelSource, embeddings: str = "input") -> str:
    """The cache folder name of one of a model's matrices (``<slug>-output--<key>``)."""
    if embeddings == "input":
        return cache.entry_name(source.identity, source.name)
    return cache.entry_name(entry_identity(source, embeddings), f"{source.name}-{embeddings}")


def _load_output(
    model: str | None,
    cache_dir: str | os.PathLike[str] | None,
    rebuild: bool,
    report: Report | None,
    embeddings: str,
) -> Embeddings:
    """``load`` for the output matrix: its own cache entry, or the input one when tied."""
    from .errors import CacheError
    from .extract import TiedEmbeddings, output_tensor

    if embeddings not in EMBEDDINGS_KINDS:
        raise UsageError(f"embeddings must be 'input' or 'output', not {embeddings!r}")
    source = resolve(model or os.environ.get("TOKNEIGH_MODEL") or DEFAULT_MODEL)
    root = cache.resolve_root(cache_dir)
    folder = root / entry_folder_name(source, embeddings)
    if not rebuild:
        try:
            return _open_fresh(folder, source)
        except cache.MissingEntry:
            pass
        except cache.InvalidEntry as exc:
            _warn(report, f"cache entry for {source.name} (output) is unusable ({exc}); rebuilding")
    try:
        # Tied or not is read from config.json and the tensor names, before any "building" line.
        output_tensor(source, report or _log_report)
        with cache.build_lock(root, entry_identity(source, embeddings)):
            if not rebuild:
                try:
                    return _open_fresh(folder, source)
                except cache.InvalidEntry:
                    pass
            _build(source, root, folder.name, report or _log_report, embeddings)
            try:
                return _open_fresh(folder, source)
            except cache.InvalidEntry as exc:
                raise CacheError(
                    f"the cache entry just built for {source.name} (output) does not validate "
                    f"({exc}); run the command again"
                ) from exc
    except TiedEmbeddings as exc:
        # Nothing cached for a tied model: the check reads only config.json and tensor names.
        (report or log.warning)(
            f"note: {source.name} has no separate output embeddings ({exc}): input and output "
            "are the same matrix; serving the input embeddings"
        )
    return load(model, cache_dir=cache_dir, rebuild=rebuild, report=report)


def _open_fresh(folder: Path, source: ModelSource) -> Embeddings:
    """The cached embeddings, if whole and still matching the source; else InvalidEntry."""
    entry = cache.open_entry(folder)
    if source.is_local:
        try:
            current = local_fingerprint(Path(source.location))
        except OSError as exc:
            raise cache.InvalidEntry(f"the checkpoint cannot be read ({exc.strerror})") from exc
        if entry.meta["fingerprint"].get("files") != current:
            raise cache.InvalidEntry("the checkpoint changed since it was cached")
    try:
        codec = TokenCodec(
            entry.tokenizer_path, entry.meta["token_style"], entry.meta["special_ids"]
        )
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise cache.InvalidEntry("tokenizer.json is damaged") from exc
    if codec.size != entry.meta["tokenizer_size"]:
        raise cache.InvalidEntry("tokenizer.json does not match the cached matrix")
    return Embeddings(entry, codec)


def _build(
    source: ModelSource, root: Path, name: str, report: Report, embeddings: str = "input"
) -> None:
    import json

    from .extract import extract

    started = time.perf_counter()
    what = source.name if embeddings == "input" else f"{source.name} ({embeddings} embeddings)"
    report(f"building the cache for {what} (first use only)")
    extracted = extract(source, report, embeddings)
    unit, norms = core.normalize_rows(extracted.matrix)
    tokenizer_json = extracted.tokenizer_json
    codec_probe = json.loads(tokenizer_json)
    meta = {
        "format_version": cache.FORMAT_VERSION,
        "tokneigh_version": __version__,
        "model": source.name,
        "source": source.kind,
        "resolved": extracted.resolved,
        "tensor": extracted.tensor,
        "embeddings": embeddings,
        "fingerprint": extracted.fingerprint,
        "vocab_size": int(unit.shape[0]),
        "dim": int(unit.shape[1]),
        "tokenizer_size": _tokenizer_size(tokenizer_json),
        "token_style": detect_style(codec_probe),
        "special_ids": extracted.special_ids,
        "zero_rows": int(np.count_nonzero(norms == 0)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    cache.write_entry(root, name, unit, norms, tokenizer_json, meta)
    report(
        f"cached {what}: {meta['vocab_size']} x {meta['dim']} in "
        f"{time.perf_counter() - started:.1f} s at {root / name}"
    )


def _tokenizer_size(tokenizer_json: str) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json).get_vocab_size(with_added_tokens=True)
