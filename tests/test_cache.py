"""The cache entry: what it holds, that it is reused, and the `cache` commands."""

from __future__ import annotations

import json

import numpy as np
from helpers import cli
from reference import raw_matrix

import tokneigh
from tokneigh.store import layout, listing


def test_entry_layout_and_meta(gpt2_dir, cache_dir):
    emb = tokneigh.load(str(gpt2_dir))
    assert emb.path.parent == cache_dir
    # The entry's own files, plus the tokenizer index derived from tokenizer.json on first open.
    assert sorted(p.name for p in emb.path.iterdir()) == sorted(
        [layout.MATRIX, layout.NORMS, layout.TOKENIZER, layout.META, "tokenizer.index"]
    )
    meta = json.loads((emb.path / layout.META).read_text())
    assert meta["format_version"] == layout.FORMAT_VERSION
    assert meta["model"] == str(gpt2_dir) and meta["source"] == "local"
    assert (meta["vocab_size"], meta["dim"]) == (50257, 32)
    assert meta["tensor"] == "wte.weight"
    assert meta["fingerprint"]["files"]["model.safetensors"][0] > 0
    assert len(meta["fingerprint"]["matrix_sha256"]) == 64
    assert meta["special_ids"] == [50256] and meta["token_style"] == "byte_level"
    assert meta["zero_rows"] == 2
    # No scratch folder is left behind after a build.
    assert not [p for p in cache_dir.iterdir() if p.name.startswith((".tmp", ".trash"))]


def test_cached_matrix_is_the_row_normalized_model_matrix(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    raw = raw_matrix(str(gpt2_dir))
    norms = np.linalg.norm(raw, axis=1)
    np.testing.assert_allclose(emb.norms, norms, rtol=1e-6)
    nonzero = norms > 0
    np.testing.assert_allclose(emb.unit[nonzero], raw[nonzero] / norms[nonzero, None], atol=1e-6)
    assert emb.unit.dtype == np.float32 and isinstance(emb.unit, np.memmap)
    assert not np.isnan(np.asarray(emb.unit)).any()


def test_second_load_reuses_the_entry(gpt2_dir):
    messages: list[str] = []
    first = tokneigh.load(str(gpt2_dir), report=messages.append)
    assert any("building the cache" in m for m in messages)
    messages.clear()
    second = tokneigh.load(str(gpt2_dir), report=messages.append)
    assert messages == [] and second.path == first.path


def test_saved_padding_and_truncation_are_not_applied(minilm_dir):
    # MiniLM's tokenizer.json pads to 128 and truncates: neither may reach a query.
    emb = tokneigh.load(str(minilm_dir))
    assert emb.tokenize("banana").ids == [15212]
    long_text = " ".join(["word"] * 300)
    assert len(emb.tokenize(long_text).ids) == 300
    saved = json.loads((emb.path / layout.TOKENIZER).read_text())
    assert saved["padding"] is None and saved["truncation"] is None
    assert 101 not in emb.tokenize("hello").ids  # no [CLS]


def test_a_damaged_entry_is_rebuilt_with_a_warning(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    expected = [n.id for n in emb.neighbors("Mike", k=5).neighbors]
    with open(emb.path / layout.MATRIX, "r+b") as handle:
        handle.truncate(1000)
    messages: list[str] = []
    again = tokneigh.load(str(gpt2_dir), report=messages.append)
    assert any(m.startswith("warning:") and "matrix.npy" in m for m in messages)
    assert [n.id for n in again.neighbors("Mike", k=5).neighbors] == expected


def test_cache_commands(gpt2_dir, cache_dir, tmp_path):
    result = cli("cache", "path")
    assert result.stdout.strip() == str(cache_dir)
    result = cli("cache", "list")
    assert result.exit_code == 0 and "no cached models" in result.stderr

    result = cli("cache", "build", "--model", str(gpt2_dir))
    assert result.exit_code == 0, result.stderr
    assert "50,257 × 32" in result.stdout and result.stdout.startswith("built ")
    (cache_dir / "keep-me.txt").write_text("not tokneigh's")
    (cache_dir / "other-folder").mkdir()

    result = cli("cache", "list")
    assert result.exit_code == 0
    [listed] = json.loads(cli("cache", "list", "-f", "json").stdout)
    assert listed["model"] == f"{gpt2_dir.parent.name}/{gpt2_dir.name}"  # as titles name it
    assert listed["path"] == str(gpt2_dir)  # and the full path once
    assert "50,257" in result.stdout and "32" in result.stdout and "MB" in result.stdout

    result = cli("cache", "clear", "--model", str(gpt2_dir))
    assert result.exit_code == 0 and "removed" in result.stdout
    assert listing.list_entries(cache_dir) == []
    assert (cache_dir / "keep-me.txt").exists() and (cache_dir / "other-folder").is_dir()

    cli("cache", "build", "--model", str(gpt2_dir))
    result = cli("cache", "clear", "--all")
    assert result.exit_code == 0 and "removed 1" in result.stdout
    assert (cache_dir / "keep-me.txt").exists() and (cache_dir / "other-folder").is_dir()


def test_cache_build_force_rebuilds(gpt2_dir):
    first = cli("cache", "build", "--model", str(gpt2_dir))
    assert first.exit_code == 0, first.stderr
    [first_use] = [line for line in first.stderr.splitlines() if "building the cache" in line]
    assert first_use.endswith(" (first use)"), first_use
    result = cli("cache", "build", "--model", str(gpt2_dir), "--force")
    assert result.exit_code == 0 and "building the cache" in result.stderr
    # The rebuild's own line: the first use's without "(first use)".
    assert first_use.removesuffix(" (first use)") in result.stderr.splitlines(), result.stderr
