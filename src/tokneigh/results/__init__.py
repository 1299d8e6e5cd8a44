"""What the API returns. Each result is a plain (slotted) dataclass that knows its JSON contract
(``to_json``), its TSV rows (``tsv``) and what a person reads (``human``: tables and lines).
``render.emit`` turns any of them into output; nothing here imports Rich or writes anything.

Neighbour rows (``Neighbor``, ``Variant``) are slotted and not frozen: a batch of 1,000 queries
builds 20,000 of them, and a frozen dataclass's ``__init__`` costs five times as much.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sources.models import model_label
from ..store.listing import CachedModel

# --- what a person reads ----------------------------------------------------------------------


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


Human = list["Table | str"]  # tables, and lines of plain text


def quoted(text: str) -> str:
    """A query text as a person reads it: in double quotes, control characters escaped."""
    return json.dumps(text, ensure_ascii=False)


# Titles stay readable for any query: a 15,000-token text must not become a page-long title.
_TITLE_TEXT = 80
_TITLE_PIECES = 8


def _short(text: str) -> str:
    shown = quoted(text)
    return shown if len(shown) <= _TITLE_TEXT else shown[: _TITLE_TEXT - 2] + '…"'


def _pieces(labels: Sequence[str]) -> str:
    if len(labels) <= _TITLE_PIECES:
        return " + ".join(labels)
    return " + ".join(labels[:_TITLE_PIECES]) + f" + … ({len(labels) - _TITLE_PIECES} more)"


def _sim(value: float) -> str:
    return f"{value:.3f}"


def _dims(vocab_size: int, dim: int) -> str:
    return f"{vocab_size:,} tokens × {dim} dims"


# --- tokens and queries -----------------------------------------------------------------------


@dataclass(slots=True)
class Tokenization:
    """A text as the model's tokenizer splits it."""

    text: str
    ids: list[int]
    tokens: list[str]  # decoded text of each token, e.g. " banana"
    labels: list[str]  # as shown to a person: quoted, b"\xNN" for byte fragments

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "ids": self.ids, "tokens": self.tokens, "labels": self.labels}

    def sentence(self) -> str:
        """The seed's sentence: `"banana" comprises 2 tokens: ["ban", "ana"]  ids [...]`."""
        n = len(self.ids)
        noun = "token" if n == 1 else "tokens"
        return (
            f"{quoted(self.text)} comprises {n} {noun}: [{', '.join(self.labels)}]  ids {self.ids}"
        )


@dataclass(slots=True)
class Tokenizations:
    """Several texts tokenized, each with how its space-prefixed variant splits (None when the
    text already starts with a space)."""

    items: list[Tokenization]
    spaced: list[Tokenization | None]

    def to_json(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.items]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        # One row per token, keyed by the TEXT argument's 1-based index: repeating the text on
        # every row would grow as length x tokens (gigabytes for a 100,000-character text).
        rows = [
            [number, pos, i, tok]
            for number, t in enumerate(self.items, start=1)
            for pos, (i, tok) in enumerate(zip(t.ids, t.tokens))
        ]
        return ["text_index", "position", "id", "token"], rows

    def human(self) -> Human:
        lines: Human = []
        for t, spaced in zip(self.items, self.spaced):
            lines.append(t.sentence())
            if spaced is not None:
                same = "  (same tokens)" if spaced.ids == t.ids else ""
                lines.append("  " + spaced.sentence() + same)
        return lines


@dataclass(frozen=True, slots=True)
class VectorSource:
    """Where a vector query came from: a ``.npy`` file (and row), the centroid, or the API."""

    source: str | None = None  # the file, or None for an array passed to the API
    row: int | None = None  # the row of a 2-D file
    centroid: bool = False  # the mean row of the matrix

    @property
    def shown(self) -> str:
        if self.centroid:
            return "the centroid"
        if self.source is None:
            return "the vector"
        return f"vector {self.source}" + ("" if self.row is None else f":{self.row}")

    def to_json(self) -> dict[str, Any]:
        if self.centroid:
            return {"centroid": True}
        return {"vector": {"source": self.source, "row": self.row}}


@dataclass(slots=True)
class Query:
    """What a query stands for: a text (``token_id`` None), one token id (``text`` None), or a
    vector (both None, ``vector`` says where it came from)."""

    text: str | None
    token_id: int | None
    ids: list[int]
    tokens: list[str]
    labels: list[str]
    vector: VectorSource | None = None

    @property
    def shown(self) -> str:
        """`"banana"`, `token #5` for an id query, `vector FILE:ROW`, `the centroid`."""
        if self.vector is not None:
            return self.vector.shown
        return f"token #{self.token_id}" if self.text is None else _short(self.text)

    def described(self) -> str:
        """The query with its pieces: `"banana" = "ban" + "ana" (mean of 2 tokens)`,
        `token #5 ("&")`."""
        if self.vector is not None:
            return self.shown
        if self.text is None:
            return f"{self.shown} ({self.labels[0]})"
        if len(self.ids) > 1:
            return f"{self.shown} = {_pieces(self.labels)} (mean of {len(self.ids):,} tokens)"
        return self.shown

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "query_id": self.token_id,
            "ids": self.ids,
            "tokens": self.tokens,
        }

    def term(self) -> str | int:
        """The query in a JSON list of terms: its text, or its token id."""
        return self.token_id if self.text is None else self.text  # type: ignore[return-value]


# --- neighbour lists --------------------------------------------------------------------------


@dataclass(slots=True)
class Variant:
    """Another spelling of a neighbour that ``dedupe`` folded into its row."""

    id: int
    token: str
    similarity: float
    label: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "similarity": self.similarity}


@dataclass(slots=True)
class Neighbor:
    rank: int  # 1-based
    id: int
    token: str | None  # None: a row the tokenizer names no token for (padding)
    similarity: float  # cosine, in [-1, 1]
    label: str
    special: bool = False  # a control token, reserved slot or row the tokenizer does not name
    variants: list[Variant] | None = None  # only with dedupe: the other spellings, best first

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rank": self.rank,
            "id": self.id,
            "token": self.token,
            "similarity": self.similarity,
        }
        if self.variants is not None:
            data["variants"] = [v.to_json() for v in self.variants]
        return data


def _with_metric(title: str, metric: str) -> str:
    return title if metric == "cosine" else f"{title} · {metric}"


def _neighbor_table(
    title: str, neighbors: Sequence[Neighbor], deduped: bool, metric: str = "cosine", **extra: Any
) -> Table:
    # The similarity column is named by what it holds: cosine, or the metric's score.
    columns = [Column("rank", True), Column("token"), Column("id", True), Column(metric, True)]
    if deduped:
        columns.append(Column("variants"))
    rows = []
    for n in neighbors:
        row = [
            str(n.rank),
            n.label + ("  (special)" if n.special else ""),
            str(n.id),
            _sim(n.similarity),
        ]
        if deduped:
            row.append(", ".join(v.label for v in n.variants or ()))
        rows.append(row)
    return Table(title, columns, rows, **extra)


@dataclass(slots=True)
class NeighborList:
    """The nearest tokens to one query."""

    query: str | None  # the text, or None for a token-id query
    query_id: int | None  # the token id asked for, or None for a text query
    query_ids: list[int]
    query_tokens: list[str]
    query_labels: list[str]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]
    dedupe: bool = False  # variants were folded (each neighbour has ``variants``)
    hidden: int = 0  # special tokens left out of the ranking
    unusable: int = 0  # rows with no direction (NaN, infinite or zero) left out
    metric: str = "cosine"  # what `similarity` is: cosine, or centered, abtt:D, csls:K
    quantization: str | None = None  # a GGUF file's storage type of the matrix ("Q8_0")
    vector: VectorSource | None = None  # a vector query: where the vector came from
    score: str = "cosine"  # or "dot": the raw product with the unnormalized rows

    @property
    def asked(self) -> Query:
        return Query(
            self.query,
            self.query_id,
            self.query_ids,
            self.query_tokens,
            self.query_labels,
            self.vector,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "query_id": self.query_id,
            "query_ids": self.query_ids,
            "query_tokens": self.query_tokens,
            "model": self.model,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "metric": self.metric,
            **({} if self.quantization is None else {"quantization": self.quantization}),
            **({} if self.vector is None else self.vector.to_json()),
            **({} if self.score == "cosine" else {"score": self.score}),
            "neighbors": [n.to_json() for n in self.neighbors],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["query", "query_id", "rank", "id", "token", "similarity"]
        text = "" if self.query is None else self.query
        qid = "" if self.query_id is None else self.query_id
        if self.dedupe:
            # The folded variants' ids, comma-separated (ids never need escaping).
            rows = [
                [text, qid, n.rank, n.id, n.token, n.similarity, _variant_ids(n)]
                for n in self.neighbors
            ]
            return [*header, "variant_ids"], rows
        return header, [[text, qid, n.rank, n.id, n.token, n.similarity] for n in self.neighbors]

    def title(self, what: str = "Neighbours of") -> str:
        stored = "" if self.quantization is None else f" · {self.quantization}"
        if self.score != "cosine":
            stored += f" · {self.score} product"
        return _with_metric(
            f"{what} {self.asked.described()} · {model_label(self.model)}{stored} · "
            f"{_dims(self.vocab_size, self.dim)}",
            self.metric,
        )

    def human(self) -> Human:
        column = self.metric if self.score == "cosine" else self.score
        return [_neighbor_table(self.title(), self.neighbors, self.dedupe, column)]


def _variant_ids(n: Neighbor) -> str:
    return ",".join(str(v.id) for v in n.variants or ())


@dataclass(slots=True)
class NeighborLists:
    """The neighbour lists of several queries, answered together."""

    lists: list[NeighborList]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.lists]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header: list[str] = []
        rows: list[list[Any]] = []
        for r in self.lists:
            header, part = r.tsv()
            rows.extend(part)
        return header or NeighborList(None, None, [], [], [], "", 0, 0, []).tsv()[0], rows

    def human(self) -> Human:
        return [block for r in self.lists for block in r.human()]


# --- comparisons and expressions ----------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    a: Query
    b: Query
    model: str
    cosine: float
    angle_degrees: float
    pearson: float
    norm_a: float
    norm_b: float
    rank_of_b: int  # where b stands among a's neighbours (1 = nearest), as in `neighbors a`
    metric: str = "cosine"
    similarity: float = 0.0  # the metric's score: the cosine, or e.g. the CSLS score

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "metric": self.metric,
            "similarity": self.similarity,
            "cosine": self.cosine,
            "angle_degrees": self.angle_degrees,
            "pearson": self.pearson,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "rank_of_b": self.rank_of_b,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["a", "b", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b", "rank_of_b"]
        row = [
            self.a.term(),
            self.b.term(),
            self.cosine,
            self.angle_degrees,
            self.pearson,
            self.norm_a,
            self.norm_b,
            self.rank_of_b,
        ]
        return header, [row]

    def human(self) -> Human:
        rows = [
            ["pieces of A", " + ".join(self.a.labels)],
            ["pieces of B", " + ".join(self.b.labels)],
            *([] if self.metric == "cosine" else [[f"{self.metric} score", _sim(self.similarity)]]),
            [_cosine_label(self.metric), _sim(self.cosine)],
            ["angle", f"{self.angle_degrees:.1f}°"],
            ["Pearson correlation (raw)", _sim(self.pearson)],
            ["norm of A (raw)", f"{self.norm_a:.3f}"],
            ["norm of B (raw)", f"{self.norm_b:.3f}"],
            ["rank of B among A's neighbours", f"{self.rank_of_b:,}"],
        ]
        title = _with_metric(
            f"{self.a.shown} vs {self.b.shown} · {model_label(self.model)}", self.metric
        )
        return [Table(title, [Column("measure"), Column("value", True)], rows)]


def _cosine_label(metric: str) -> str:
    # centered and abtt compare other vectors than the rows: say whose cosine it is.
    if metric == "cosine" or metric.startswith("csls"):
        return "cosine similarity"
    return f"cosine ({metric} vectors)"


@dataclass(slots=True)
class MostSimilar:
    """The tokens nearest to sum(positive) - sum(negative) of the terms' unit vectors."""

    positive: list[Query]
    negative: list[Query]
    model: str
    vocab_size: int
    dim: int
    neighbors: list[Neighbor]  # the terms' own tokens left out unless exclude_input=False
    dedupe: bool = False
    hidden: int = 0
    unusable: int = 0
    analogy: bool = False  # asked as "a is to b as c is to ?" (negative [a], positive [b, c])
    metric: str = "cosine"

    def to_json(self) -> dict[str, Any]:
        return {
            "positive": [t.term() for t in self.positive],
            "negative": [t.term() for t in self.negative],
            "metric": self.metric,
            "neighbors": [n.to_json() for n in self.neighbors],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = ["rank", "id", "token", "similarity"]
        if self.dedupe:
            rows = [[n.rank, n.id, n.token, n.similarity, _variant_ids(n)] for n in self.neighbors]
            return [*header, "variant_ids"], rows
        return header, [[n.rank, n.id, n.token, n.similarity] for n in self.neighbors]

    def expression(self) -> str:
        """`"king" + "woman" − "man"`: the positives added, the negatives subtracted."""
        text = " + ".join(t.shown for t in self.positive)
        for t in self.negative:
            text += f" − {t.shown}" if text else f"− {t.shown}"
        return text

    def human(self) -> Human:
        if self.analogy:
            (a,), (b, c) = self.negative, self.positive
            heading = (
                f"{a.shown} is to {b.shown} as {c.shown} is to ?  "
                f"({b.shown} − {a.shown} + {c.shown})"
            )
        else:
            heading = f"Nearest to {self.expression()}"
        title = _with_metric(
            f"{heading} · {model_label(self.model)} · {_dims(self.vocab_size, self.dim)}",
            self.metric,
        )
        pieces = [
            f"{t.shown} = {_pieces(t.labels)}"
            for t in self.positive + self.negative
            if len(t.ids) > 1 or t.text is None
        ]
        return [_neighbor_table(title, self.neighbors, self.dedupe, self.metric, subtitle=pieces)]


# --- verify -------------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    # JSON has no Infinity: a speed-up over a product too quick to time is null.
    return value if value == value and abs(value) != float("inf") else None


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


@dataclass(slots=True)
class Verification:
    """The per-row Python loop against the vectorized product, over the whole vocabulary."""

    query: Query
    model: str
    vocab_size: int
    dim: int
    k: int
    pearson: float  # correlation of the two similarity vectors (1.0 when they agree)
    max_abs_diff: float
    top_k_identical: bool  # same ids in the same order
    top_k_agree: bool  # identical, or differing only where two tokens tie
    top_k_tied_swaps: int  # positions where tied tokens stand in the other order
    top_k_loop: list[int]
    top_k_vectorized: list[int]
    loop_seconds: float
    vectorized_seconds: float  # best of several runs: one product is too quick to time once
    speedup: float

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "query_id": self.query.token_id,
            "query_ids": self.query.ids,
            "query_tokens": self.query.tokens,
            "model": self.model,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "k": self.k,
            "pearson": self.pearson,
            "max_abs_diff": self.max_abs_diff,
            "top_k_identical": self.top_k_identical,
            "top_k_agree": self.top_k_agree,
            "top_k_tied_swaps": self.top_k_tied_swaps,
            "top_k_loop": self.top_k_loop,
            "top_k_vectorized": self.top_k_vectorized,
            "loop_seconds": self.loop_seconds,
            "vectorized_seconds": self.vectorized_seconds,
            "speedup": _finite(self.speedup),
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        keys = [k for k in data if k not in ("query_ids", "query_tokens")]
        cells = [
            ",".join(map(str, data[k])) if isinstance(data[k], list) else data[k] for k in keys
        ]
        return keys, [["" if c is None else c for c in cells]]

    def human(self) -> Human:
        if self.top_k_identical:
            same = "yes"
        elif self.top_k_agree:
            same = f"yes, up to {self.top_k_tied_swaps} tied tokens swapped"
        else:
            same = "NO"
        speedup = f"{self.speedup:,.0f}×" if _finite(self.speedup) else "too quick to time"
        rows = [
            ["query", " + ".join(self.query.labels)],
            ["rows compared", f"{self.vocab_size:,} × {self.dim}"],
            ["Pearson correlation", f"{self.pearson:.6f}"],
            ["largest |difference|", f"{self.max_abs_diff:.2e}"],
            [f"same top {self.k} (ids and order)", same],
            ["Python loop, row by row", _duration(self.loop_seconds)],
            ["vectorized (best of 5)", _duration(self.vectorized_seconds)],
            ["speed-up", speedup],
        ]
        title = f"Loop vs vectorized for {self.query.shown} · {model_label(self.model)}"
        blocks: Human = [Table(title, [Column("measure"), Column("value", True)], rows)]
        if not self.top_k_identical:
            # Show both rankings: which tokens moved is the first thing a user will ask.
            blocks.append(f"loop top {self.k}:       {self.top_k_loop}")
            blocks.append(f"vectorized top {self.k}: {self.top_k_vectorized}")
        return blocks


# --- map ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class TokenMap:
    """A query and its neighbours projected to 2-D (PCA of their unit vectors)."""

    result: NeighborList  # the query's own tokens are left out: the query is its own point
    query_xy: tuple[float, float]
    points: list[tuple[float, float]]  # one per neighbour, in result.neighbors order
    explained: tuple[float, float]  # share of the variance along each axis

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "query": r.query,
            "query_id": r.query_id,
            "query_ids": r.query_ids,
            "query_tokens": r.query_tokens,
            "model": r.model,
            "metric": r.metric,
            "explained_variance": list(self.explained),
            "query_xy": list(self.query_xy),
            "neighbors": [
                {**n.to_json(), "x": x, "y": y} for n, (x, y) in zip(r.neighbors, self.points)
            ],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        r = self.result
        query = r.query if r.query is not None else f"#{r.query_id}"
        rows: list[list[Any]] = [[0, "", query, 1.0, self.query_xy[0], self.query_xy[1]]]
        rows += [
            [n.rank, n.id, n.token, n.similarity, x, y]
            for n, (x, y) in zip(r.neighbors, self.points)
        ]
        return ["rank", "id", "token", "similarity", "x", "y"], rows

    def human(self) -> Human:
        r = self.result
        title = (
            f"{r.title('Map of')} · PCA axes explain {self.explained[0]:.0%} and "
            f"{self.explained[1]:.0%} of the variance"
        )
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns += [Column(r.metric, True), Column("x", True), Column("y", True)]
        rows = [["", f"{r.asked.shown} (query)", "", "", *_xy(self.query_xy)]]
        rows += [
            [str(n.rank), n.label, str(n.id), _sim(n.similarity), *_xy(xy)]
            for n, xy in zip(r.neighbors, self.points)
        ]
        return [Table(title, columns, rows)]


def _xy(xy: tuple[float, float]) -> list[str]:
    return [f"{xy[0]:+.3f}", f"{xy[1]:+.3f}"]


# --- the cache ----------------------------------------------------------------------------------


@dataclass(slots=True)
class CacheListing:
    root: str
    entries: list[CachedModel]

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = [
            "model",
            "path",
            "source",
            "embeddings",
            "vocab_size",
            "dim",
            "size_bytes",
            "entry",
            "quantization",
        ]
        rows = [[("" if v is None else v) for v in e.to_json().values()] for e in self.entries]
        return header, rows

    def human(self) -> Human:
        if not self.entries:
            return [f"no cached models in {self.root}"]
        rows = []
        for e in self.entries:
            size = f"{e.size_bytes / 1e6:,.1f} MB"
            if e.model is None:
                rows.append(["(damaged: rebuilt on next use)", "", "", "", "", size, e.folder])
                continue
            tags = ["output"] if e.embeddings == "output" else []
            tags += [e.quantization] if e.quantization else []
            name = model_label(e.model) + (f" ({', '.join(tags)})" if tags else "")
            where = e.model if e.source in ("local", "gguf") else "hub"
            rows.append(
                [name, where, f"{e.vocab_size:,}", str(e.dim), size, e.folder.rsplit("/", 1)[-1]]
            )
        columns = [Column("model"), Column("source"), Column("vocab", True), Column("dims", True)]
        columns += [Column("size", True), Column("entry")]
        return [Table(f"tokneigh cache · {self.root}", columns, rows)]


@dataclass(slots=True)
class CacheBuild:
    """What ``cache build`` did: built an entry (``seconds``) or found one already there."""

    model: str
    embeddings: str
    vocab_size: int
    dim: int
    path: str
    seconds: float | None  # None: it was already cached

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "embeddings": self.embeddings,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "path": self.path,
            "built": self.seconds is not None,
            "seconds": self.seconds,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        return list(data), [["" if v is None else v for v in data.values()]]

    def human(self) -> Human:
        kind = " (output embeddings)" if self.embeddings == "output" else ""
        shape = f"{self.vocab_size:,} × {self.dim}"
        if self.seconds is None:
            return [f"already cached: {self.model}{kind}, {shape}, at {self.path}"]
        return [f"built {self.model}{kind}: {shape} in {self.seconds:.1f} s, at {self.path}"]


@dataclass(slots=True)
class CacheRemoval:
    root: str
    removed: list[CachedModel]

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "removed": [e.to_json() for e in self.removed]}

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        return CacheListing(self.root, self.removed).tsv()

    def human(self) -> Human:
        n = len(self.removed)
        lines: Human = [f"removed {n} cached {'entry' if n == 1 else 'entries'} from {self.root}"]
        lines += [
            f"  {e.label or e.folder}" + (" (output)" if e.embeddings == "output" else "")
            for e in self.removed
        ]
        return lines


# --- the whole vocabulary -----------------------------------------------------------------------


@dataclass(slots=True)
class NeighborGraph:
    """The k nearest tokens of every token (self excluded), as arrays: what ``graph`` writes
    to a file and ``hubness`` counts. Row i of ``neighbors`` and ``similarities`` belongs to
    token ``ids[i]``, best first, ties by lower id."""

    model: str
    metric: str
    k: int
    include_special: bool
    ids: Any  # np.ndarray (n,) int64
    neighbors: Any  # np.ndarray (n, k) int64 token ids
    similarities: Any  # np.ndarray (n, k) float64
    seconds: float  # to compute it (0 when it came from the cache)
    cached: bool = False  # read from the cache entry, not computed by this call


@dataclass(slots=True)
class GraphFile:
    """What ``tokneigh graph`` wrote."""

    path: str
    file_format: str
    model: str
    metric: str
    k: int
    tokens: int
    include_special: bool
    seconds: float
    cached: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.path,
            "format": self.file_format,
            "model": self.model,
            "metric": self.metric,
            "k": self.k,
            "tokens": self.tokens,
            "include_special": self.include_special,
            "seconds": self.seconds,
            "cached": self.cached,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        return list(data), [list(data.values())]

    def human(self) -> Human:
        how = "from the cache" if self.cached else f"in {self.seconds:.1f} s"
        return [
            f"wrote the {self.k} nearest neighbours ({self.metric}) of {self.tokens:,} tokens "
            f"of {model_label(self.model)} to {self.path} ({self.file_format}), {how}"
        ]


@dataclass(slots=True)
class HubToken:
    id: int
    token: str | None
    label: str
    occurrences: int  # N_k: how many tokens list it among their k nearest

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "occurrences": self.occurrences}


@dataclass(slots=True)
class Hubness:
    """k-occurrence N_k over a vocabulary (Radovanović et al., JMLR 2010): how often each
    token is among the k nearest of the others, and how skewed that is."""

    model: str
    k: int
    metric: str
    tokens: int  # the tokens counted (the graph's rows)
    skewness: float  # of N_k: E[(N - mean)^3] / std^3; 0 for a perfectly even graph
    max: int
    antihub_share: float  # share of tokens that no token lists (N_k = 0)
    hubs: list[HubToken]  # the largest N_k, ties by lower id
    occurrences: Any = None  # np.ndarray (tokens,) N_k in the graph's row order (not in JSON)

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "metric": self.metric,
            "tokens": self.tokens,
            "skewness": self.skewness,
            "max": self.max,
            "antihub_share": self.antihub_share,
            "hubs": [h.to_json() for h in self.hubs],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[r, h.id, h.token, h.occurrences] for r, h in enumerate(self.hubs, start=1)]
        return ["rank", "id", "token", "occurrences"], rows

    def human(self) -> Human:
        title = (
            f"Hubs of {model_label(self.model)} · k = {self.k} · {self.metric} · "
            f"{self.tokens:,} tokens"
        )
        subtitle = [
            f"skewness of N_{self.k}: {self.skewness:.2f} · largest N_{self.k}: {self.max:,} · "
            f"anti-hubs (N_{self.k} = 0): {self.antihub_share:.1%}"
        ]
        rows = [
            [str(r), h.label, str(h.id), f"{h.occurrences:,}"]
            for r, h in enumerate(self.hubs, start=1)
        ]
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns.append(Column(f"N_{self.k}", True))
        return [Table(title, columns, rows, subtitle=subtitle)]


@dataclass(slots=True)
class SpaceStats:
    """The shape of an embedding space under a metric."""

    model: str
    metric: str
    tokens: int  # rows measured (usable; special ones only when included)
    anisotropy: float  # mean similarity of the sampled pairs of distinct tokens
    sample_pairs: int
    seed: int
    norms: dict[str, float]  # of the raw rows: mean, std, min, max
    top_pc_variance: list[float]  # share of the variance along each of the top 10 components
    hidden_rows: int  # rows with no direction (NaN, infinite or zero): never measured
    special_rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "tokens": self.tokens,
            "anisotropy": self.anisotropy,
            "sample_pairs": self.sample_pairs,
            "seed": self.seed,
            "norms": self.norms,
            "top_pc_variance": self.top_pc_variance,
            "hidden_rows": self.hidden_rows,
            "special_rows": self.special_rows,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows: list[list[Any]] = [
            ["anisotropy", self.anisotropy],
            ["sample_pairs", self.sample_pairs],
            *[[f"norm_{key}", value] for key, value in self.norms.items()],
            *[[f"pc{i}_variance", v] for i, v in enumerate(self.top_pc_variance, start=1)],
            ["hidden_rows", self.hidden_rows],
            ["special_rows", self.special_rows],
        ]
        return ["measure", "value"], rows

    def human(self) -> Human:
        n = self.norms
        shares = self.top_pc_variance
        rows = [
            ["tokens measured", f"{self.tokens:,}"],
            [
                f"anisotropy (mean {self.metric} of random pairs)",
                f"{self.anisotropy:.3f}",
            ],
            [f"pairs sampled (distinct tokens, seed {self.seed})", f"{self.sample_pairs:,}"],
            ["norm of the raw rows: mean ± std", f"{n['mean']:.3f} ± {n['std']:.3f}"],
            ["norm of the raw rows: min … max", f"{n['min']:.3f} … {n['max']:.3f}"],
            ["variance along the top principal component", f"{shares[0]:.1%}" if shares else "-"],
            [f"variance along the top {len(shares)} components", f"{sum(shares):.1%}"],
            ["rows with no direction (never measured)", f"{self.hidden_rows:,}"],
            ["special tokens", f"{self.special_rows:,}"],
        ]
        title = f"Shape of {model_label(self.model)} · {self.metric}"
        return [Table(title, [Column("measure"), Column("value", True)], rows)]


# --- how neighbourhoods change between two spaces (diff.py) -------------------------------------


def _rho(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: a constant row has no ranking


@dataclass(slots=True)
class DiffItem:
    """One query's neighbourhood in A and in B."""

    source: str  # "word" (asked for) or "sample" (drawn)
    query: str  # the word, or the sampled token's text
    id: int | None  # the token id in A of a one-token query
    label: str
    overlap: float  # |N_A ∩ N_B| / k
    jaccard: float  # |N_A ∩ N_B| / |N_A ∪ N_B|
    spearman: float  # rho of the two score rows over the shared tokens (NaN if undefined)
    neighbors_a: list[Neighbor]  # ids in A
    neighbors_b: list[Neighbor]  # ids in B

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "query": self.query,
            "id": self.id,
            "overlap": self.overlap,
            "jaccard": self.jaccard,
            "spearman": self.spearman,
            "neighbors_a": [n.to_json() for n in self.neighbors_a],
            "neighbors_b": [n.to_json() for n in self.neighbors_b],
        }


@dataclass(slots=True)
class DiffSummary:
    queries: int
    overlap_mean: float
    overlap_median: float
    jaccard_mean: float
    jaccard_median: float
    spearman_mean: float  # over the queries with a defined rho
    spearman_median: float
    overlap_below_half: float  # share of queries with overlap < 0.5

    def to_json(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "overlap": {"mean": self.overlap_mean, "median": self.overlap_median},
            "jaccard": {"mean": self.jaccard_mean, "median": self.jaccard_median},
            "spearman": {"mean": self.spearman_mean, "median": self.spearman_median},
            "overlap_below_half": self.overlap_below_half,
        }


@dataclass(slots=True)
class NeighborhoodDiff:
    """How the top-k neighbourhoods of words and of sampled tokens change from space A to
    space B, over the tokens both vocabularies share (``tokneigh.analyses.diff``)."""

    model_a: str
    embeddings_a: str
    metric_a: str
    model_b: str
    embeddings_b: str
    metric_b: str
    k: int
    vocab_a: int
    vocab_b: int
    shared: int  # tokens matched by string: usable and not special in both
    sample: int  # sampled tokens asked for (all shared ones when fewer)
    seed: int
    items: list[DiffItem]  # the words in order, then the sample by id in A
    summary: DiffSummary
    most_changed: list[int]  # positions in items, most changed first

    def _side(self, which: str) -> dict[str, Any]:
        model, embeddings, metric, vocab = (
            (self.model_a, self.embeddings_a, self.metric_a, self.vocab_a)
            if which == "a"
            else (self.model_b, self.embeddings_b, self.metric_b, self.vocab_b)
        )
        return {"model": model, "embeddings": embeddings, "metric": metric, "vocab_size": vocab}

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self._side("a"),
            "b": self._side("b"),
            "k": self.k,
            "shared_tokens": self.shared,
            "sample": self.sample,
            "seed": self.seed,
            "summary": self.summary.to_json(),
            "items": [i.to_json() for i in self.items],
            "most_changed": self.most_changed,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [[i.source, i.query, i.id, i.overlap, i.jaccard, i.spearman] for i in self.items]
        return ["source", "query", "id", "overlap", "jaccard", "spearman"], rows

    def _named(self, which: str) -> str:
        side = self._side(which)
        return f"{model_label(side['model'])} ({side['embeddings']}, {side['metric']})"

    def human(self) -> Human:
        s, k = self.summary, self.k
        words = [i for i in self.items if i.source == "word"]
        drawn = len(self.items) - len(words)
        asked = [f"{len(words):,} word{'s' if len(words) != 1 else ''}"] if words else []
        if drawn:
            asked.append(f"{drawn:,} sampled tokens (seed {self.seed})")
        subtitle = [
            f"A: {self._named('a')} · B: {self._named('b')}",
            f"{self.shared:,} shared tokens matched by string (A has {self.vocab_a:,}, "
            f"B {self.vocab_b:,}) · " + " + ".join(asked),
        ]
        rows = [
            [f"overlap@{k}", f"{s.overlap_mean:.3f}", f"{s.overlap_median:.3f}"],
            ["Jaccard", f"{s.jaccard_mean:.3f}", f"{s.jaccard_median:.3f}"],
            ["Spearman ρ", _rho(s.spearman_mean), _rho(s.spearman_median)],
            [f"share with overlap@{k} < 0.5", f"{s.overlap_below_half:.1%}", ""],
        ]
        columns = [Column("measure"), Column("mean", True), Column("median", True)]
        out: Human = [
            Table(f"How neighbourhoods change · k = {k}", columns, rows, subtitle=subtitle)
        ]
        if words:
            rows = [
                [
                    w.label,
                    "" if w.id is None else str(w.id),
                    f"{w.overlap:.2f}",
                    f"{w.jaccard:.2f}",
                    _rho(w.spearman),
                ]
                for w in words
            ]
            columns = [Column("word"), Column("id", True), Column(f"overlap@{k}", True)]
            columns += [Column("Jaccard", True), Column("ρ", True)]
            out.append(Table("Words", columns, rows))
        for position in self.most_changed:
            item = self.items[position]
            title = (
                f"Most changed: {item.label} · overlap@{k} {item.overlap:.2f} · "
                f"Jaccard {item.jaccard:.2f} · ρ {_rho(item.spearman)}"
            )
            pairs = max(len(item.neighbors_a), len(item.neighbors_b))
            rows = []
            for r in range(pairs):
                row = [str(r + 1)]
                for listed in (item.neighbors_a, item.neighbors_b):
                    n = listed[r] if r < len(listed) else None
                    row += [n.label, _sim(n.similarity)] if n is not None else ["", ""]
                rows.append(row)
            columns = [Column("rank", True), Column("A"), Column(self.metric_a, True)]
            columns += [Column("B"), Column(self.metric_b, True)]
            out.append(Table(title, columns, rows))
        return out


# --- under-trained tokens (scan) -----------------------------------------------------------------

_SCAN_SCORES = {
    "magikarp": "cosine distance to the reference mean, first principal component removed",
    "norm": "L2 norm of the raw row",
    "centroid": "L2 distance of the raw row to the mean row",
}


@dataclass(slots=True)
class ScanToken:
    rank: int
    id: int
    token: str | None  # decoded text; None for a row the tokenizer names no token for
    label: str
    score: float
    reachable: bool  # encoding the token's own text yields its id
    special: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "token": self.token,
            "score": self.score,
            "reachable": self.reachable,
            "special": self.special,
        }


@dataclass(slots=True)
class TokenScan:
    """Tokens ranked from most to least likely under-trained by one indicator (``scan``)."""

    model: str
    embeddings: str  # the matrix scored: "input" or "output"
    indicator: str
    reference_kind: str | None  # "auto" or "ids" (magikarp); None for the other indicators
    reference_ids: list[int]
    reference_unreachable: int  # of an automatic reference: unreachable tokens in it
    reference_named: int  # ... and named unused slots ([unused12])
    tokens: list[ScanToken]
    ranked: int  # rows scored (those with a direction)
    unusable: int  # rows left out: NaN, infinite or zero, so no score
    unreachable: int  # rows whose own text does not encode to them
    scores: Any = None  # np.ndarray (ranked,) the indicator of every scored row (not in JSON)

    def to_json(self) -> dict[str, Any]:
        reference = None
        if self.reference_kind is not None:
            reference = {"kind": self.reference_kind, "ids": self.reference_ids}
        return {
            "indicator": self.indicator,
            "reference": reference,
            "tokens": [t.to_json() for t in self.tokens],
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        rows = [
            [t.rank, t.id, t.token, t.score, str(t.reachable).lower(), str(t.special).lower()]
            for t in self.tokens
        ]
        return ["rank", "id", "token", "score", "reachable", "special"], rows

    def reference_line(self) -> str | None:
        """Which reference tokens magikarp measured against, and how many."""
        if self.reference_kind is None:
            return None
        n = len(self.reference_ids)
        if self.reference_kind == "ids":
            return f"reference: {n:,} given token id{'s' if n != 1 else ''}"
        return (
            f"reference (automatic): {n:,} tokens, {self.reference_unreachable:,} unreachable "
            f"and {self.reference_named:,} named unused slots"
        )

    def human(self) -> Human:
        title = (
            f"Under-trained tokens of {model_label(self.model)} · {self.indicator} · "
            f"{self.embeddings} embeddings"
        )
        subtitle = [f"score: {_SCAN_SCORES[self.indicator]}; smallest first"]
        line = self.reference_line()
        if line is not None:
            subtitle.append(line)
        counts = f"{self.ranked:,} tokens ranked, {self.unreachable:,} unreachable"
        if self.unusable:
            counts += f", {self.unusable:,} rows with no direction left out"
        subtitle.append(counts)
        rows = [
            [
                str(t.rank),
                t.label,
                str(t.id),
                f"{t.score:.4f}",
                "yes" if t.reachable else "no",
                "yes" if t.special else "",
            ]
            for t in self.tokens
        ]
        columns = [Column("rank", True), Column("token"), Column("id", True)]
        columns += [Column("score", True), Column("reachable"), Column("special")]
        return [Table(title, columns, rows, subtitle=subtitle)]
