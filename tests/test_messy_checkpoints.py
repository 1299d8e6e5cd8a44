"""Checkpoints as they come in the wild: no tokenizer.json, a tokenizer that cannot be written
back, a file truncated or rewritten while it is read, odd dtypes, shards in subfolders or
outside the folder, a pytorch_model.bin and its library's noise.

Every bad input is one ``tokneigh: error:`` line (no traceback, no internal error) with exit
code 1, and leaves no cache entry behind."""

from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors
from checkpoints import (
    GPT2_VOCAB,
    copy_checkpoint,
    write_gpt2_vocab_files,
    write_raw_safetensors,
)
from helpers import assert_one_line_error, cli, run_cli
from safetensors.numpy import load_file, save_file

import tokneigh
from tokneigh.errors import ModelNotFoundError
from tokneigh.formats import checkpoint_files, extract
from tokneigh.formats import safetensors as safetensors_reader
from tokneigh.sources.models import resolve

GPT2_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def assert_refused(result, cache_dir: Path, *fragments: str, code: int = 1) -> str:
    """One clean error line (a library error, not an internal one) and no cache entry."""
    assert_one_line_error(result, code, *fragments)
    assert "internal error" not in result.stderr, result.stderr
    assert entries(cache_dir) == [], entries(cache_dir)
    return next(line for line in result.stderr.splitlines() if "error:" in line)


def entries(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir() if not p.name.startswith(".")) if (
        cache_dir.exists()) else []


def gpt2_copy(gpt2_dir: Path, folder: Path, names: tuple[str, ...] = GPT2_FILES) -> Path:
    return copy_checkpoint(gpt2_dir, folder, names)


def write_matrix(folder: Path, tensors: dict[str, np.ndarray]) -> None:
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


# --- 1. no tokenizer.json, or a tokenizer far smaller than the matrix ------------------------


def test_tokenizer_config_alone_is_refused_naming_the_missing_files(gpt2_dir, tmp_path,
                                                                     cache_dir):
    # transformers builds a 1-token GPT2Tokenizer from tokenizer_config.json alone: every query
    # would "tokenize to no tokens" for a 50,257-row matrix.
    folder = gpt2_copy(gpt2_dir, tmp_path / "config-only",
                       ("config.json", "model.safetensors", "tokenizer_config.json"))
    line = assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                          "no tokenizer.json", "no vocab.json", "no merges.txt", "1 token",
                          "50,257 rows")
    assert str(folder) in line


def test_a_tokenizer_json_far_smaller_than_the_matrix_is_refused(gpt2_dir, tmp_path, cache_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder = gpt2_copy(gpt2_dir, tmp_path / "small-tokenizer",
                       ("config.json", "model.safetensors"))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["Mike and his banana went to the market."] * 10, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                   f"tokenizer.json has {size} tokens for the 50,257 rows of wte.weight")


def test_padding_rows_beyond_the_tokenizer_stay_accepted(gpt2_dir, tmp_path, cache_dir):
    # Qwen2 and Phi pad their embedding matrix a few dozen rows (or more) past the tokenizer.
    folder = gpt2_copy(gpt2_dir, tmp_path / "padded", ("config.json", "tokenizer.json"))
    rows = GPT2_VOCAB + 64
    write_matrix(folder, {"wte.weight": np.random.default_rng(0).standard_normal(
        (rows, 8)).astype(np.float32)})
    result = cli("neighbors", "Mike", "-k", "3", "-f", "json", "--model", str(folder))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["vocab_size"] == rows


def test_vocab_json_and_merges_txt_without_tokenizer_json_stay_accepted(gpt2_dir, tmp_path,
                                                                        cache_dir):
    folder = gpt2_copy(gpt2_dir, tmp_path / "vocab-files",
                       ("config.json", "model.safetensors", "tokenizer_config.json"))
    write_gpt2_vocab_files(folder)
    result = cli("neighbors", "banana", "-k", "2", "-f", "json", "--model", str(folder))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["query_tokens"] == ["ban", "ana"]


# --- 2. a tokenizer.json that tokenizers loads but cannot write back ------------------------


def test_a_tokenizer_that_cannot_be_written_back_is_kept_as_shipped(gpt2_dir, tmp_path,
                                                                    cache_dir):
    folder = gpt2_copy(gpt2_dir, tmp_path / "duplicate-id", ("config.json", "model.safetensors"))
    data = json.loads((gpt2_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["Ġt"] = vocab["Ġa"]  # one id, two tokens: the merges of the lost one stop parsing
    # Padding to 16 and truncation: the codec must drop them although the file keeps them.
    data["padding"] = {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of":
                       None, "pad_id": 50256, "pad_type_id": 0, "pad_token": "<|endoftext|>"}
    data["truncation"] = {"direction": "Right", "max_length": 2, "strategy": "LongestFirst",
                          "stride": 0}
    shipped = json.dumps(data, ensure_ascii=False).encode("utf-8")
    (folder / "tokenizer.json").write_bytes(shipped)
    from tokenizers import Tokenizer

    with pytest.raises(Exception, match="out of vocabulary"):  # what the bug report saw
        Tokenizer.from_str(Tokenizer.from_str(shipped.decode("utf-8")).to_str())

    result = cli("neighbors", "Mike", "banana cosmic", "-k", "3", "-f", "json",
                 "--model", str(folder))
    assert result.exit_code == 0, result.stderr
    assert "internal error" not in result.stderr
    mike, banana = json.loads(result.stdout)
    assert mike["query_tokens"] == ["Mike"]
    assert len(banana["query_ids"]) == 3  # ban, ana, " cosmic": neither padded nor truncated
    (entry,) = entries(cache_dir)
    assert (cache_dir / entry / "tokenizer.json").read_bytes() == shipped


# --- 3. a checkpoint truncated or rewritten while it is read: never SIGBUS -----------------


@pytest.mark.parametrize("keep", ["4 bytes", "half the header", "half the data"])
def test_a_truncated_safetensors_file_is_one_line(keep, gpt2_dir, tmp_path, cache_dir):
    folder = gpt2_copy(gpt2_dir, tmp_path / "truncated")
    path = folder / "model.safetensors"
    header = int.from_bytes(path.read_bytes()[:8], "little")
    size = {"4 bytes": 4, "half the header": 8 + header // 2,
            "half the data": (8 + header + path.stat().st_size) // 2}[keep]
    os.truncate(path, size)
    line = assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                          "truncated or changed while it was read")
    assert str(path) in line


def test_a_file_truncated_after_its_header_was_read_is_one_line(gpt2_dir, tmp_path, cache_dir,
                                                                monkeypatch):
    folder = gpt2_copy(gpt2_dir, tmp_path / "truncated-while-read")
    path = folder / "model.safetensors"
    real = safetensors_reader._read_header
    seen: list[int] = []

    def header_then_truncate(handle, where):
        header, data_start = real(handle, where)
        if seen:  # the first header read lists the names; the second precedes the data
            os.truncate(path, data_start + 1000)
        seen.append(data_start)
        return header, data_start

    monkeypatch.setattr(safetensors_reader, "_read_header", header_then_truncate)
    assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                   "truncated or changed while it was read", "wte.weight")
    assert len(seen) == 2


_RACE = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from tokneigh.formats import safetensors
    from tokneigh.errors import ModelNotFoundError

    path = Path(sys.argv[1])
    data = path.read_bytes()
    half = len(data) // 2
    stop = threading.Event()

    def truncate_and_restore():
        while not stop.is_set():
            os.truncate(path, half)
            with open(path, "r+b") as handle:
                handle.seek(half)
                handle.write(data[half:])

    thread = threading.Thread(target=truncate_and_restore)
    thread.start()
    outcomes = {"read": 0, "refused": 0}
    try:
        for _ in range(400):
            try:
                safetensors.read_safetensors(path, "wte.weight", lambda line: None)
                outcomes["read"] += 1
            except ModelNotFoundError as exc:
                assert "truncated or changed while it was read" in str(exc), exc
                outcomes["refused"] += 1
    finally:
        stop.set()
        thread.join()
    print(outcomes)
""")


def test_reading_while_another_thread_truncates_never_kills_the_process(gpt2_dir, tmp_path):
    # safetensors' reader memory-maps the file: a truncation during the copy was SIGBUS (135).
    folder = gpt2_copy(gpt2_dir, tmp_path / "racing", ("model.safetensors",))
    proc = subprocess.run([sys.executable, "-c", _RACE, str(folder / "model.safetensors")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    outcomes = eval(proc.stdout)  # noqa: S307 - our own script's dict of two counts
    assert outcomes["refused"] > 0, outcomes  # the race was really run


def _bf16(matrix: np.ndarray):
    import torch

    return torch.from_numpy(matrix).to(torch.bfloat16)


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "F64"])
def test_the_reader_never_memory_maps_and_reads_each_float_dtype(dtype, gpt2_dir, tmp_path,
                                                                 monkeypatch):
    folder = gpt2_copy(gpt2_dir, tmp_path / dtype, ("config.json", "tokenizer.json"))
    base = np.random.default_rng(1).standard_normal((GPT2_VOCAB, 4)).astype(np.float32)
    if dtype == "BF16":
        from safetensors.torch import save_file as save_torch

        tensor = _bf16(base)
        save_torch({"wte.weight": tensor, "wpe.weight": _bf16(base[:8])},
                   str(folder / "model.safetensors"))
        expected = tensor.float().numpy()
    else:
        kind = {"F32": np.float32, "F16": np.float16, "F64": np.float64}[dtype]
        write_matrix(folder, {"wpe.weight": base[:8].astype(kind), "wte.weight": base.astype(kind)})
        expected = base.astype(kind).astype(np.float32)
    header = json.loads((folder / "model.safetensors").read_bytes()[8:][
        :int.from_bytes((folder / "model.safetensors").read_bytes()[:8], "little")])
    assert header["wte.weight"]["dtype"] == dtype

    def no_mmap(*args, **kwargs):
        raise AssertionError("the checkpoint was memory-mapped")

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    monkeypatch.setattr(safetensors, "safe_open", no_mmap)  # safetensors' reader maps files
    got = extract.extract(resolve(str(folder)), lambda line: None)
    assert got.tensor == "wte.weight" and got.matrix.dtype == np.float32
    np.testing.assert_array_equal(got.matrix, expected)


@pytest.mark.parametrize("dtype", ["I64", "I32", "U8", "BOOL", "F8_E4M3", "F8_E5M2"])
def test_a_non_float_embedding_tensor_is_refused_by_its_dtype(dtype, gpt2_dir, tmp_path,
                                                              cache_dir):
    import torch
    from safetensors.torch import save_file as save_torch

    kind = {"I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool,
            "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}[dtype]
    folder = gpt2_copy(gpt2_dir, tmp_path / dtype, ("config.json", "tokenizer.json"))
    save_torch({"wte.weight": torch.ones((GPT2_VOCAB, 4)).to(kind)},
               str(folder / "model.safetensors"))
    line = assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                          f"tensor wte.weight has dtype {dtype}")
    if dtype.startswith(("I", "U", "B")):
        assert "not a floating-point embedding matrix" in line


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("header length beyond any header", "not a safetensors file"),
        ("header not JSON", "not a safetensors file"),
        ("header not a map", "not a safetensors file"),
        ("offsets disagree with the shape", "its dtype and shape need"),
    ],
)
def test_a_malformed_safetensors_header_is_one_line(case, fragment, gpt2_dir, tmp_path,
                                                    cache_dir):
    folder = gpt2_copy(gpt2_dir, tmp_path / "malformed", ("config.json", "tokenizer.json"))
    path = folder / "model.safetensors"
    entry = {"dtype": "F32", "shape": [GPT2_VOCAB, 2], "data_offsets": [0, GPT2_VOCAB * 8]}
    data = bytes(GPT2_VOCAB * 8)
    if case == "header length beyond any header":
        write_raw_safetensors(path, {"wte.weight": entry}, data, length=1 << 40)
    elif case == "header not JSON":
        write_raw_safetensors(path, b"\xff{not json", data)
    elif case == "header not a map":
        write_raw_safetensors(path, ["wte.weight"], data)
    else:
        write_raw_safetensors(path, {"wte.weight": dict(entry, data_offsets=[0, 100])}, data)
    assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir, fragment)


# --- 4. sharded checkpoints: shards in subfolders, never outside the folder ---------------


def _shard(gpt2_dir: Path, folder: Path, embedding_shard: str) -> dict[str, str]:
    """gpt2 in two shards: wte.weight alone in ``embedding_shard``, the rest at the top."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((gpt2_dir / name).read_bytes())
    tensors = load_file(str(gpt2_dir / "model.safetensors"))
    rest = "model-00001-of-00002.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "wte.weight"}, str(folder / rest))
    weight_map = {k: rest for k in tensors if k != "wte.weight"}
    weight_map["wte.weight"] = embedding_shard
    write_index(folder, weight_map)
    return weight_map


def write_index(folder: Path, weight_map: object) -> None:
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def test_a_shard_in_a_subfolder_is_read_and_fingerprinted(gpt2_dir, tmp_path, cache_dir):
    folder = tmp_path / "sub-shards"
    _shard(gpt2_dir, folder, "sub/model-00002-of-00002.safetensors")
    shard = folder / "sub" / "model-00002-of-00002.safetensors"
    shard.parent.mkdir()
    matrix = load_file(str(gpt2_dir / "model.safetensors"))["wte.weight"]
    save_file({"wte.weight": matrix}, str(shard))
    first = tokneigh.load(str(folder), report=lambda line: None)
    np.testing.assert_allclose(first.norms, np.linalg.norm(matrix, axis=1), rtol=1e-6)
    assert "sub/model-00002-of-00002.safetensors" in first.meta["fingerprint"]["files"]

    # Rewrite the embedding shard (same size): the entry must be rebuilt from the new weights.
    save_file({"wte.weight": matrix * 2.0}, str(shard))
    lines: list[str] = []
    second = tokneigh.load(str(folder), report=lines.append)
    assert any("building the cache" in line for line in lines), lines
    np.testing.assert_allclose(second.norms, 2.0 * np.linalg.norm(matrix, axis=1), rtol=1e-6)


@pytest.mark.parametrize("where", ["absolute path", "dot-dot", "symlink out"])
def test_a_shard_outside_the_checkpoint_folder_is_refused(where, gpt2_dir, tmp_path, cache_dir):
    outside = tmp_path / "elsewhere" / "model-00002-of-00002.safetensors"
    outside.parent.mkdir()
    save_file({"wte.weight": load_file(str(gpt2_dir / "model.safetensors"))["wte.weight"]},
              str(outside))
    folder = tmp_path / "ckpt"
    name = {"absolute path": str(outside),
            "dot-dot": "../elsewhere/model-00002-of-00002.safetensors",
            "symlink out": "sub/model-00002-of-00002.safetensors"}[where]
    _shard(gpt2_dir, folder, name)
    if where == "symlink out":
        (folder / "sub").mkdir()
        (folder / name).symlink_to(outside)
    line = assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                          "outside the checkpoint folder")
    assert repr(name) in line


def test_shards_linked_into_a_hugging_face_cache_blobs_folder_stay_accepted(gpt2_dir, tmp_path,
                                                                           cache_dir):
    # A snapshot folder of the Hugging Face cache, given as a path: each file links to ../../blobs.
    repo = tmp_path / "hub" / "models--someone--gpt2"
    staging = tmp_path / "staging"
    weight_map = _shard(gpt2_dir, staging, "model-00002-of-00002.safetensors")
    save_file({"wte.weight": load_file(str(gpt2_dir / "model.safetensors"))["wte.weight"]},
              str(staging / "model-00002-of-00002.safetensors"))
    snapshot = repo / "snapshots" / ("0" * 40)
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in staging.iterdir():
        blob = repo / "blobs" / f"blob-{path.name}"
        path.rename(blob)
        (snapshot / path.name).symlink_to(Path("../../blobs") / blob.name)
    assert set(weight_map.values()) <= {p.name for p in snapshot.iterdir()}
    result = cli("neighbors", "Mike", "-k", "2", "-f", "json", "--model", str(snapshot))
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("index", "fragment"),
    [
        ({"metadata": {}}, "has no weight_map"),
        ({"weight_map": ["wte.weight"]}, "is not a map of tensor names to files"),
        ({"weight_map": {"wte.weight": 3}}, "is not a map of tensor names to files"),
        ([1, 2], "has no weight_map"),
        ("not json {", "is not valid JSON"),
    ],
    ids=["no-weight-map", "list", "non-string-file", "not-an-object", "not-json"],
)
def test_a_malformed_index_is_one_line(index, fragment, gpt2_dir, tmp_path, cache_dir):
    folder = gpt2_copy(gpt2_dir, tmp_path / "bad-index",
                       ("config.json", "tokenizer.json", "tokenizer_config.json"))
    text = index if isinstance(index, str) else json.dumps(index)
    (folder / "model.safetensors.index.json").write_text(text)
    line = assert_refused(cli("neighbors", "Mike", "--model", str(folder)), cache_dir,
                          "model.safetensors.index.json", fragment)
    assert "KeyError" not in line


# --- 5. pytorch_model.bin: transformers' progress bar and logging stay off stderr ----------


def test_a_pytorch_bin_build_prints_only_tokneigh_lines(gpt2_dir, tmp_path):
    import torch
    from safetensors.torch import load_file as load_torch

    folder = gpt2_copy(gpt2_dir, tmp_path / "bin",
                       ("config.json", "tokenizer.json", "tokenizer_config.json"))
    torch.save(load_torch(str(gpt2_dir / "model.safetensors")), folder / "pytorch_model.bin")
    result = run_cli("cache", "build", "--model", str(folder),
                     "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("tokneigh: ") for line in lines), result.stderr
    assert "loading the checkpoint with transformers" in result.stderr


# --- extract() lets no raw exception escape -------------------------------------------------


def test_extract_turns_an_unexpected_failure_into_a_library_error(gpt2_dir, tmp_path,
                                                                  monkeypatch):
    folder = gpt2_copy(gpt2_dir, tmp_path / "unlistable")

    def cannot_list(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint_files, "local_fingerprint", cannot_list)
    with pytest.raises(ModelNotFoundError) as raised:
        extract.extract(resolve(str(folder)), lambda line: None)
    message = str(raised.value)
    assert "\n" not in message and "PermissionError" in message and str(folder) in message
