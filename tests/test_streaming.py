"""First use streams (issue 24, item 2): the matrix goes from the checkpoint into the cache a
block of rows at a time, and the entry it writes is the very bytes the whole-matrix build wrote.

The reference is that build written out: the whole matrix read independently (safetensors'
own reader, torch for bfloat16, gguf's dequantizer), normalized by ``normalize_rows`` in one
call and saved with ``np.save``; unusable rows found by a per-row loop; the SHA-256 of the
whole float32 matrix.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tracemalloc

import numpy as np
import pytest
from checkpoints import write_tied_gpt2
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.errors import ModelNotFoundError
from tokneigh.formats import rows as rows_module
from tokneigh.formats.extract import extract
from tokneigh.sources.models import resolve
from tokneigh.space.core import normalize_rows
from tokneigh.store import unit_rows

ROWS, DIM = 2600, 24  # three blocks of 1,000 rows (below), the last one partial


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 1,000 rows at DIM wide (375 at 64): a small matrix streams in several."""
    monkeypatch.setattr(rows_module, "BLOCK_BYTES", 1000 * 4 * DIM)


def word_tokenizer(size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({f"w{i}": i for i in range(size)}, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def hostile(rng: np.random.Generator) -> np.ndarray:
    """Random rows, and rows with NaN, +-inf, all zeros, 1e30 (norm beyond float32), and
    values so small that only a float64 norm sees them."""
    matrix = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    matrix[3, 0] = np.nan
    matrix[1500, 5] = np.inf
    matrix[2599, 1] = -np.inf
    matrix[[17, 1024, 2048]] = 0.0
    matrix[40] = 1e30
    matrix[41] = 1e-30
    return matrix


def safetensors_checkpoint(folder, matrix: np.ndarray, dtype: str):
    """A tied GPT-2-shaped checkpoint storing ``matrix`` as ``dtype``; and the float32 matrix
    a reader must get from it (read back by safetensors' and torch's own code)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensor = torch.from_numpy(matrix).to(getattr(torch, dtype))
    write_tied_gpt2(folder, word_tokenizer(ROWS), np.zeros((1, 1), np.float32))
    save_file({"wte.weight": tensor}, str(folder / "model.safetensors"))
    return load_file(str(folder / "model.safetensors"))["wte.weight"].float().numpy()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def per_row_unusable(matrix: np.ndarray) -> dict[str, list[int]]:
    non_finite, zero = [], []
    for i, row in enumerate(matrix.tolist()):
        if not all(math.isfinite(x) for x in row):
            non_finite.append(i)
        elif not any(row):
            zero.append(i)
    return {"non_finite": non_finite, "zero": zero}


def assert_whole_matrix_build(entry_dir, whole: np.ndarray) -> None:
    """The entry holds what the whole-matrix build wrote for ``whole``, byte for byte."""
    unit, norms = normalize_rows(whole)
    assert (entry_dir / "matrix.npy").read_bytes() == npy_bytes(unit)
    assert (entry_dir / "norms.npy").read_bytes() == npy_bytes(norms)
    meta = json.loads((entry_dir / "meta.json").read_text())
    assert meta["fingerprint"]["matrix_sha256"] == hashlib.sha256(whole.tobytes()).hexdigest()
    assert meta["unusable_rows"] == per_row_unusable(whole)
    assert meta["zero_rows"] == int(np.count_nonzero(norms == 0))
    assert (meta["vocab_size"], meta["dim"]) == whole.shape


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_a_streamed_build_writes_the_whole_matrix_builds_bytes(dtype, tmp_path):
    whole = safetensors_checkpoint(tmp_path / dtype, hostile(np.random.default_rng(1)), dtype)
    lines: list[str] = []
    emb = tokneigh.load(str(tmp_path / dtype), report=lines.append)
    assert_whole_matrix_build(emb.path, whole.astype(np.float32))
    # The unusable rows are still reported, once, as a warning (NaN and inf among them).
    unusable = per_row_unusable(whole)
    count = len(unusable["non_finite"]) + len(unusable["zero"])
    said = [line for line in lines if "have no direction" in line]
    assert len(said) == 1 and said[0].startswith(f"warning: {count} rows"), lines


def test_normalizing_a_row_does_not_depend_on_the_rows_around_it():
    """Each row normalized alone (a one-row block: the same einsum and division) gives the
    bits the whole matrix's blocks give, at GPT-2's and Llama-3's widths: a build may split
    the rows anywhere."""
    rng = np.random.default_rng(7)
    for dim in (24, 768, 4096):
        matrix = rng.standard_normal((700, dim)) * 10 ** rng.uniform(-3, 3, (700, 1))
        matrix = matrix.astype(np.float32)
        matrix[3, 0], matrix[5, 1], matrix[17] = np.nan, np.inf, 0
        matrix[40], matrix[41] = 1e30, 1e-30
        unit, norms = normalize_rows(matrix)
        for i in range(len(matrix)):
            row_unit, row_norm = normalize_rows(matrix[i : i + 1])
            assert row_unit.tobytes() == unit[i].tobytes() and row_norm[0] == norms[i], (dim, i)


def test_a_matrix_of_one_partial_block_and_of_exact_blocks(tmp_path):
    for rows in (5, 2000):
        matrix = np.random.default_rng(rows).standard_normal((rows, DIM)).astype(np.float32)
        folder = tmp_path / f"rows-{rows}"
        write_tied_gpt2(folder, word_tokenizer(rows), matrix)
        assert_whole_matrix_build(tokneigh.load(str(folder)).path, matrix)


def test_a_streamed_gguf_build_writes_the_whole_matrix_builds_bytes(tmp_path):
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize, quantize
    from gguf_files import write_gguf

    matrix = np.random.default_rng(2).standard_normal((ROWS, 64)).astype(np.float32)
    vocab = {
        "model": "gpt2", "pre": "default", "arch": "llama",
        "tokens": ["w", "1", *(f"w{i}" for i in range(1, ROWS - 1))], "types": [1] * ROWS,
        "merges": ["w 1"],
    }
    path = write_gguf(tmp_path / "m.gguf", vocab, matrix, "Q8_0")
    q8 = GGMLQuantizationType.Q8_0
    whole = dequantize(quantize(matrix, q8), q8).astype(np.float32)
    assert_whole_matrix_build(tokneigh.load(str(path)).path, whole)


def test_the_stream_holds_one_block_never_the_matrix(tmp_path):
    """Python's allocations (numpy's included) while the arrays are written: a few blocks'
    worth, where the whole-matrix build held the matrix and its unit copy (2x)."""
    rows, dim = 16384, 64  # 4 MB of float32: 44 blocks of 375 rows
    matrix = np.random.default_rng(3).standard_normal((rows, dim)).astype(np.float32)
    folder = tmp_path / "ckpt"
    write_tied_gpt2(folder, word_tokenizer(rows), matrix)
    extracted = extract(resolve(str(folder)), lambda _: None)
    del matrix
    out = tmp_path / "entry"
    out.mkdir()
    tracemalloc.start()
    try:
        streamed = unit_rows.write_unit_rows(out, extracted.rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * rows * dim * 4, peak
    assert np.load(out / "matrix.npy").shape == (rows, dim) and len(streamed.norms) == rows


def test_a_checkpoint_changed_before_its_rows_are_read_is_refused(tmp_path):
    matrix = np.random.default_rng(4).standard_normal((ROWS, DIM)).astype(np.float32)
    folder = write_tied_gpt2(tmp_path / "ckpt", word_tokenizer(ROWS), matrix)
    extracted = extract(resolve(str(folder)), lambda _: None)
    path = folder / "model.safetensors"
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(ModelNotFoundError, match="truncated or changed while it was read"):
        list(extracted.rows.blocks())


def test_a_checkpoint_truncated_as_the_build_streams_it_is_one_error_and_no_entry(
    tmp_path, cache_dir, monkeypatch
):
    matrix = np.random.default_rng(5).standard_normal((ROWS, DIM)).astype(np.float32)
    folder = write_tied_gpt2(tmp_path / "ckpt", word_tokenizer(ROWS), matrix)
    real = unit_rows.write_unit_rows

    def truncate_then_stream(out, rows):
        os.truncate(folder / "model.safetensors", 5000)
        return real(out, rows)

    monkeypatch.setattr(unit_rows, "write_unit_rows", truncate_then_stream)
    result = cli("neighbors", "w1", "--model", folder)
    assert_one_line_error(result, 1, "truncated or changed while it was read")
    left = [p.name for p in cache_dir.iterdir() if not p.name.startswith(".locks")]
    assert left == [], left


def test_an_unexpected_read_failure_mid_stream_is_a_library_error(tmp_path, monkeypatch):
    matrix = np.random.default_rng(6).standard_normal((ROWS, DIM)).astype(np.float32)
    folder = write_tied_gpt2(tmp_path / "ckpt", word_tokenizer(ROWS), matrix)
    from tokneigh.formats import safetensors

    real = safetensors.read_exactly_into
    calls = []

    def fail_on_the_second_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors, "read_exactly_into", fail_on_the_second_block)
    extracted = extract(resolve(str(folder)), lambda _: None)
    with pytest.raises(ModelNotFoundError, match="Input/output error"):
        list(extracted.rows.blocks())
