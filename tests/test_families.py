"""Model families: GPT-2 (byte-level BPE), BERT (WordPiece) and Llama (SentencePiece BPE with
byte fallback) through the API and the CLI, on offline checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checkpoints import LLAMA_BYTE_TOKENS


def test_llama_fixture_is_laid_out_like_llama(llama_dir: Path) -> None:
    data = json.loads((llama_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    assert [vocab["<unk>"], vocab["<s>"], vocab["</s>"]] == [0, 1, 2]
    assert [vocab[t] for t in LLAMA_BYTE_TOKENS] == list(range(3, 259))
    assert data["model"]["byte_fallback"] is True
    assert data["pre_tokenizer"]["type"] == "Metaspace"
    # Only <unk> <s> </s> are added (special) tokens; byte tokens are plain vocabulary.
    assert sorted(t["content"] for t in data["added_tokens"]) == ["</s>", "<s>", "<unk>"]
    config = json.loads((llama_dir / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    assert config["vocab_size"] == len(vocab)


@pytest.mark.parametrize("fixture", ["gpt2_dir", "minilm_dir", "bert_dir", "llama_dir"])
def test_families_load(fixture: str, request: pytest.FixtureRequest) -> None:
    import tokneigh

    emb = tokneigh.load(str(request.getfixturevalue(fixture)))
    assert emb.neighbors("king", k=3).neighbors
