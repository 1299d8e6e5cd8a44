"""A model's tokenizer, and how its tokens are shown: ``Vocabulary``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..results import Tokenization, Tokenizations

if TYPE_CHECKING:
    from ..tokens.codec import TokenCodec

# The longest text a query or tokenize takes, in UTF-8 bytes: tokenizing 10 MB would take
# gigabytes and minutes; no word or passage worth a neighbour list comes near 1 MB.
MAX_TEXT_BYTES = 1_000_000


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
            text=text,
            ids=ids,
            tokens=[t for t, _ in shown],
            labels=[label for _, label in shown],
            unknown=self.codec.unknown_positions(text, ids),
        )
