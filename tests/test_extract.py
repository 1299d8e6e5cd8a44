"""Extraction from the formats checkpoints come in, and the hub path through the HF cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import run_cli
from reference import raw_matrix

import tokneigh
from tokneigh.formats.hf_checkpoint import pick_embedding_tensor


@pytest.fixture(scope="module")
def gpt2_model(gpt2_dir):
    from transformers import GPT2Model

    return GPT2Model.from_pretrained(str(gpt2_dir))


def copy_tokenizer(src, dst):
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copy(src / name, dst / name)


def test_pytorch_bin_checkpoint_falls_back_to_transformers(gpt2_dir, gpt2_model, tmp_path):
    folder = tmp_path / "bin-only"
    folder.mkdir()
    copy_tokenizer(gpt2_dir, folder)
    torch.save(gpt2_model.state_dict(), folder / "pytorch_model.bin")
    emb = tokneigh.load(str(folder))
    np.testing.assert_allclose(emb.norms, np.linalg.norm(raw_matrix(str(gpt2_dir)), axis=1),
                               rtol=1e-6)
    assert emb.meta["tensor"] == "wte.weight"


def test_sharded_safetensors_reads_the_embedding_shard(gpt2_dir, gpt2_model, tmp_path):
    folder = tmp_path / "sharded"
    gpt2_model.save_pretrained(folder, max_shard_size="2MB")
    copy_tokenizer(gpt2_dir, folder)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    emb = tokneigh.load(str(folder))
    expected = tokneigh.load(str(gpt2_dir))
    np.testing.assert_array_equal(np.asarray(emb.unit), np.asarray(expected.unit))


def test_bfloat16_checkpoint(gpt2_dir, gpt2_model, tmp_path):
    folder = tmp_path / "bf16"
    gpt2_model.to(torch.bfloat16).save_pretrained(folder)
    gpt2_model.to(torch.float32)
    copy_tokenizer(gpt2_dir, folder)
    emb = tokneigh.load(str(folder))
    bf16 = gpt2_model.wte.weight.detach().to(torch.bfloat16).float().numpy()
    np.testing.assert_allclose(emb.norms, np.linalg.norm(bf16, axis=1), rtol=1e-5)


def test_hub_id_is_served_from_the_hugging_face_cache_without_network(gpt2_dir, tmp_path):
    # Lay out the HF cache as huggingface_hub writes it; HF_HUB_OFFLINE=1 forbids any request.
    # A subprocess, because huggingface_hub reads HF_HOME once, at import.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-home" / "hub" / "models--openai-community--gpt2"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(gpt2_dir / name, snapshot / name)
    cache_root = tmp_path / "tokneigh-cache"
    env = {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1",
           "TOKNEIGH_CACHE_DIR": str(cache_root)}
    result = run_cli("neighbors", "banana", "-k", "5", "-f", "json",
                     "--model", "openai-community/gpt2", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)[0]
    assert data["model"] == "openai-community/gpt2" and data["query_tokens"] == ["ban", "ana"]
    local = tokneigh.load(str(gpt2_dir))
    assert [n["id"] for n in data["neighbors"]] == [
        n.id for n in local.neighbors("banana", k=5).neighbors
    ]
    (entry,) = [p for p in cache_root.iterdir() if not p.name.startswith(".")]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["source"] == "hub"
    assert meta["resolved"] == f"openai-community/gpt2@{commit}"
    assert meta["fingerprint"]["revision"] == commit


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight"], "wte.weight"),
        (["transformer.wte.weight", "transformer.wpe.weight"], "transformer.wte.weight"),
        (["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"],
         "embeddings.word_embeddings.weight"),
        (["model.embed_tokens.weight", "lm_head.weight"], "model.embed_tokens.weight"),
        (["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"], None),  # ambiguous
        (["lm_head.weight"], None),
    ],
)
def test_pick_embedding_tensor(names, expected):
    assert pick_embedding_tensor(names) == expected
