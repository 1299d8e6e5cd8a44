"""Tokenization with the model's own tokenizer, and display of token ids (``TokenCodec``).

Uses the `tokenizers` library on the cached ``tokenizer.json`` (never transformers). Parsing
that file costs more than the rest of a cached query, so a codec first answers from
``tokenizer.index`` (``tokindex``) beside it, when one was written for these exact bytes and
these display rules (``write_index``), and parses the tokenizer only for what the index cannot
answer. The display rules themselves are in ``display``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import display
from . import index as tokindex


def _parse_tokenizer(data: bytes) -> Any:
    """A ``tokenizers.Tokenizer`` from the bytes of a ``tokenizer.json``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    # A saved tokenizer.json can carry padding/truncation (MiniLM pads to 128): never.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def write_index(tokenizer_path: Path, style: str, special_ids: Iterable[int]) -> None:
    """Build the index of the tokenizer at ``tokenizer_path``, with the displays a
    ``TokenCodec(tokenizer_path, style, special_ids)`` shows, and store it atomically as
    ``tokenizer_path.parent / "tokenizer.index"``. Raises on any failure (an unreadable or
    unparsable tokenizer.json, a folder that cannot be written): the caller decides."""
    path = Path(tokenizer_path)
    data = path.read_bytes()  # the index is bound to these very bytes
    tokindex.save_index(path, build_index(data, style, special_ids))


def build_index(data: bytes, style: str, special_ids: Iterable[int]) -> bytes:
    """The index of the tokenizer.json ``data`` (see ``write_index``), built once per process
    for the same bytes and rules; writes nothing."""
    specials = frozenset(int(i) for i in special_ids)
    import hashlib

    memo_key = (hashlib.sha256(data).digest(), style, specials)
    content = _built.get(memo_key)
    if content is None:

        def describe(token_id: int, raw: str | None) -> tuple[str, str, bool]:
            return display.describe(token_id, raw, style, specials)

        key = display.display_key(style, specials)
        _, content = tokindex.build_index(
            _parse_tokenizer(data), tokindex.source_print(data), (key, describe)
        )
        if len(_built) >= 4:
            _built.pop(next(iter(_built)))
        _built[memo_key] = content
    return content


# Indexes this process built, by the tokenizer bytes and display rules they were made from: a
# model's input and output entries share one tokenizer, and a rebuild the same one again;
# building (with its encoder check on thousands of probes) takes about a second for GPT-2.
_built: dict[tuple[object, ...], bytes] = {}


# The model's unknown token in a tokenizer.json: WordPiece, BPE and WordLevel name it
# ("unk_token": "[UNK]"), Unigram gives its id ("unk_id": 0). Found by a search of the bytes,
# not a parse of the whole file (9 MB for Llama 3), which a cached query never pays for. A
# vocabulary entry is "token": id (an integer), and a token text holding these words is
# escaped (\"unk_token\"), so neither matches.
_UNIGRAM = re.compile(rb'"type"\s*:\s*"Unigram"')
_UNKNOWN = re.compile(rb'"unk_(token|id)"\s*:\s*("(?:[^"\\]|\\.)*"|\d{1,18}|null)')


def _unknown_token(data: bytes) -> tuple[str | None, int | None]:
    """(unknown token's text, or None; its id, when the tokenizer gives one) of a
    tokenizer.json's bytes: one pass over them (8 ms for 9 MB)."""
    import json

    for match in _UNKNOWN.finditer(data):
        key, value = match.group(1), match.group(2)
        if value == b"null":
            continue
        if key == b"id" and value.isdigit():
            # Only a Unigram model has one (a BPE vocabulary may hold a token "unk_id").
            if _UNIGRAM.search(data):
                return None, int(value)
            continue
        if key == b"token" and value.startswith(b'"'):
            try:
                token = json.loads(value)
            except ValueError:
                continue
            if isinstance(token, str) and token:
                return token, None
    return None, None


class TokenCodec:
    """The model's tokenizer plus display of token ids.

    Never writes a file (``write_index`` does). Everything it needs is read at construction, so
    it keeps answering if its folder is deleted or replaced afterwards.
    """

    def __init__(self, tokenizer_path: Path, style: str, special_ids: Iterable[int] = ()) -> None:
        self._path = Path(tokenizer_path)
        # Read once, kept: the index is checked against these bytes, and the tokenizer (when
        # needed) is parsed from them, not from a file that may have changed or gone since.
        self._data = self._path.read_bytes()
        self._loaded: Any = None
        self.style = style
        self.special_ids = frozenset(int(i) for i in special_ids)
        self._fold_groups: dict[str, list[int]] | None = None
        self._special: dict[int, bool] = {}
        self._shown_memo: dict[int, tuple[str, str]] = {}
        self._unknown: tuple[str | None, int | None] | None = None  # see unknown_positions
        index = tokindex.open_index(self._path, self._data)
        if index is not None and index.display_key != self._display_key():
            index = None  # displays made under other rules (or none): not this codec's
        self._index = index
        if index is None:
            self._tokenizer  # noqa: B018 - parse now: a damaged file fails here, at load

    @property
    def has_index(self) -> bool:
        """Whether a current index (these tokenizer.json bytes, this tokenizers binary, these
        display rules) was loaded; without one every answer comes from tokenizer.json."""
        return self._index is not None

    @property
    def _tokenizer(self) -> Any:
        """The model's own tokenizer (``tokenizers.Tokenizer``), parsed on first use."""
        if self._loaded is None:
            self._loaded = _parse_tokenizer(self._data)
        return self._loaded

    @property
    def size(self) -> int:
        if self._index is not None:
            return self._index.size
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Token ids exactly as the model's tokenizer produces them, without special tokens."""
        # Once parsed (for text the index declined), the tokenizer is as fast: use it.
        if self._loaded is None and self._index is not None:
            ids = self._index.encode(text)
            if ids is not None:
                return ids
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def unknown_positions(self, text: str, ids: list[int]) -> list[int]:
        """The positions in ``ids`` (``text`` encoded) of the tokenizer's unknown token standing
        for text the vocabulary has no token for (an emoji in BERT's WordPiece). The unknown
        token typed as such (``[UNK]``) asks for that token: as many as the text spells out are
        not counted (which of several is which cannot be told without offsets: then none)."""
        if not ids or self.style == display.BYTE_LEVEL:
            return []  # byte-level BPE spells any text in bytes: it has no unknown token to use
        if self._unknown is None:
            self._unknown = _unknown_token(self._data)
        token, token_id = self._unknown
        if token_id is not None:
            positions = [i for i, t in enumerate(ids) if t == token_id]
            token = self.raw(token_id) if positions else token
        elif token is not None:
            named = {t for t in set(ids) if self.raw(t) == token}
            positions = [i for i, t in enumerate(ids) if t in named]
        else:
            return []
        if positions and token and text.count(token) >= len(positions):
            return []
        return positions

    def raw(self, token_id: int) -> str | None:
        """The token string as stored in the vocabulary, or None for an id it does not name."""
        if self._index is not None:
            return self._index.raw(int(token_id))
        raw: str | None = self._tokenizer.id_to_token(int(token_id))
        return raw

    def text(self, token_id: int) -> str:
        """The decoded text of one token (``\\xNN`` escapes for a partial UTF-8 sequence)."""
        return self.shown(token_id)[0]

    def label(self, token_id: int) -> str:
        """The token as shown to a person: quoted, fragments as ``b"\\xNN"``."""
        return self.shown(token_id)[1]

    def shown(self, token_id: int) -> tuple[str, str]:
        """(text, label) of one token: see ``text`` and ``label``."""
        if self._index is not None:
            stored = self._index.shown(token_id)
            if stored is not None:
                return stored
        # Memo: a batch of queries shows many of the same neighbours again.
        shown = self._shown_memo.get(token_id)
        if shown is None:
            text, label, _ = self._describe(token_id, self.raw(token_id))
            shown = self._shown_memo[token_id] = (text, label)
        return shown

    def _describe(self, token_id: int, raw: str | None) -> tuple[str, str, bool]:
        """(text, label, is_special) of a token from its stored string: the display rules,
        which an index stores for every id (under ``_display_key``)."""
        return display.describe(token_id, raw, self.style, self.special_ids)

    def _display_key(self) -> list[Any]:
        return display.display_key(self.style, self.special_ids)

    # --- filters (neighbors --words-only, --dedupe, special tokens) ---------------------------

    def is_special(self, token_id: int) -> bool:
        """A control token, a reserved slot (``[unused12]``), or a row the tokenizer does not
        name: never a word, so neighbour lists leave it out unless asked."""
        index = self._index
        if index is not None and 0 <= token_id < index.count:
            return token_id in index.hidden
        known = self._special.get(token_id)
        if known is None:  # memo: a batch of queries asks about the same candidates again
            known = self._describe(token_id, self.raw(token_id))[2]
            self._special[token_id] = known
        return known

    def special_among(self, rows: int) -> list[int]:
        """Every id below ``rows`` that ``is_special``, ascending: what neighbour lists hide."""
        index = self._index
        if index is not None:
            named = min(rows, index.count)
            stored = sorted(i for i in index.hidden if i < named)
            return stored + [i for i in range(named, rows) if self.is_special(i)]
        return [i for i in range(rows) if self.is_special(i)]  # no index: a scan

    def has_letter(self, token_id: int) -> bool:
        """Whether the token's text holds at least one letter (any script)."""
        raw = self.raw(token_id)
        if raw is None:
            return False
        if token_id in self.special_ids:
            text = raw
        else:
            # Decode the bytes, not the \\xNN display escapes (whose "x" is no letter).
            text = display.token_bytes(raw, self.style).decode("utf-8", "ignore")
        return any(ch.isalpha() for ch in text)

    def fold_key(self, token_id: int) -> str | None:
        """What ``--dedupe`` compares: the text without one leading space, lower-cased, so
        ``Mike``, `` Mike``, ``mike`` and `` MIKE`` share a key. None: never folded (special
        tokens, byte fragments)."""
        if self.is_special(token_id):
            return None
        return display.fold_key(self.raw(token_id) or "", self.style)

    def fold_groups(self) -> dict[str, list[int]]:
        """Every key that several token ids share, with those ids (ascending); built once.

        A scan of the whole vocabulary (a tenth of a second for GPT-2), paid only by --dedupe
        so that a row can list all of its variants, not just those near the top.
        """
        if self._fold_groups is None:
            groups: dict[str, list[int]] = {}
            vocab = self._tokenizer.get_vocab(with_added_tokens=True)
            for raw, token_id in vocab.items():
                if token_id in self.special_ids or display.RESERVED.fullmatch(raw):
                    continue
                key = display.fold_key(raw, self.style)
                if key is not None:
                    groups.setdefault(key, []).append(token_id)
            self._fold_groups = {k: sorted(v) for k, v in groups.items() if len(v) > 1}
        return self._fold_groups
