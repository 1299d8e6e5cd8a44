"""A Hugging Face checkpoint's tokenizer: its tokenizer.json (or one transformers builds from
older tokenizer files), cleaned for the cache, and checked to fit the embedding matrix."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError
from ..sources.local_files import open_regular
from .checkpoint_files import CheckpointFiles, missing
from .failures import first_line
from .via_transformers import quiet_transformers

_TOKENIZER_SOURCE_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
)


@dataclass
class TokenizerFile:
    """A checkpoint's tokenizer.json, as shipped or as transformers converted it."""

    text: str
    built_from: str | None = None  # the files transformers built it from (no tokenizer.json)
    needs: tuple[str, ...] = ()  # the files that tokenizer class reads its vocabulary from


def read_tokenizer_file(files: CheckpointFiles, folder: Path) -> TokenizerFile:
    path = files.get("tokenizer.json")
    if path is not None:
        with open_regular(path) as handle:
            data = handle.read()
        # Decoded as Path.read_text decodes (universal newlines); the file is closed already.
        return TokenizerFile(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read())
    # Older checkpoints ship vocab.json/merges.txt or a SentencePiece model: let transformers
    # convert them to the fast-tokenizer format once, at build time.
    found = [name for name in _TOKENIZER_SOURCE_FILES if files.get(name) is not None]
    if not found:
        raise missing(files, "no tokenizer files (tokenizer.json, vocab.json, vocab.txt, ...)")
    with quiet_transformers():
        from transformers import AutoTokenizer

        try:
            # Never run code shipped with a checkpoint (and never prompt for it either).
            tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
            text = tokenizer.backend_tokenizer.to_str()
        except Exception as exc:  # transformers raises many kinds; all mean "unusable"
            raise missing(
                files,
                f"no tokenizer.json, and no tokenizer can be built from {', '.join(found)} "
                f"({first_line(exc)})",
            ) from exc
    names = getattr(tokenizer, "vocab_files_names", None)
    needs = tuple(
        n for n in (names.values() if isinstance(names, dict) else ()) if isinstance(n, str)
    )
    return TokenizerFile(text, ", ".join(found), needs)


# A tokenizer this much smaller than the matrix is not the checkpoint's own: padding rows
# beyond the tokenizer (Qwen2, Phi: a few dozen to a few thousand) stay well above it.
_MIN_TOKENIZER_SHARE = 0.5


def check_tokenizer_size(
    files: CheckpointFiles, tokenizer: TokenizerFile, size: int, rows: int, tensor: str
) -> None:
    """Refuse a tokenizer far smaller than the matrix: every query would tokenize to nothing
    (transformers builds a 1-token tokenizer from tokenizer_config.json alone)."""
    if size >= rows * _MIN_TOKENIZER_SHARE:
        return
    counted = f"{size:,} token{'' if size == 1 else 's'} for the {rows:,} rows of {tensor}"
    if tokenizer.built_from is None:
        raise missing(files, f"its tokenizer.json has {counted}: not the tokenizer of this matrix")
    absent = [n for n in tokenizer.needs if n != "tokenizer.json" and files.get(n) is None]
    lacks = ", ".join(["no tokenizer.json", *(f"no {n}" for n in absent)])
    raise missing(files, f"{lacks}: the tokenizer built from {tokenizer.built_from} has {counted}")


def clean_tokenizer(tokenizer_json: str) -> tuple[str, list[int], int]:
    """Validate the tokenizer, strip padding/truncation, and list its special token ids and
    its size (added tokens included).

    A tokenizer that ``tokenizers`` loads but cannot write back faithfully (a vocabulary id
    given to two tokens loses one of them, and the merges using it no longer parse) is kept
    as shipped: the codec strips padding and truncation when it loads it anyway.
    """
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:
        raise ModelNotFoundError(
            f"the model's tokenizer.json cannot be parsed ({first_line(exc)})"
        ) from exc
    size = int(tokenizer.get_vocab_size(with_added_tokens=True))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    try:
        cleaned = tokenizer.to_str()
        Tokenizer.from_str(cleaned)  # the cache entry must hold a tokenizer that parses
    except Exception:  # "Token `x` out of vocabulary": keep the original bytes
        cleaned = tokenizer_json
    added = json.loads(cleaned).get("added_tokens") or []
    special = sorted(int(t["id"]) for t in added if isinstance(t, dict) and t.get("special"))
    return cleaned, special, size
