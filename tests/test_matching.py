"""The matching rule across tokenizer families (``tokneigh.tokens.matching``), checked against
what each tokenizer's own decoder (the ``tokenizers`` library) makes of every token, and
GPT-2's byte table as transformers writes it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from checkpoints import LLAMA_BYTE_TOKENS

import tokneigh
from tokneigh.analyses import diff
from tokneigh.analyses.matching import match_views
from tokneigh.tokens.matching import BYTES, RULES, SPECIAL, TEXT

SHARED_CACHE = True


@pytest.fixture(scope="module")
def gpt2(gpt2_dir, module_cache):
    return tokneigh.load(str(gpt2_dir), cache_dir=module_cache)


@pytest.fixture(scope="module")
def llama(llama_dir, module_cache):
    return tokneigh.load(str(llama_dir), cache_dir=module_cache)


@pytest.fixture(scope="module")
def bert(bert_dir, module_cache):
    return tokneigh.load(str(bert_dir), cache_dir=module_cache)


def own_tokenizer(emb):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(emb.view.tokenizer_file))


@functools.cache
def _byte_of() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {ch: b for b, ch in bytes_to_unicode().items()}


def gpt2_bytes(tokenizer, token_id: int) -> bytes:
    """A GPT-2 token's bytes by transformers' own table (bytes_to_unicode)."""
    back = _byte_of()
    return bytes(back[ch] for ch in tokenizer.id_to_token(token_id))


def text_after(tokenizer, first: int, token_id: int) -> str:
    """What ``token_id`` decodes to after the token ``first``: its text inside a sentence (a
    word start as a leading space), by the tokenizer's own decoder."""
    return tokenizer.decode([first, token_id])[len(tokenizer.decode([first])) :]


def pairs_of(matched) -> dict[int, tuple[int, str]]:
    return {
        int(i): (int(j), RULES[int(r)])
        for i, j, r in zip(matched.ids_a, matched.ids_b, matched.rules)
    }


def test_gpt2_and_a_sentencepiece_tokenizer_match_by_decoded_text(gpt2, llama):
    matched = match_views(gpt2, llama)
    pairs = pairs_of(matched)
    g, s = own_tokenizer(gpt2), own_tokenizer(llama)
    # " king": Ġking in GPT-2, ▁king in the SentencePiece model; not one raw string in common.
    [king_g] = gpt2.tokenize(" king").ids
    king_s = s.token_to_id("▁king")
    assert king_s is not None and gpt2.codec.raw(king_g) != llama.codec.raw(king_s)
    assert pairs[king_g] == (king_s, TEXT)
    # A byte fragment (0xE2, the first byte of "’") matches the byte-fallback token <0xE2>.
    [fragment] = [i for i in range(256) if gpt2_bytes(g, i) == b"\xe2"]
    assert pairs[fragment] == (3 + 0xE2, BYTES)
    # <0x41> is the byte "A", not the piece "A": GPT-2's text token "A" is not its match.
    [letter] = gpt2.tokenize("A").ids
    assert pairs.get(letter, (None, None))[0] != 3 + 0x41
    # Every text pair decodes alike; and the count is that of an independent reference: GPT-2
    # tokens (valid UTF-8 on their own) whose text a SentencePiece piece decodes to.
    first = s.token_to_id("▁the") or s.token_to_id("▁The")
    hidden = set(llama.view.special_ids().tolist()) | {s.token_to_id(t) for t in LLAMA_BYTE_TOKENS}
    texts: dict[str, int] = {}
    for j in range(llama.vocab_size):
        if j not in hidden:
            texts.setdefault(text_after(s, first, j), j)
    expected = {}
    skipped = set(gpt2.view.special_ids().tolist()) | {7, 11}  # rows 7 and 11 are zero
    for i in range(gpt2.vocab_size):
        if i in skipped:
            continue
        try:
            text = gpt2_bytes(g, i).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text in texts and texts[text] not in expected.values():
            expected[i] = texts[text]
    by_text = {i: j for i, (j, rule) in pairs.items() if rule == TEXT}
    assert by_text == expected
    assert matched.count(BYTES) >= 128  # GPT-2's 128 non-ASCII single bytes, at least
    assert not any(rule == SPECIAL for _, rule in pairs.values())  # <|endoftext|> is not <s>


def test_wordpiece_continuations_match_only_continuations(bert, gpt2):
    matched = match_views(bert, gpt2)
    pairs = pairs_of(matched)
    w, g = own_tokenizer(bert), own_tokenizer(gpt2)
    ing_cont, ing_word, king = w.token_to_id("##ing"), w.token_to_id("ing"), w.token_to_id("king")
    [g_ing] = gpt2.tokenize("ing").ids  # no leading space: inside a word
    [g_space_ing] = gpt2.tokenize(" ing").ids
    [g_king] = gpt2.tokenize(" king").ids
    assert pairs[ing_cont] == (g_ing, TEXT)
    assert pairs[king] == (g_king, TEXT)
    if ing_word is not None:
        assert pairs.get(ing_word, (None,))[0] == g_space_ing
    # Each pair decodes alike: WordPiece's own decoder after a word (without its English
    # clean-up, which glues "!" to the word before), GPT-2's bytes.
    from tokenizers import decoders

    w.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    first = w.token_to_id("the")
    for i, (j, rule) in list(pairs.items())[::10]:
        assert rule == TEXT
        assert text_after(w, first, i) == gpt2_bytes(g, j).decode("utf-8"), (i, j)


def test_diff_across_families_compares_the_matched_tokens(gpt2, llama):
    matched = match_views(gpt2, llama)
    result = diff.compare_models(gpt2.view, llama.view, words=["king"], k=5)
    ids_a, ids_b = matched.without_special()
    assert result.shared == ids_a.size == matched.count(TEXT) + matched.count(BYTES)
    assert result.matching is not None
    assert result.matching.unmatched_b == matched.candidates_b - matched.ids_a.size
    # Raw strings alone would share far fewer (no token with a leading space at all).
    raw_g = {gpt2.codec.raw(int(i)) for i in ids_a}
    raw_shared = sum(llama.codec.raw(int(j)) in raw_g for j in np.arange(llama.vocab_size))
    assert raw_shared < ids_a.size
    assert result.items[0].neighbors_b  # " king" is one token in both: it has neighbours
