"""The tokenizer index (tokindex), its fast encoder (bpe) and what TokenCodec does with them.

Each test works on a copy of GPT-2's real tokenizer.json in its own folder: no cache involved.
"""

from __future__ import annotations

import json
import os
import random
import shutil

import pytest

from tokneigh.tokens import bpe
from tokneigh.tokens import codec as tokens
from tokneigh.tokens import index as tokindex
from tokneigh.tokens.codec import TokenCodec, write_index
from tokneigh.tokens.display import BYTE_LEVEL, token_bytes

SPECIAL = [50256]  # GPT-2's <|endoftext|>


@pytest.fixture
def fresh_builds():
    """write_index remembers what this process built; a test that corrupts the encoder must
    neither see nor leave such a memo."""
    tokens._built.clear()
    yield
    tokens._built.clear()


@pytest.fixture
def folder(gpt2_dir, tmp_path):
    """A folder holding only GPT-2's tokenizer.json."""
    target = tmp_path / "entry"
    target.mkdir()
    shutil.copyfile(gpt2_dir / "tokenizer.json", target / "tokenizer.json")
    return target


def _real(path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _listing(folder) -> dict[str, bytes]:
    """Every file in the folder (hidden ones too) with its content."""
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def _strings(tokenizer, count: int, seed: int) -> list[str]:
    """Text the fast encoder takes (ASCII words, runs of spaces, contractions) and text it
    declines (non-ASCII, control characters, an added token)."""
    rng = random.Random(seed)
    vocab = []
    for i in range(tokenizer.get_vocab_size(with_added_tokens=True)):
        data = token_bytes(tokenizer.id_to_token(i), BYTE_LEVEL)
        if data.isascii() and data.decode("ascii").isprintable():
            vocab.append(data.decode("ascii"))
    out = ["", " ", "Mike", " Mike", "banana", "don't", "hello   world", "café", "日本語",
           "tab\there", "a<|endoftext|>b", "naïve résumé", "🙂 ok"]  # fmt: skip
    alphabet = [chr(c) for c in range(0x20, 0x7F)]
    for _ in range(count):
        kind = rng.randrange(3)
        if kind == 0:
            out.append("".join(rng.choices(alphabet, k=rng.randint(1, 25))))
        elif kind == 1:
            out.append(" ".join(rng.choices(vocab, k=rng.randint(1, 5))))
        else:
            out.append("".join(rng.choices(vocab, k=rng.randint(2, 4))))
    return out


# --- the verified-or-nothing rule -------------------------------------------------------


def _corrupted_tables(real):
    """bpe._bpe_tables, but the first merge (rank 0, GPT-2's "Ġ t") makes the wrong token:
    the result of the second merge, so that every later merge that builds on "Ġt" misses."""

    def corrupted(config):
        byte_ids, merges = real(config)
        by_rank = {rank: key for key, (rank, _) in merges.items()}
        first, second = by_rank[0], by_rank[1]
        merges = dict(merges)
        merges[first] = (0, merges[second][1])
        return byte_ids, merges

    return corrupted


def test_a_wrong_fast_encoder_is_left_out_and_encoding_goes_to_tokenizers(
    folder, monkeypatch, fresh_builds
):
    path = folder / "tokenizer.json"
    tokenizer = _real(path)
    config = json.loads(path.read_text(encoding="utf-8"))
    raw = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]

    # The real table passes the check (else this test would prove nothing)...
    honest = bpe.encoder_for(config)
    assert honest is not None and bpe.disagreements(honest, tokenizer, bpe.probes(raw)) == []

    # ...and the corrupted one really gets some probe wrong.
    monkeypatch.setattr(bpe, "_bpe_tables", _corrupted_tables(bpe._bpe_tables))
    wrong = bpe.encoder_for(config)
    assert wrong is not None
    assert bpe.disagreements(wrong, tokenizer, bpe.probes(raw))
    assert not bpe.agrees(wrong, tokenizer, raw)

    write_index(path, BYTE_LEVEL, SPECIAL)
    index = tokindex.open_index(path)
    assert index is not None and not index.can_encode  # stored without the BPE part
    assert index.encode("Mike") is None
    codec = TokenCodec(path, BYTE_LEVEL, SPECIAL)
    assert codec.has_index
    strings = _strings(tokenizer, 400, seed=11)
    expected = tokenizer.encode_batch(strings, add_special_tokens=False)
    for text, encoding in zip(strings, expected):
        assert codec.encode(text) == encoding.ids, text


def test_the_real_fast_encoder_is_kept(folder):
    path = folder / "tokenizer.json"
    write_index(path, BYTE_LEVEL, SPECIAL)
    index = tokindex.open_index(path)
    assert index is not None and index.can_encode and index.encode("Mike") == [16073]


# --- TokenCodec and write_index -----------------------------------------------------------


def test_a_codec_never_writes_a_file(folder):
    path = folder / "tokenizer.json"
    before = _listing(folder)
    codec = TokenCodec(path, BYTE_LEVEL, SPECIAL)  # no index at all
    assert not codec.has_index and codec.encode("Mike") == [16073]
    assert _listing(folder) == before

    write_index(path, BYTE_LEVEL, SPECIAL)
    before = _listing(folder)
    # An index made for other display rules is not used, and not rewritten either.
    other = TokenCodec(path, BYTE_LEVEL, [*SPECIAL, 220])
    assert not other.has_index and other.label(220) == "Ġ"
    current = TokenCodec(path, BYTE_LEVEL, SPECIAL)
    assert current.has_index
    assert _listing(folder) == before


def test_write_index_gives_a_codec_with_the_same_answers(folder, tmp_path):
    path = folder / "tokenizer.json"
    plain_folder = tmp_path / "plain"
    plain_folder.mkdir()
    shutil.copyfile(path, plain_folder / "tokenizer.json")
    plain = TokenCodec(plain_folder / "tokenizer.json", BYTE_LEVEL, SPECIAL)
    assert not plain.has_index

    write_index(path, BYTE_LEVEL, SPECIAL)
    assert sorted(os.listdir(folder)) == ["tokenizer.index", "tokenizer.json"]  # no scratch
    fast = TokenCodec(path, BYTE_LEVEL, SPECIAL)
    assert fast.has_index and fast._loaded is None  # answers without parsing tokenizer.json

    assert fast.size == plain.size == 50257
    for text in _strings(_real(path), 3000, seed=5):
        assert fast.encode(text) == plain.encode(text), text
    rows = plain.size + 3  # and ids past the vocabulary
    for i in range(rows):
        assert fast.raw(i) == plain.raw(i), i
        assert fast.shown(i) == plain.shown(i), i
        assert fast.is_special(i) == plain.is_special(i), i
    assert fast.special_among(rows) == plain.special_among(rows) == [50256, 50257, 50258, 50259]
    assert [fast.has_letter(i) for i in range(0, 50257, 97)] == [
        plain.has_letter(i) for i in range(0, 50257, 97)
    ]
    assert [fast.fold_key(i) for i in range(0, 50257, 97)] == [
        plain.fold_key(i) for i in range(0, 50257, 97)
    ]


def test_the_index_is_a_safetensors_file_bound_to_its_source(folder):
    from safetensors import safe_open

    path = folder / "tokenizer.json"
    write_index(path, BYTE_LEVEL, SPECIAL)
    with safe_open(str(folder / tokindex.INDEX), framework="numpy") as stored:
        meta = stored.metadata()
        names = set(stored.keys())
    assert meta["version"] == str(tokindex.VERSION)
    assert json.loads(meta["source"]) == list(tokindex.source_print(path.read_bytes()))
    assert {"offsets", "blob", "shown_offsets", "shown_blob", "hidden", "bpe_keys"} <= names

    data = path.read_bytes()
    assert tokindex.open_index(path, data) is not None
    assert tokindex.open_index(path, data + b" ") is None  # other bytes: not this index
    assert TokenCodec(path, BYTE_LEVEL, SPECIAL).has_index
    path.write_bytes(data + b"\n")  # the same tokenizer, but not the same bytes
    assert not TokenCodec(path, BYTE_LEVEL, SPECIAL).has_index


def test_write_index_raises_and_leaves_no_scratch_file(folder, monkeypatch):
    path = folder / "tokenizer.json"

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokindex.os, "replace", refuse)
    with pytest.raises(OSError):
        write_index(path, BYTE_LEVEL, SPECIAL)
    assert sorted(os.listdir(folder)) == ["tokenizer.json"]
    monkeypatch.undo()

    path.write_text("{ not json")
    with pytest.raises(Exception):  # noqa: B017 - tokenizers raises a bare Exception
        write_index(path, BYTE_LEVEL, SPECIAL)
    assert sorted(os.listdir(folder)) == ["tokenizer.json"]


def test_a_missing_or_damaged_tokenizer_json_fails_at_construction(folder):
    path = folder / "tokenizer.json"
    write_index(path, BYTE_LEVEL, SPECIAL)
    path.write_text("{ not json")  # the index no longer matches: the file itself is parsed
    with pytest.raises(Exception):  # noqa: B017 - tokenizers raises a bare Exception
        TokenCodec(path, BYTE_LEVEL, SPECIAL)
    path.unlink()
    with pytest.raises(OSError):
        TokenCodec(path, BYTE_LEVEL, SPECIAL)


def test_a_codec_keeps_answering_after_its_folder_is_deleted(folder):
    path = folder / "tokenizer.json"
    write_index(path, BYTE_LEVEL, SPECIAL)
    codec = TokenCodec(path, BYTE_LEVEL, SPECIAL)
    assert codec.has_index and codec._loaded is None  # nothing parsed yet
    expected = {text: _real(path).encode(text, add_special_tokens=False).ids
                for text in ("café", "Mike", "日本語 text", "a<|endoftext|>b")}  # fmt: skip
    shutil.rmtree(folder)
    assert codec.shown(16073) == ("Mike", '"Mike"') and codec.raw(447) == "âĢ"
    # "café" is not ASCII: the fast path declines it, the tokenizer is parsed now, from memory.
    for text, ids in expected.items():
        assert codec.encode(text) == ids, text
    assert codec._loaded is not None
    assert codec.fold_groups()["mike"] == sorted(codec.fold_groups()["mike"])
