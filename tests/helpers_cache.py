"""The tiny checkpoint the reliability tests damage copies of, and reading a cache root."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).with_name("reliability_driver.py")
QUERY = ["neighbors", "Mike", " banana", "--top", "8", "--format", "json"]


def make_tiny_checkpoint(folder: Path) -> Path:
    """A GPT-2-shaped checkpoint small enough to rebuild in milliseconds: a byte-level BPE
    tokenizer of ~300 tokens trained here, and random 16-dim input embeddings."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    corpus = ["Mike and his banana went to the market with Mike's friends.",
              "Bananas, apples and cosmic rays: tokenization of text."] * 20
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    config = {"model_type": "gpt2", "vocab_size": vocab, "n_embd": 16, "n_layer": 1,
              "n_head": 2, "n_positions": 32}
    (folder / "config.json").write_text(json.dumps(config))
    matrix = np.random.default_rng(0).standard_normal((vocab, 16)).astype(np.float32)
    matrix[[5, 9]] = 0.0  # zero rows, as real checkpoints have
    save_file({"wte.weight": matrix}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-")))


def builds(lines: list[str] | str) -> int:
    text = lines if isinstance(lines, str) else "\n".join(lines)
    return text.count("building the cache")


def warnings(lines: list[str] | str) -> list[str]:
    split = lines.splitlines() if isinstance(lines, str) else lines
    return [line for line in split if "warning:" in line]
