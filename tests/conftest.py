"""Shared fixtures: offline checkpoints built once per session, and an isolated cache per test."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from checkpoints import (
    make_bert_checkpoint,
    make_gpt2_checkpoint,
    make_gpt2_lm_checkpoint,
    make_llama_checkpoint,
    minilm_folder,
)

# Nothing in the suite may reach the model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("TOKNEIGH_MODEL", None)
# Nor the user's cache: a module-scoped fixture that loads a model runs before the per-test
# cache fixture below sets TOKNEIGH_CACHE_DIR, and would otherwise write to ~/.cache/tokneigh.
os.environ["TOKNEIGH_CACHE_DIR"] = tempfile.mkdtemp(prefix="tokneigh-tests-")


def _built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """A checkpoint built once per run and shared by the xdist workers (each would otherwise
    build its own: torch and transformers, 3 to 10 s a checkpoint). Tests never write into a
    session checkpoint (they copy it first), so sharing one across workers is safe."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's own folder, which every worker's lies in
    folder = root / "checkpoints" / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / "complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder / "ckpt")
            (folder / "complete").touch()
    return folder / "ckpt"


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT-2's real tokenizer with random 50,257 x 32 weights (rows 7 and 11 zeroed)."""
    return _built_once(
        tmp_path_factory,
        "gpt2",
        lambda folder: make_gpt2_checkpoint(folder, dim=32, zero_rows=(7, 11)),
    )


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return minilm_folder()


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LlamaForCausalLM, 479 x 32, untied lm_head; Llama-style byte-fallback BPE tokenizer."""
    return _built_once(tmp_path_factory, "llama", lambda f: make_llama_checkpoint(f, dim=32))


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random BertModel, 30,522 x 32, with all-MiniLM-L6-v2's real tokenizer."""
    return _built_once(tmp_path_factory, "bert", lambda f: make_bert_checkpoint(f, dim=32))


@pytest.fixture(scope="session")
def gpt2_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GPT2LMHeadModel (tied lm_head: only transformer.wte.weight saved), 50,257 x 32."""
    return _built_once(
        tmp_path_factory, "gpt2-lm", lambda f: make_gpt2_lm_checkpoint(f, dim=32)
    )


# --- a tiny checkpoint and a cache built from it (the reliability tests damage copies) --------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers_cache import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="module")
def template(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root holding tiny_dir's entry, built once; tests copy it."""
    from tokneigh.api import loading as api

    root = tmp_path_factory.mktemp("template")
    api.load(str(tiny_dir), cache_dir=root, report=lambda _: None)
    return root


@pytest.fixture(scope="module")
def expected(tiny_dir: Path, template: Path) -> list:
    """`neighbors` JSON from an undamaged cache: what every recovered run must print."""
    from helpers import cli_outcome
    from helpers_cache import QUERY

    code, out, err = cli_outcome(*QUERY, "--model", tiny_dir, "--cache-dir", template)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-cache")


@pytest.fixture(autouse=True)
def cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """Each test gets its own empty cache root and Hugging Face home; a module that sets
    ``SHARED_CACHE = True`` shares one per module instead, so its models are built once."""
    if getattr(request.module, "SHARED_CACHE", False):
        root = request.getfixturevalue("module_cache")
        hf_home = root / "hf-home"
    else:
        root, hf_home = tmp_path / "cache", tmp_path / "hf-home"
    monkeypatch.setenv("TOKNEIGH_CACHE_DIR", str(root))
    monkeypatch.setenv("HF_HOME", str(hf_home))
    return root


@pytest.fixture(scope="module")
def gpt2_ref(gpt2_dir: Path):
    from explore_refs import Reference

    return Reference(gpt2_dir)


@pytest.fixture(scope="module")
def minilm_ref(minilm_dir: Path):
    from explore_refs import Reference

    return Reference(minilm_dir)
