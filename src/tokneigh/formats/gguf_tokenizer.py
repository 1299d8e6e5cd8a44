"""The tokenizer of a GGUF file, rebuilt from its metadata with ``tokenizers`` alone (no
transformers, no torch: a cold build costs what a safetensors one does): byte-level BPE for
llama.cpp's ``gpt2`` model, SentencePiece-style BPE for ``llama``, WordPiece for ``bert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import reporting
from ..errors import ModelNotFoundError
from ..reporting import Report
from .gguf_header import Header, is_whole, not_gguf, wrong_shape

# llama.cpp's token types (gguf.TokenType), as llama.cpp and transformers read them.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_GPT4O_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# tokenizer.ggml.pre -> how llama.cpp splits text before BPE (llama-vocab.cpp), and whether
# a word that is itself a token skips the merges (its ignore_merges). The same table as
# transformers' GGUF loader; any other value splits as GPT-2 does, with a note.
_SPLITS: dict[str, tuple[str, bool]] = {
    **{
        name: (_LLAMA3_SPLIT, True)
        for name in ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral")
    },
    **{name: (_LLAMA3_SPLIT, False) for name in ("midm-2.0", "lfm2", "dbrx", "smaug-bpe")},
    "tekken": (_TEKKEN_SPLIT, True),
    **{name: (_QWEN2_SPLIT, False) for name in ("qwen2", "deepseek-r1-qwen", "megrez")},
    **{name: (_GPT4O_SPLIT, True) for name in ("gpt-4o", "llama4", "minimax-m2")},
}
# Names that split text as GPT-2 does: llama.cpp's converter writes "gpt-2" for GPT-2's own
# tokenizer, and llama-vocab.cpp gives these others GPT-2's regex too (its pre-tokenizer
# types GPT2, MPT, OLMO, JAIS, TRILLION and GRANITE_DOCLING).
_GPT2_SPLITS = (
    *("gpt2", "default", ""),
    *("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es"),
    *("jina-v2-de", "jina-v2-code", "roberta-bpe", "a.x-4.0", "mellum", "modern-bert"),
    *("exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling"),
)

KNOWN_MODELS = ("gpt2", "llama", "bert")


@dataclass
class GGUFTokenizer:
    tokenizer_json: str
    special_ids: list[int]
    size: int


def build_tokenizer(header: Header, report: Report) -> GGUFTokenizer:
    """The file's tokenizer as a tokenizer.json, and the ids to hide (control, unknown and
    unused tokens)."""
    meta = header.metadata
    path = header.path
    model = _string(meta, "tokenizer.ggml.model", path)
    tokens = _strings(meta, "tokenizer.ggml.tokens", path)
    if model is None or not tokens:
        raise ModelNotFoundError(f"{path} holds no tokenizer (tokenizer.ggml.model and .tokens)")
    types = _array_of(meta, "tokenizer.ggml.token_type", len(tokens), path)
    if types is None:
        types = np.full(len(tokens), _NORMAL, dtype=np.int32)
    if model == "gpt2":
        tokenizer = _byte_level(meta, tokens, types, path, report)
    elif model == "llama":
        tokenizer = _sentencepiece(meta, tokens, types, path, header.size)
    elif model == "bert":
        tokenizer = _wordpiece(meta, tokens, types, path)
    else:
        raise ModelNotFoundError(
            f"{path}: its tokenizer model {model!r} is not one tokneigh can build "
            f"(it builds {', '.join(KNOWN_MODELS)})"
        )
    # Built here with no padding or truncation: nothing for tokenizer_files.clean_tokenizer to clean
    # (it would parse the whole tokenizer twice more).
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    hidden = special | {int(i) for i in np.flatnonzero(types == _UNUSED)}
    size = int(tokenizer.get_vocab_size(with_added_tokens=True))
    return GGUFTokenizer(tokenizer.to_str(), sorted(hidden), size)


# --- metadata of the shape each key has; any other is one line naming the key --------------


def _array_of(meta: dict[str, Any], key: str, count: int, path: Path) -> np.ndarray | None:
    """One number for each token, or None when the key is absent."""
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or value.ndim != 1:
        raise wrong_shape(path, key, value, f"one number for each of the {count:,} tokens")
    if len(value) != count:
        raise wrong_shape(path, key, value, f"one number for each of the {count:,} tokens")
    return value


def _strings(meta: dict[str, Any], key: str, path: Path) -> list[str] | None:
    """An array of strings (an empty array of any type is one), or None when absent."""
    value = meta.get(key)
    if value is None or (isinstance(value, np.ndarray) and len(value) == 0):
        return None if value is None else []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise wrong_shape(path, key, value, "an array of strings")
    return value


def _string(meta: dict[str, Any], key: str, path: Path) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise wrong_shape(path, key, value, "a string")
    return value


def _whole(meta: dict[str, Any], key: str, path: Path) -> int | None:
    value = meta.get(key)
    if value is not None and not is_whole(value):
        raise wrong_shape(path, key, value, "a whole number")
    return value


def _boolean(meta: dict[str, Any], key: str, path: Path, default: bool) -> bool:
    """A boolean (or an integer, whose truth is as plain): never a string ("false" would be
    true) nor an array (whose truth is an error)."""
    value = meta.get(key, default)
    if not isinstance(value, int):
        raise wrong_shape(path, key, value, "a boolean")
    return bool(value)


def _architecture(meta: dict[str, Any], path: Path) -> str:
    return _string(meta, "general.architecture", path) or ""


# --- the three tokenizer models -------------------------------------------------------------


def _added(tokenizer: Any, tokens: list[str], types: np.ndarray, vocab: dict[str, int]) -> None:
    """Control and unknown tokens as special added tokens, user-defined ones as plain added
    tokens (matched whole, as llama.cpp does), each only when the vocabulary holds it as
    spelled: an added token the vocabulary lacks would get an id past the matrix."""
    from tokenizers import AddedToken

    def pick(wanted: tuple[int, ...]) -> list[Any]:
        return [
            AddedToken(t, special=kind != _USER_DEFINED, normalized=False)
            for t, kind in zip(tokens, types.tolist())
            if kind in wanted and vocab.get(t) is not None
        ]

    special = pick((_CONTROL, _UNKNOWN))
    if special:
        tokenizer.add_special_tokens(special)
    plain = pick((_USER_DEFINED,))
    if plain:
        tokenizer.add_tokens(plain)


def _byte_level(
    meta: dict[str, Any], tokens: list[str], types: np.ndarray, path: Path, report: Report
) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    from ..tokens.display import byte_decoder

    alphabet = set(byte_decoder())
    spelling = {byte: char for char, byte in byte_decoder().items()}
    # A token written in raw text (an added token like "<think>" is already in the alphabet;
    # one with spaces is not) is spelled in GPT-2's byte alphabet, as the merges spell it.
    spelled = [
        t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8")) for t in tokens
    ]
    vocab = _vocab(spelled)
    merges_raw = _strings(meta, "tokenizer.ggml.merges", path)
    if merges_raw is None:
        raise ModelNotFoundError(f"{path}: its gpt2 tokenizer has no tokenizer.ggml.merges")
    merges = _pairs(merges_raw, vocab, path)
    pre = _string(meta, "tokenizer.ggml.pre", path) or ""
    split, ignore_merges = _SPLITS.get(pre, (None, False))
    bpe = models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges)
    tokenizer = Tokenizer(bpe)
    if split is None:
        if pre not in _GPT2_SPLITS:
            report(
                reporting.note(
                    f"{path.name} names the pre-tokenizer {pre!r}, which tokneigh does not "
                    "know; it splits text as GPT-2 does (a few tokenizations may differ)"
                )
            )
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tokenizer.decoder = decoders.ByteLevel()
    _added(tokenizer, tokens, types, vocab)
    return tokenizer


def _pairs(merges: list[str], vocab: dict[str, int], path: Path) -> list[tuple[str, str]]:
    """Merges written "left right" as pairs (one without a space is no merge: skipped), each
    joining two tokens into a token: ``tokenizers`` panics on a merge whose result is not in
    the vocabulary (a PanicException, which no ``except Exception`` catches)."""
    pairs = [(left, right) for left, _, right in (m.partition(" ") for m in merges if " " in m)]
    for left, right in pairs:
        if left not in vocab or right not in vocab or left + right not in vocab:
            shown = f"{left} {right}"
            shown = repr(shown if len(shown) <= 60 else shown[:60] + "...")
            raise not_gguf(
                path,
                f"tokenizer.ggml.merges holds the merge {shown}, which does not join two of "
                "its tokens into a third",
            )
    return pairs


def _vocab(tokens: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        vocab.setdefault(token, index)  # a repeated token keeps its first id
    return vocab


def _sentencepiece(
    meta: dict[str, Any], tokens: list[str], types: np.ndarray, path: Path, size: int
) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    gemma = _architecture(meta, path).startswith("gemma")
    if gemma:
        # Gemma files store a token of spaces as real spaces; its merges spell them "▁".
        tokens = ["▁" * len(t) if t and not t.strip(" ") else t for t in tokens]
    vocab = _vocab(tokens)
    merges_raw = _strings(meta, "tokenizer.ggml.merges", path)
    if merges_raw is not None:
        merges = _pairs(merges_raw, vocab, path)
    else:
        scores = _array_of(meta, "tokenizer.ggml.scores", len(tokens), path)
        if scores is None:
            raise ModelNotFoundError(
                f"{path}: its llama tokenizer has neither merges nor token scores"
            )
        if gemma:
            scores = -np.arange(len(tokens), dtype=np.float64)  # Gemma: file order is merge order
        merges = _merges_from_scores(tokens, scores, types, vocab, path, size)
    unk_id = _whole(meta, "tokenizer.ggml.unknown_token_id", path)
    unk = tokens[unk_id] if unk_id is not None and 0 <= unk_id < len(tokens) else None
    if unk is None and "<unk>" in vocab:
        unk = "<unk>"
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=True)
    tokenizer = Tokenizer(bpe)
    prefix = _boolean(meta, "tokenizer.ggml.add_space_prefix", path, True)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first" if prefix else "never", split=False
    )
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            *([decoders.Strip(" ", 1, 0)] if prefix else []),
        ]
    )
    _added(tokenizer, tokens, types, vocab)
    return tokenizer


# Deriving merges from scores slices and looks up every cut of every mergeable piece: a
# piece of n characters costs about n*n, gives up to n-1 merges holding up to n*n characters,
# all written to the cached tokenizer.json. A file of runs "a", "aa", ..., "a"*n is n*n/2
# bytes and implies n**3/3 characters (a 645 KB file made a 324 MB tokenizer.json using 3.4
# GB). The rule: the squared lengths of the mergeable pieces add up to at most
# _WORK_PER_BYTE times the file's size in bytes, checked (in linear time) before any of the
# work. That bounds the work, the count of merges (at most the sum of the lengths, itself
# under the file's size) and their characters (at most the sum of the squares): the
# tokenizer.json stays within a few tens of times the file. Real vocabularies are far inside:
# their tokens average under 10 characters and rarely pass 64, so the squares add up to about
# twice the bytes of the token list itself (GPT-2's 50,257 tokens: 2.5 M, in a 1.4 MB file
# holding little else), a hundredth or less of a model file of hundreds of MB.
_WORK_PER_BYTE = 16


def _merges_from_scores(
    tokens: list[str],
    scores: np.ndarray,
    types: np.ndarray,
    vocab: dict[str, int],
    path: Path,
    size: int,
) -> list[tuple[str, str]]:
    """The merges a SentencePiece vocabulary implies: llama.cpp joins the adjacent pair whose
    joined piece scores highest, so every split of a piece into two pieces of the vocabulary
    is a merge, ranked by the joined piece's score (ties: lower ids first)."""
    mergeable = np.flatnonzero((types == _NORMAL) | (types == _USER_DEFINED)).tolist()
    work = sum(len(tokens[index]) ** 2 for index in mergeable)
    if work > _WORK_PER_BYTE * size:
        raise ModelNotFoundError(
            f"{path}: its tokenizer is not rebuilt: the merges its token scores imply take up "
            f"to {work:,} characters of work, more than {_WORK_PER_BYTE} times the file's size "
            f"({size:,} bytes) allows (a real vocabulary takes a few times at most)"
        )
    ranked = []
    for index in mergeable:
        piece = tokens[index]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            left_id, right_id = vocab.get(left), vocab.get(right)
            if left_id is not None and right_id is not None:
                ranked.append((-float(scores[index]), index, left_id, right_id, left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _wordpiece(meta: dict[str, Any], tokens: list[str], types: np.ndarray, path: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    # llama.cpp's bert vocabulary is in "phantom space" form: "▁word" starts a word, a
    # continuation has no "##", a bracketed token ([CLS], [unused3]) is kept as is.
    pieces = [_wordpiece_form(t) for t in tokens]
    vocab = _vocab(pieces)
    unk_id = _whole(meta, "tokenizer.ggml.unknown_token_id", path)
    unk = pieces[unk_id] if unk_id is not None and 0 <= unk_id < len(pieces) else "[UNK]"
    tokenizer = Tokenizer(
        models.WordPiece(vocab=vocab, unk_token=unk, max_input_chars_per_word=100)
    )
    # llama.cpp lower-cases every bert vocabulary, so the uncased BERT normalizer.
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    _added(tokenizer, pieces, types, vocab)
    return tokenizer


def _wordpiece_form(token: str) -> str:
    if token.startswith("▁"):
        return token[1:] or token
    if len(token) > 1 and token.startswith("[") and token.endswith("]"):
        return token
    return "##" + token
