"""What a query stands for: a tokenized text, a token id, or a vector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .frames import Kind, records_frame
from .notebook import Shown, described, html_of, ids_shown, term
from .tables import Human, joined_pieces, quoted, short_quoted

_TOKEN_KINDS: dict[str, Kind] = {
    "position": "int", "id": "int", "token": "text", "label": "text", "unknown": "bool"
}


@dataclass(slots=True)
class Tokenization:
    """A text as the model's tokenizer splits it."""

    text: str
    ids: list[int]
    tokens: list[str]  # decoded text of each token, e.g. " banana"
    labels: list[str]  # as shown to a person: quoted, b"\xNN" for byte fragments
    # Positions in ``ids`` of the unknown token standing for text the vocabulary lacks
    # (``TokenCodec.unknown_positions``); in the JSON only when there are any.
    unknown: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {"text": self.text, "ids": self.ids, "tokens": self.tokens, "labels": self.labels}
        return {**data, "unknown": self.unknown} if self.unknown else data

    def records(self) -> list[dict[str, Any]]:
        """One record per token, from the JSON: position (0-based), id, token, label, and
        whether it is the unknown token standing for text the vocabulary lacks."""
        data = self.to_json()
        unknown = set(data.get("unknown", ()))
        return [
            {"position": p, "id": i, "token": t, "label": label, "unknown": p in unknown}
            for p, (i, t, label) in enumerate(zip(data["ids"], data["tokens"], data["labels"]))
        ]

    def to_pandas(self) -> Any:
        """One row per token: position, id, token, label, unknown."""
        return records_frame(self.records(), _TOKEN_KINDS)

    def __repr__(self) -> str:
        return described(
            "Tokenization",
            ("text", self.text),
            ("tokens", len(self.ids)),
            ("ids", ids_shown(self.ids)),
            ("unknown", len(self.unknown) or None),
        )

    def human(self) -> Human:
        return [self.sentence()]

    def _repr_html_(self) -> str:
        return html_of(self.human())

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

    def to_pandas(self) -> Any:
        """One row per token of every text: text_index (1-based, as in TSV), text (repeated:
        a reference to one string, not a copy), then ``Tokenization.to_pandas``'s columns."""
        records = [
            {"text_index": number, "text": t.text, **row}
            for number, t in enumerate(self.items, start=1)
            for row in t.records()
        ]
        return records_frame(records, {"text_index": "int", "text": "text", **_TOKEN_KINDS})

    def __repr__(self) -> str:
        first = self.items[0].text if self.items else None
        return described(
            "Tokenizations",
            ("texts", len(self.items)),
            ("first", first),
            ("tokens", sum(len(t.ids) for t in self.items)),
        )

    def _repr_html_(self) -> str:
        return html_of(self.human())

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
    unknown: list[int] = field(default_factory=list)  # as ``Tokenization.unknown``

    @property
    def shown(self) -> str:
        """`"banana"`, `token #5` for an id query, `vector FILE:ROW`, `the centroid`."""
        if self.vector is not None:
            return self.vector.shown
        return f"token #{self.token_id}" if self.text is None else short_quoted(self.text)

    def described(self) -> str:
        """The query with its pieces: `"banana" = "ban" + "ana" (mean of 2 tokens)`,
        `token #5 ("&")`."""
        if self.vector is not None:
            return self.shown
        if self.text is None:
            return f"{self.shown} ({self.labels[0]})"
        if len(self.ids) > 1:
            return f"{self.shown} = {joined_pieces(self.labels)} (mean of {len(self.ids):,} tokens)"
        return self.shown

    def __repr__(self) -> str:
        kind = "vector" if self.vector is not None else "id" if self.text is None else "text"
        return described(
            "Query",
            (kind, self.repr_term()),
            ("tokens", len(self.ids)),
            ("ids", None if self.vector is not None else ids_shown(self.ids)),
        )

    def repr_term(self) -> Shown:
        """The query in a result's repr: `'banana'`, `#5`, `<the centroid>`."""
        vector = None if self.vector is None else self.vector.shown
        return term(self.text, self.token_id, vector)

    def to_json(self) -> dict[str, Any]:
        data = {
            "text": self.text,
            "query_id": self.token_id,
            "ids": self.ids,
            "tokens": self.tokens,
        }
        return {**data, "unknown": self.unknown} if self.unknown else data

    def term(self) -> str | int:
        """The query in a JSON list of terms: its text, or its token id."""
        return self.token_id if self.text is None else self.text  # type: ignore[return-value]
